"""Hand-made JWTs for the refusal tests (services and routes): alg=none, other algorithms,
missing claims, tampered payloads and signatures."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import jwt


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_for(user_id: uuid.UUID, typ: str = "access", lifetime: timedelta = timedelta(minutes=5)) -> dict:
    now = datetime.now(timezone.utc)
    return {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": typ,
    }


def signed(claims: dict, key: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def alg_none(claims: dict) -> str:
    """An unsigned token: header alg=none and an empty signature."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def with_alg_none_header(token: str) -> str:
    """A valid token whose header is rewritten to alg=none, signature dropped."""
    _, payload, _ = token.split(".")
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{payload}."


def with_payload(token: str, **changes) -> str:
    """The original header and signature around a modified payload."""
    header, payload, signature = token.split(".")
    claims = json.loads(unb64url(payload)) | changes
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def with_flipped_signature(token: str) -> str:
    """Change one signature byte (not the last base64 character, whose low bits are padding)."""
    header, payload, signature = token.split(".")
    raw = bytearray(unb64url(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"
