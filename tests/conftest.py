"""Test environment: real PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, embedded otherwise.

Each xdist worker gets its own database (PostgreSQL: `<name>_<worker>`, created fresh; SQLite: a
file in its own var dir) and its own Redis database number, so workers never see each other.
Everything here runs before `mlplatform.config` is imported, because settings are cached.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests import support

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
VAR_DIR = Path(tempfile.gettempdir()) / f"mlplatform-test-{os.getpid()}-{WORKER}"
shutil.rmtree(VAR_DIR, ignore_errors=True)
VAR_DIR.mkdir(parents=True)

os.environ.update(support.TEST_ENV)
os.environ["MLPLATFORM_VAR_DIR"] = str(VAR_DIR)
os.environ["MLPLATFORM_BCRYPT_ROUNDS"] = "4"  # the cost-12 default is asserted in test_passwords
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# The URLs the suite was started with, remembered before this module rewrites them (xdist
# workers inherit the controller's environment, rewritten URLs included).
BASE_DATABASE_URL = os.environ.setdefault("MLP_TEST_BASE_DATABASE_URL", os.environ.get("DATABASE_URL", ""))
BASE_REDIS_URL = os.environ.setdefault("MLP_TEST_BASE_REDIS_URL", os.environ.get("REDIS_URL", ""))
_embedded_redis = None
if BASE_DATABASE_URL:
    os.environ["DATABASE_URL"] = support.fresh_postgres_database(BASE_DATABASE_URL, WORKER)
else:
    os.environ.pop("DATABASE_URL", None)
if BASE_REDIS_URL:
    os.environ["REDIS_URL"] = support.redis_url_for(BASE_REDIS_URL, support.worker_index(WORKER))
else:
    _embedded_redis, _socket = support.start_embedded_redis(VAR_DIR)
    os.environ["REDIS_URL"] = f"unix://{_socket}"


@pytest.fixture(scope="session", autouse=True)
def schema():
    """The schema comes from the migrations, exactly as in production."""
    from mlplatform.runner import migrate

    migrate()
    yield
    from mlplatform.db import get_engine

    get_engine().dispose()


@pytest.fixture(autouse=True)
def clean_state(schema):
    yield
    from mlplatform.services import prediction_log, principals, registry_resolve

    prediction_log.flush()  # rows a test queued must not land in the next test's tables
    support.truncate_all_tables()
    support.flush_redis()
    principals.forget_cached()
    registry_resolve.forget_resolved()  # truncating bypasses the ORM events that clear it


@pytest.fixture
def settings():
    from mlplatform.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def api():
    """The REST app as production serves it, minus Reflex: the prediction edge around the API."""
    from mlplatform.api.app import create_api
    from mlplatform.api.prediction_edge import PredictionEdge
    from mlplatform.config import get_settings

    settings = get_settings()
    return PredictionEdge(create_api(settings), settings)


@pytest.fixture(scope="session")
def model_hosts():
    """A real model host manager for this worker on settings.host_socket (VAR_DIR/hosts.sock),
    started once per session. Requested by `client`; other tests that need hosts request it."""
    from tests.hosts_support import start_manager

    manager = start_manager(VAR_DIR)
    yield manager
    manager.stop()


@pytest.fixture
def client(api, model_hosts):
    from fastapi.testclient import TestClient

    with TestClient(api) as c:
        yield c


@pytest.fixture
def make_user():
    """Register an account through the service; returns (user, password)."""
    from mlplatform.services import auth

    counter = iter(range(1_000_000))

    def make(email: str | None = None, password: str = "correct horse battery"):
        email = email or f"user{next(counter)}@example.com"
        return auth.register(email, password), password

    return make


@pytest.fixture
def login(client):
    """Log in through the API; returns the token pair as a dict."""

    def do(email: str, password: str = "correct horse battery") -> dict:
        r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    return do


@pytest.fixture
def bearer():
    def headers(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return headers
