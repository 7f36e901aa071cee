"""Readiness: is each dependency answering right now?"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rq import Worker
from sqlalchemy import text

from mlplatform import db
from mlplatform.cache import get_redis
from mlplatform.config import get_settings
from mlplatform.errors import MLPlatformError
from mlplatform.inference.client import get_host_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def readiness() -> list[Check]:
    return [_database(), _redis(), _worker(), _model_hosts()]


def _database() -> Check:
    try:
        with db.get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return Check("database", True, "ok")
    except Exception as exc:  # any driver failure means "not ready"
        log.warning("readiness: database failed: %s", exc)
        return Check("database", False, type(exc).__name__)


def _redis() -> Check:
    try:
        get_redis().ping()
        return Check("redis", True, "ok")
    except Exception as exc:
        log.warning("readiness: redis failed: %s", exc)
        return Check("redis", False, type(exc).__name__)


def _worker() -> Check:
    """A worker is alive when it is registered on our queue; RQ expires its key when heartbeats stop."""
    try:
        queue = get_settings().queue_name
        workers = [w for w in Worker.all(connection=get_redis()) if queue in w.queue_names()]
    except Exception as exc:
        log.warning("readiness: worker lookup failed: %s", exc)
        return Check("worker", False, type(exc).__name__)
    if not workers:
        return Check("worker", False, "no worker is listening on queue " + queue)
    return Check("worker", True, f"{len(workers)} worker(s)")


def _model_hosts() -> Check:
    """Ready when the host manager answers and at least one pool host is up."""
    try:
        hosts = get_host_client(get_settings()).status()["hosts"]
    except MLPlatformError as exc:
        log.warning("readiness: model hosts failed: %s", exc.message)
        return Check("model_hosts", False, exc.message)
    ready = sum(1 for h in hosts if h.get("state") == "ready")
    if not ready:
        errors = sorted({h["error"] for h in hosts if h.get("error")})
        return Check("model_hosts", False, f"no model host is ready (0/{len(hosts)})"
                     + (f": {errors[0]}" if errors else ""))
    return Check("model_hosts", True, f"{ready}/{len(hosts)} model host(s) ready")
