"""The loader's refusal type and resource limits (loader.py re-exports both; they live here so the
unpickler, guards and checks can raise them without importing the loader)."""

from __future__ import annotations

from dataclasses import dataclass, field

CODES = ("unsafe_model", "not_an_estimator", "unsupported_format", "version_mismatch",
         "load_failed", "resource_limit")
MAX_REASON_CHARS = 2000  # reasons quote names from the file (globals, attributes): an uploaded
MAX_DETAIL_CHARS = 500  # file must not grow the reply past the host protocol's header limit


def _clip(text: str, limit: int) -> str:
    text = text.translate(_CONTROL)  # NUL, newlines, escapes: a reason is one printable line
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CONTROL = {c: "?" for c in [*range(32), 127]}


def _plain_details(details: dict | None) -> dict:
    """Details go to JSON: plain scalars only, strings clipped (anything else named by its type)."""
    plain = {}
    for key, value in (details or {}).items():
        if value is None or type(value) in (bool, int, float):
            plain[str(key)] = value
        elif type(value) is str:
            plain[str(key)] = _clip(value, MAX_DETAIL_CHARS)
        elif type(value) is dict and all(type(v) is str for v in value.values()):  # version tables
            plain[str(key)] = {str(k): _clip(v, MAX_DETAIL_CHARS) for k, v in value.items()}
        else:
            plain[str(key)] = f"<{type(value).__module__}.{type(value).__qualname__}>"
    return plain


class Rejected(Exception):
    """A model file the loader refuses. `code` is one of CODES (the ModelRejected codes), `reason`
    a sentence naming the offending global, opcode or limit."""

    def __init__(self, code: str, reason: str, details: dict | None = None):
        if code not in CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        reason = _clip(str(reason), MAX_REASON_CHARS)
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.details = _plain_details(details)


def unsafe(reason: str, **details) -> Rejected:
    return Rejected("unsafe_model", reason, details)


def over_limit(reason: str, **details) -> Rejected:
    return Rejected("resource_limit", reason, details)


@dataclass(frozen=True)
class Limits:
    max_decompressed_bytes: int
    max_array_bytes: int
    max_graph_nodes: int = 2_000_000
    max_graph_depth: int = 200
    max_pickle_ops: int = 10_000_000  # opcodes per stream: each can create an object


@dataclass
class Budget:
    """What one load may still allocate. Shared by the outer stream and every nested stream."""

    limits: Limits
    array_bytes: int = 0
    ops: int = 0
    notes: list = field(default_factory=list)

    def charge_array(self, nbytes: int, what: str) -> None:
        if nbytes < 0:
            raise unsafe(f"{what}: negative size")
        self.array_bytes += nbytes
        if self.array_bytes > self.limits.max_array_bytes:
            raise over_limit(f"{what}: total array size exceeds {self.limits.max_array_bytes} bytes",
                             limit_bytes=self.limits.max_array_bytes)
