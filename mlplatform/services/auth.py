"""Accounts: register, log in (API tokens or a browser session), refresh with rotation, log out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlmodel import delete, func, select, update

from mlplatform import cache, db
from mlplatform.config import get_settings
from mlplatform.errors import AuthenticationFailed, Conflict, InvalidInput, RateLimited
from mlplatform.models import RefreshToken, Role, TokenPair, User, utcnow
from mlplatform.services import passwords, tokens
from mlplatform.services.principals import Principal

INVALID_CREDENTIALS = "Invalid email or password"


@dataclass(frozen=True)
class BrowserSession:
    token: str
    max_age: int


def normalize_email(raw: str) -> str:
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(str(exc), code="invalid_email", details={"field": "email"}) from exc
    return checked.normalized.lower()


def register(email: str, password: str) -> User:
    """Create an account; the very first account becomes an administrator."""
    email = normalize_email(email)
    passwords.check_rules(password, email)
    password_hash = passwords.hash_password(password)
    try:
        with db.session() as s:
            first = s.exec(select(func.count()).select_from(User)).one() == 0
            user = User(email=email, password_hash=password_hash, role=Role.admin if first else Role.user)
            s.add(user)
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists", code="email_taken") from exc
    return user


def login(email: str, password: str, client_ip: str) -> TokenPair:
    user = _check_credentials(email, password, client_ip)
    return _issue_pair(user.id, uuid.uuid4())


def start_browser_session(email: str, password: str, client_ip: str) -> BrowserSession:
    user = _check_credentials(email, password, client_ip)
    lifetime = timedelta(days=get_settings().session_days)
    return BrowserSession(tokens.issue(user.id, tokens.SESSION, lifetime), int(lifetime.total_seconds()))


def end_browser_session(session_token: str) -> None:
    try:
        claims = tokens.verify(session_token, tokens.SESSION)
    except AuthenticationFailed:
        return  # an unusable cookie is already as good as logged out
    cache.denylist_add(claims.token_id, claims.seconds_left())


def refresh(refresh_token: str) -> TokenPair:
    """Rotate a refresh token; presenting one that was already rotated revokes its whole family."""
    now = utcnow()
    with db.session() as s:
        row = s.exec(
            select(RefreshToken).where(RefreshToken.token_hash == tokens.hash_secret(refresh_token))
        ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise AuthenticationFailed("Invalid refresh token", code="invalid_refresh_token")
        rotated = s.exec(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now)
        ).rowcount
    if rotated != 1:
        _revoke_family(row.family_id)
        raise AuthenticationFailed(
            "Refresh token was already used; the session has been revoked", code="refresh_token_reused"
        )
    user = _require_active(row.user_id)
    return _issue_pair(user.id, row.family_id)


def logout(principal: Principal) -> None:
    claims = principal.token
    if claims is None:
        return
    if claims.family_id:
        _revoke_family(uuid.UUID(claims.family_id))
    cache.denylist_add(claims.token_id, claims.seconds_left())


def revoke_all_sessions(user_id: uuid.UUID) -> None:
    with db.session() as s:
        s.exec(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def purge_expired_refresh_tokens(older_than: timedelta = timedelta(days=1)) -> int:
    """Delete refresh tokens that expired long enough ago to be useless even as reuse evidence."""
    cutoff = utcnow() - older_than
    with db.session() as s:
        return s.exec(delete(RefreshToken).where(RefreshToken.expires_at < cutoff)).rowcount


def _check_credentials(email: str, password: str, client_ip: str) -> User:
    settings = get_settings()
    by_account = cache.Counter("login-account", settings.login_window_seconds)
    by_ip = cache.Counter("login-ip", settings.login_window_seconds)
    subject = email.strip().lower()
    retry_after = max(
        by_account.exceeded(subject, settings.login_max_failures_per_account),
        by_ip.exceeded(client_ip, settings.login_max_failures_per_ip),
    )
    if retry_after:
        raise RateLimited("Too many failed sign-in attempts; try again later", retry_after=retry_after)
    user = _find_user(subject)
    if user is None or not passwords.verify_password(password, user.password_hash):
        if user is None:
            passwords.burn_time()
        by_account.hit(subject)
        by_ip.hit(client_ip)
        raise AuthenticationFailed(INVALID_CREDENTIALS, code="invalid_credentials")
    if not user.is_active:
        raise AuthenticationFailed("Account is deactivated", code="account_deactivated")
    by_account.reset(subject)
    with db.session() as s:
        s.exec(update(User).where(User.id == user.id).values(last_login_at=utcnow()))
    return user


def _find_user(email: str) -> User | None:
    if "\x00" in email:  # no account has one, and PostgreSQL refuses NUL in text parameters
        return None
    with db.session() as s:
        return s.exec(select(User).where(User.email == email)).first()


def _require_active(user_id: uuid.UUID) -> User:
    with db.session() as s:
        user = s.get(User, user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("Account is deactivated", code="account_deactivated")
    return user


def _issue_pair(user_id: uuid.UUID, family_id: uuid.UUID) -> TokenPair:
    settings = get_settings()
    secret = tokens.new_secret()
    with db.session() as s:
        s.add(
            RefreshToken(
                user_id=user_id,
                family_id=family_id,
                token_hash=tokens.hash_secret(secret),
                expires_at=datetime.now(timezone.utc) + timedelta(days=settings.refresh_token_days),
            )
        )
    lifetime = timedelta(minutes=settings.access_token_minutes)
    access = tokens.issue(user_id, tokens.ACCESS, lifetime, family_id=str(family_id))
    return TokenPair(access_token=access, refresh_token=secret, expires_in=int(lifetime.total_seconds()))


def _revoke_family(family_id: uuid.UUID) -> None:
    with db.session() as s:
        s.exec(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
