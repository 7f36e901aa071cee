"""Aliases through the service: set, move, delete, roll back, and the rules around archived versions."""

import io
import threading

import pytest
from sqlmodel import select

from mlplatform import db
from mlplatform.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mlplatform.models import ModelAlias
from mlplatform.services import principals, registry

from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clean_store", "gate")


@pytest.fixture
def me(member, principal_of):
    return principal_of(member)


def with_versions(principal, count: int):
    """Model `iris` with versions 1..count (each through the real gate)."""
    for seed in range(count):
        registry.upload_version(principal, "iris", io.BytesIO(model_bytes("logreg", seed)), "m.joblib")
    return principal


@pytest.fixture
def two(me):
    return with_versions(me, 2)


@pytest.fixture
def three(me):
    return with_versions(me, 3)


def alias_rows() -> list[ModelAlias]:
    with db.session() as s:
        return list(s.exec(select(ModelAlias)).all())


def test_set_creates_then_moves_and_rollback_moves_it_back(two, member):
    created = registry.set_alias(two, "iris", "production", 1)
    assert (created.model, created.alias, created.version, created.updated_by) == ("iris", "production", 1, member.id)
    assert registry.resolve_version(two, "iris").version == 1
    moved = registry.set_alias(two, "iris", "production", 2)
    assert moved.version == 2 and moved.updated_at >= created.updated_at
    assert len(alias_rows()) == 1  # moved, not duplicated
    assert registry.resolve_version(two, "iris").version == 2
    registry.set_alias(two, "iris", "production", 1)  # roll back
    assert registry.resolve_version(two, "iris").version == 1
    assert registry.set_alias(two, "iris", "production", 1).version == 1  # idempotent


def test_each_alias_remembers_its_previous_target_and_rollback_goes_there(three):
    assert registry.set_alias(three, "iris", "production", 1).previous_version is None
    assert registry.set_alias(three, "iris", "production", 3).previous_version == 1
    assert registry.set_alias(three, "iris", "production", 3).previous_version == 1  # no move, no change
    moved = registry.set_alias(three, "iris", "production", 2)
    assert (moved.version, moved.previous_version) == (2, 3)
    back = registry.rollback_alias(three, "iris", "production")
    assert (back.version, back.previous_version) == (3, 2)
    assert registry.resolve_version(three, "iris").version == 3
    again = registry.rollback_alias(three, "iris", "production")  # undoes the rollback
    assert (again.version, again.previous_version) == (2, 3)
    registry.set_alias(three, "iris", "staging", 1)
    assert [(a.alias, a.version, a.previous_version) for a in registry.list_aliases(three, "iris")] == [
        ("production", 2, 3), ("staging", 1, None)
    ]


def test_rollback_needs_a_previous_target_that_still_serves(three):
    with pytest.raises(NotFound) as caught:
        registry.rollback_alias(three, "iris", "production")
    assert caught.value.code == "alias_not_found"
    registry.set_alias(three, "iris", "production", 1)
    with pytest.raises(Conflict) as caught:
        registry.rollback_alias(three, "iris", "production")
    assert caught.value.code == "nothing_to_roll_back"
    registry.set_alias(three, "iris", "production", 2)
    registry.update_version(three, "iris", 1, status="archived")  # a previous target may be archived
    with pytest.raises(Conflict) as caught:
        registry.rollback_alias(three, "iris", "production")
    assert caught.value.code == "version_archived"
    assert registry.resolve_version(three, "iris").version == 2


def test_aliases_show_on_the_model_and_on_their_versions(three):
    registry.set_alias(three, "iris", "production", 2)
    registry.set_alias(three, "iris", "staging", 2)
    registry.set_alias(three, "iris", "canary", 3)
    assert registry.get_model(three, "iris").aliases == {"canary": 3, "production": 2, "staging": 2}
    assert {v.version: v.aliases for v in registry.list_versions(three, "iris").items} == {
        3: ["canary"], 2: ["production", "staging"], 1: []
    }
    assert registry.list_models(three).items[0].aliases == {"canary": 3, "production": 2, "staging": 2}


