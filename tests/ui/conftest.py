"""Browser tests: the real platform (`python -m mlplatform.runner`) started once per session,
driven by Playwright in Debian's Chromium.

Run them in one process (`make test` does): each process would start its own server, and two
servers rebuild the shared .web/ frontend for different ports. (xdist's loadgroup does not keep
them together under pytest 9.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests import conftest as root
from tests import support

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (make test does it when it can)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> str:
    extra = {}
    if root.BASE_DATABASE_URL:
        extra["DATABASE_URL"] = support.fresh_postgres_database(root.BASE_DATABASE_URL, "e2e")
    if root.BASE_REDIS_URL:
        extra["REDIS_URL"] = support.fresh_redis_database(root.BASE_REDIS_URL, support.LIVE_SERVER_REDIS_OFFSET)
    port = support.free_port()
    proc, log = support.start_platform(tmp_path_factory.mktemp("live") / "var", port, extra)
    base = f"http://127.0.0.1:{port}"
    try:
        support.wait_for_ready(base, proc, log)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


ADMIN = ("root@e2e.example.com", "operator passphrase 123")


@pytest.fixture(scope="session")
def admin_account(live_server) -> tuple[str, str]:
    """The first account on the fresh server, hence its administrator."""
    import httpx

    r = httpx.post(f"{live_server}/api/v1/auth/register", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 201 and r.json()["role"] == "admin", r.text
    return ADMIN
