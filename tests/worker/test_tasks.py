"""Tasks through a real RQ worker process, as `make run` and production start it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from mlplatform import db
from mlplatform.models import RefreshToken, utcnow
from mlplatform.services import jobs, tokens
from tests.support import ROOT

RQ = str(Path(sys.executable).parent / "rq")
WORKER_START_SECONDS = 60


def rq_worker(settings, *extra: str) -> list[str]:
    return [RQ, "worker", *extra, "--url", settings.redis_url, settings.queue_name]


def add_refresh_token(user_id: uuid.UUID, expires_in: timedelta) -> str:
    secret = tokens.new_secret()
    with db.session() as s:
        s.add(RefreshToken(user_id=user_id, family_id=uuid.uuid4(), token_hash=tokens.hash_secret(secret),
                           expires_at=utcnow() + expires_in))
    return tokens.hash_secret(secret)


def stored_hashes() -> set[str]:
    with db.session() as s:
        return set(s.exec(select(RefreshToken.token_hash)).all())


def test_purge_runs_on_a_real_worker(make_user, settings):
    user, _ = make_user()
    long_expired = add_refresh_token(user.id, -timedelta(days=3))
    just_expired = add_refresh_token(user.id, -timedelta(hours=1))  # kept a day as reuse evidence
    live = add_refresh_token(user.id, timedelta(days=7))
    job = jobs.enqueue(jobs.PURGE_EXPIRED_REFRESH_TOKENS)
    assert job.get_status() == "queued"

    done = subprocess.run(rq_worker(settings, "--burst"), cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    job.refresh()
    assert job.get_status() == "finished", done.stdout + done.stderr
    assert job.return_value() == 1
    assert stored_hashes() == {just_expired, live}
    assert long_expired not in stored_hashes()


def ready(client) -> tuple[int, dict]:
    r = client.get("/health/ready")
    return r.status_code, r.json()


def wait_for_worker_check(client, ok: bool, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < deadline:
        status, body = ready(client)
        if body["checks"]["worker"]["ok"] is ok:
            return body
        assert proc.poll() is None or not ok, f"worker exited with {proc.returncode}"
        time.sleep(0.2)
    pytest.fail(f"readiness never reported worker ok={ok}: {body}")


def test_readiness_follows_a_running_worker(client, settings):
    status, body = ready(client)
    assert status == 503 and body["status"] == "not_ready"
    assert body["checks"]["worker"]["ok"] is False
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]

    proc = subprocess.Popen(rq_worker(settings), cwd=ROOT, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = wait_for_worker_check(client, True, proc)
        assert ready(client) == (200, body) and body["status"] == "ready"
        assert body["checks"]["worker"]["detail"] == "1 worker(s)"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None
    wait_for_worker_check(client, False, proc)  # a stopped worker unregisters itself