def test_delete_removes_the_alias_and_the_default_falls_back(two):
    registry.set_alias(two, "iris", "production", 1)
    registry.delete_alias(two, "iris", "production")
    assert alias_rows() == [] and registry.get_model(two, "iris").aliases == {}
    assert registry.resolve_version(two, "iris").version == 2
    with pytest.raises(NotFound) as caught:
        registry.delete_alias(two, "iris", "production")
    assert caught.value.code == "alias_not_found"


def test_an_alias_cannot_point_at_an_archived_or_missing_version(three):
    registry.update_version(three, "iris", 3, status="archived")
    with pytest.raises(Conflict) as caught:
        registry.set_alias(three, "iris", "production", 3)
    assert caught.value.code == "version_archived"
    with pytest.raises(NotFound) as caught:
        registry.set_alias(three, "iris", "production", 4)
    assert caught.value.code == "version_not_found"
    assert registry.set_alias(three, "iris", "production", 2).version == 2  # deprecated/active are fine
    assert alias_rows()[0].alias == "production"


@pytest.mark.parametrize("alias", ["Production", "prod env", "-x", "", "1", "42", "a" * 65])
def test_alias_names_are_slugs_that_do_not_read_as_version_numbers(me, alias):
    registry.create_model(me, "iris")
    for call in (lambda: registry.set_alias(me, "iris", alias, 1),
                 lambda: registry.delete_alias(me, "iris", alias),
                 lambda: registry.rollback_alias(me, "iris", alias)):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.code == "invalid_alias"


def test_concurrent_moves_leave_one_alias_at_one_of_the_targets(three):
    errors = []

    def move(version):
        try:
            registry.set_alias(three, "iris", "production", version)
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(v,)) for v in (1, 2, 3, 1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (row,) = alias_rows()
    assert registry.get_model(three, "iris").aliases["production"] in (1, 2, 3)


def test_aliases_need_models_write(me, member, new_key):
    registry.create_model(me, "iris")
    reader = principals.authenticate_api_key(new_key(member, ["models:read"]).secret)
    for call in (lambda: registry.set_alias(reader, "iris", "production", 1),
                 lambda: registry.rollback_alias(reader, "iris", "production"),
                 lambda: registry.delete_alias(reader, "iris", "production")):
        with pytest.raises(PermissionDenied):
            call()
    assert registry.list_aliases(reader, "iris") == []
    writer = principals.authenticate_api_key(new_key(member, ["models:write"]).secret)
    with pytest.raises(PermissionDenied):
        registry.list_aliases(writer, "iris")


def queued_warm_jobs() -> list:
    from rq import Queue

    from mlplatform.cache import get_redis
    from mlplatform.config import get_settings
    from mlplatform.services import jobs

    queue = Queue(get_settings().queue_name, connection=get_redis())
    return [job for job in queue.get_jobs() if job.func_name == jobs.WARM_VERSION]


def test_moving_an_alias_queues_warming_its_target_which_loads_it_into_a_host(two, settings):
    from mlplatform.inference.client import get_host_client
    from mlplatform.services import registry_aliases

    moved = registry.set_alias(two, "iris", "production", 2)
    warm = queued_warm_jobs()
    assert [job.args for job in warm] == [(str(moved.version_id),)]
    sha = registry.resolve_version(two, "iris").sha256
    get_host_client(settings).unload(sha)
    assert registry_aliases.warm_version(str(moved.version_id)) is True  # what the worker runs
    loaded = [m for host in get_host_client(settings).status()["hosts"] for m in host["loaded"]]
    assert sha in loaded
    registry.update_version(two, "iris", 1, status="archived")
    assert registry_aliases.warm_version(str(registry.get_version(two, "iris", 1).id)) is False
