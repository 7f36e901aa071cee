"""Versions through the service: upload through the gate, numbering (also under concurrency),
refusals that leave nothing behind, immutability, status rules, soft delete keeping everything."""

import io
import threading

import pytest
from sqlmodel import select

from mlplatform import artifacts, db
from mlplatform.errors import (
    Conflict, InvalidInput, ModelRejected, ModelUnavailable, NotFound, PayloadTooLarge, PermissionDenied,
)
from mlplatform.inference.client import HostClient
from mlplatform.models import MLModel, ModelVersion
from mlplatform.services import principals, registry, registry_versions

from tests.registry_support import (  # noqa: F401  (fixtures)
    GARBAGE, UNSAFE, clean_store, gate, model_bytes, not_an_estimator, sha256, stored_files,
)

pytestmark = pytest.mark.usefixtures("clean_store")


@pytest.fixture
def me(member, principal_of):
    return principal_of(member)


def upload(principal, name, data, filename="model.joblib", description="", **kw):
    return registry.upload_version(principal, name, io.BytesIO(data), filename, description, **kw)


def rows(table) -> list:
    with db.session() as s:
        return list(s.exec(select(table)).all())


def test_the_first_upload_creates_the_model_and_version_1_with_its_signature(me, member, gate, settings):
    data = model_bytes("logreg")
    version = upload(me, "iris", data, "C:\\Users\\ada\\iris v1.joblib", "first try")
    assert (version.model, version.version, version.status.value) == ("iris", 1, "active")
    assert (version.sha256, version.size_bytes, version.format) == (sha256(data), len(data), "pickle-p4")
    assert (version.filename, version.description, version.created_by) == ("iris v1.joblib", "first try", member.id)
    signature = version.signature
    assert signature["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert (signature["task"], signature["n_features"], signature["classes"]) == ("classifier", 4, [0, 1, 2])
    assert [f["name"] for f in signature["features"]] == ["f0", "f1", "f2", "f3"]
    assert signature["methods"]["predict_proba"] is True and signature["versions"]["sklearn"]
    assert "load_seconds" not in signature and version.load_seconds > 0 and version.memory_bytes > 0
    assert gate.inspected == [artifacts.path_for(version.sha256, settings)]
    assert stored_files(settings.models_dir) == gate.inspected
    model = registry.get_model(me, "iris")
    assert (model.latest_version, model.description) == (1, "first try")
    assert registry.get_version(me, "iris", 1) == version


def test_a_model_created_by_its_first_upload_takes_that_description(me, gate):
    upload(me, "iris", model_bytes("logreg"), description="first try")
    upload(me, "iris", model_bytes("logreg"), description="second try")
    assert registry.get_model(me, "iris").description == "first try"


def test_the_clients_filename_is_only_a_label(me, gate, settings):
    version = upload(me, "iris", model_bytes("tree"), "../../etc/cron.d/evil\x00.pkl")
    assert version.filename == "evil.pkl"
    assert stored_files(settings.models_dir) == [artifacts.path_for(version.sha256, settings)]


def test_versions_count_up_and_identical_bytes_are_stored_once(me, gate, settings):
    registry.create_model(me, "iris", "kept", ["tag"])
    numbers = [upload(me, "iris", model_bytes("logreg", seed)).version for seed in (0, 1)]
    again = upload(me, "iris", model_bytes("logreg", 0))
    elsewhere = upload(me, "copy", model_bytes("logreg", 0))
    assert numbers + [again.version, elsewhere.version] == [1, 2, 3, 1]
    assert len(stored_files(settings.models_dir)) == 2
    model = registry.get_model(me, "iris")
    assert (model.latest_version, model.description, model.tags) == (3, "kept", ["tag"])
    assert [v.version for v in registry.list_versions(me, "iris").items] == [3, 2, 1]
    page = registry.list_versions(me, "iris", page=2, per_page=2)
    assert ([v.version for v in page.items], page.total) == ([1], 3)


def test_concurrent_uploads_get_consecutive_numbers(me, gate):
    results, errors = [], []

    def one(seed):
        try:
            results.append(upload(me, "busy", model_bytes("logreg", seed)).version)
        except Exception as exc:  # collected: an assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == [1, 2, 3, 4]
    assert len([m for m in rows(MLModel) if m.name == "busy"]) == 1
    assert registry.get_model(me, "busy").latest_version == 4


@pytest.mark.parametrize(
    "data, code",
    [(GARBAGE, "unsupported_format"), (UNSAFE, "unsafe_model"), (not_an_estimator(), "not_an_estimator")],
)
def test_a_refused_upload_leaves_no_row_and_no_file(me, gate, settings, data, code):
    with pytest.raises(ModelRejected) as caught:
        upload(me, "refused", data)
    assert caught.value.code == code and caught.value.message
    assert rows(MLModel) == [] and rows(ModelVersion) == []
    assert stored_files(settings.models_dir) == []
    assert list((settings.models_dir / "tmp").iterdir()) == []


def test_a_refusal_into_an_existing_model_adds_nothing_to_it(me, gate, settings):
    good = upload(me, "iris", model_bytes("logreg"))
    with pytest.raises(ModelRejected):
        upload(me, "iris", UNSAFE)
    assert [v.version for v in registry.list_versions(me, "iris").items] == [1]
    assert stored_files(settings.models_dir) == [artifacts.path_for(good.sha256, settings)]


def test_refused_bytes_that_a_version_references_stay(me, gate, settings):
    """A gate verdict can change for the same bytes (a limit hit under load, new library pins):
    the file must survive for the version that already uses it. Uses the gate's one double: a real
    host gives the same verdict for the same bytes."""
    accepted = upload(me, "iris", model_bytes("logreg"))
    gate.refuse(accepted.sha256, "resource_limit", "CPU time limit (30 s) exceeded")
    with pytest.raises(ModelRejected) as caught:
        upload(me, "other", model_bytes("logreg"))
    assert caught.value.code == "resource_limit"
    assert artifacts.path_for(accepted.sha256, settings).exists()
    assert [m.name for m in rows(MLModel)] == ["iris"]


def test_when_the_hosts_are_unreachable_nothing_is_recorded(me, settings, monkeypatch, tmp_path):
    """The real client, pointed at a socket nobody listens on."""
    nobody = HostClient(tmp_path / "nobody.sock", load_timeout=5, call_timeout=5)
    monkeypatch.setattr(registry_versions, "get_host_client", lambda _settings: nobody)
    with pytest.raises(ModelUnavailable) as caught:
        upload(me, "iris", model_bytes("logreg"))
    assert caught.value.retry_after >= 1
    assert rows(MLModel) == [] and rows(ModelVersion) == [] and stored_files(settings.models_dir) == []


def test_empty_and_oversized_files_are_refused_before_the_gate(me, gate, settings, monkeypatch):
    with pytest.raises(InvalidInput) as caught:
        upload(me, "iris", b"")
    assert caught.value.code == "empty_file"
    data = model_bytes("logreg")
    monkeypatch.setattr(settings, "max_model_bytes", len(data) - 1)
    with pytest.raises(PayloadTooLarge) as caught:
        upload(me, "iris", data)
    assert caught.value.details == {"limit_bytes": len(data) - 1}
    assert gate.inspected == [] and rows(MLModel) == [] and stored_files(settings.models_dir) == []


def test_bad_names_and_deleted_models_are_refused_before_anything_is_stored(me, gate, settings):
    with pytest.raises(InvalidInput) as caught:
        upload(me, "Iris Model", model_bytes("logreg"))
    assert caught.value.code == "invalid_name"
    upload(me, "iris", model_bytes("logreg"))
    registry.delete_model(me, "iris")
    with pytest.raises(Conflict) as caught:
        upload(me, "iris", model_bytes("tree"))
    assert caught.value.code == "model_deleted"
    assert len(gate.inspected) == 1 and len(stored_files(settings.models_dir)) == 1


def test_uploading_needs_models_write(member, new_key, gate):
    reader = principals.authenticate_api_key(new_key(member, ["models:read", "predict"]).secret)
    with pytest.raises(PermissionDenied) as caught:
        upload(reader, "iris", model_bytes("logreg"))
    assert caught.value.code == "insufficient_scope" and gate.inspected == []
    writer = principals.authenticate_api_key(new_key(member, ["models:write"]).secret)
    assert upload(writer, "iris", model_bytes("logreg")).version == 1


def test_an_admin_uploads_into_another_users_model(me, member, admin, principal_of, gate):
    root = principal_of(admin)
    version = upload(root, "theirs", model_bytes("logreg"), owner=member.email)
    assert version.created_by == admin.id
    assert registry.get_model(me, "theirs").latest_version == 1
    with pytest.raises(NotFound):
        registry.get_model(root, "theirs")  # without owner=, an admin addresses their own models


def test_only_status_and_description_change(me, gate):
    before = upload(me, "iris", model_bytes("logreg"), description="v1")
    after = registry.update_version(me, "iris", 1, status="deprecated", description="superseded")
    assert (after.status.value, after.description) == ("deprecated", "superseded")
    frozen = ("id", "version", "sha256", "size_bytes", "filename", "format", "signature", "created_at", "created_by")
    assert {f: getattr(after, f) for f in frozen} == {f: getattr(before, f) for f in frozen}
    with pytest.raises(TypeError):
        registry.update_version(me, "iris", 1, sha256="0" * 64)  # there is no way to say it
    with pytest.raises(InvalidInput):
        registry.update_version(me, "iris", 1, status="deleted")
    with pytest.raises(NotFound) as caught:
        registry.update_version(me, "iris", 2, status="archived")
    assert caught.value.code == "version_not_found"
    with pytest.raises(NotFound):
        registry.get_version(me, "iris", 2**40)


def test_status_rules(me, gate):
    for seed in range(3):
        upload(me, "iris", model_bytes("logreg", seed))
    registry.set_alias(me, "iris", "production", 2)
    with pytest.raises(Conflict) as caught:
        registry.update_version(me, "iris", 2, status="archived")
    assert caught.value.code == "version_has_aliases" and caught.value.details == {"aliases": ["production"]}
    assert registry.update_version(me, "iris", 3, status="archived").status.value == "archived"
    with pytest.raises(Conflict) as caught:
        registry.resolve_version(me, "iris", 3)
    assert caught.value.code == "version_archived"
    assert registry.update_version(me, "iris", 1, status="deprecated").status.value == "deprecated"
    assert registry.resolve_version(me, "iris", "1").version == 1  # deprecated still serves
    assert registry.update_version(me, "iris", 3, status="active").status.value == "active"  # un-archive
    assert registry.resolve_version(me, "iris", 3).version == 3


def test_resolution_order(me, gate, settings):
    for seed in range(3):
        upload(me, "iris", model_bytes("logreg", seed))
    latest = registry.resolve_version(me, "iris")
    assert (latest.version, latest.resolved_by, latest.alias) == (3, "latest", None)
    assert latest.path == artifacts.path_for(latest.sha256, settings) and latest.signature["n_features"] == 4
    registry.set_alias(me, "iris", "staging", 2)
    assert registry.resolve_version(me, "iris").version == 3  # only `production` changes the default
    registry.set_alias(me, "iris", "production", 1)
    production = registry.resolve_version(me, "iris")
    assert (production.version, production.resolved_by, production.alias) == (1, "production", "production")
    by_alias = registry.resolve_version(me, "iris", "staging")
    assert (by_alias.version, by_alias.resolved_by, by_alias.alias) == (2, "alias", "staging")
    explicit = registry.resolve_version(me, "iris", 3)
    assert (explicit.version, explicit.resolved_by) == (3, "version")
    with pytest.raises(NotFound) as caught:
        registry.resolve_version(me, "iris", "canary")
    assert caught.value.code == "alias_not_found"
    with pytest.raises(NotFound) as caught:
        registry.resolve_version(me, "iris", 9)
    assert caught.value.code == "version_not_found"


def test_without_production_the_newest_active_version_serves_then_the_newest_deprecated(me, gate):
    for seed in range(3):
        upload(me, "iris", model_bytes("logreg", seed))
    registry.update_version(me, "iris", 3, status="archived")
    assert registry.resolve_version(me, "iris").version == 2
    registry.update_version(me, "iris", 2, status="deprecated")
    assert registry.resolve_version(me, "iris").version == 1
    registry.update_version(me, "iris", 1, status="deprecated")
    fallback = registry.resolve_version(me, "iris")
    assert (fallback.version, fallback.status.value) == (2, "deprecated")
    for number in (1, 2):
        registry.update_version(me, "iris", number, status="archived")
    with pytest.raises(NotFound) as caught:
        registry.resolve_version(me, "iris")
    assert caught.value.code == "no_servable_version"
    registry.create_model(me, "empty")
    with pytest.raises(NotFound):
        registry.resolve_version(me, "empty")


def test_soft_delete_keeps_rows_and_files_and_stops_serving(me, gate, settings):
    first = upload(me, "iris", model_bytes("logreg", 0))
    upload(me, "iris", model_bytes("logreg", 1))
    registry.set_alias(me, "iris", "production", 1)
    registry.delete_model(me, "iris")
    assert len(rows(ModelVersion)) == 2 and len(stored_files(settings.models_dir)) == 2
    assert registry.get_model(me, "iris").aliases == {"production": 1}
    assert registry.get_version(me, "iris", 1) == first.model_copy(update={"aliases": ["production"]})
    with pytest.raises(NotFound) as caught:
        registry.resolve_version(me, "iris")
    assert caught.value.code == "model_deleted"
    for change in (lambda: registry.update_version(me, "iris", 1, status="deprecated"),
                   lambda: registry.set_alias(me, "iris", "production", 2),
                   lambda: registry.delete_alias(me, "iris", "production")):
        with pytest.raises(Conflict) as caught:
            change()
        assert caught.value.code == "model_deleted"
    registry.update_model(me, "iris", status="active")
    assert registry.resolve_version(me, "iris").version == 1


def test_resolution_carries_the_models_serving_settings(me, gate):
    upload(me, "iris", model_bytes("logreg"))
    resolved = registry.resolve_version(me, "iris")
    assert (resolved.rate_limit_per_minute, resolved.cache_ttl_seconds) == (None, None)
    registry.update_model(me, "iris", rate_limit_per_minute=5, cache_ttl_seconds=0)
    resolved = registry.resolve_version(me, "iris", 1)
    assert (resolved.rate_limit_per_minute, resolved.cache_ttl_seconds) == (5, 0)
