"""Registered models through the service: create, list, search, filter, page, ownership, update,
soft delete and restore, name rules, scopes."""

import pytest

from mlplatform.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mlplatform.services import principals, registry
from mlplatform.services.registry_common import MAX_PAGE_SIZE


@pytest.fixture
def me(member, principal_of):
    return principal_of(member)


@pytest.fixture
def key_principal(new_key):
    """The principal an API key with `scopes` authenticates as."""

    def make(user, scopes):
        return principals.authenticate_api_key(new_key(user, scopes).secret)

    return make


def test_create_returns_the_public_view(me, member):
    model = registry.create_model(me, "churn", "  Predicts churn  ", ["tabular", "churn", "tabular"])
    assert (model.name, model.owner_email, model.description) == ("churn", member.email, "Predicts churn")
    assert model.tags == ["tabular", "churn"]  # deduplicated, order kept
    assert (model.status.value, model.latest_version, model.aliases) == ("active", None, {})
    assert registry.get_model(me, "churn") == model


def test_a_name_is_unique_per_owner_but_two_owners_may_share_it(me, admin, principal_of):
    registry.create_model(me, "churn")
    with pytest.raises(Conflict) as caught:
        registry.create_model(me, "churn")
    assert caught.value.code == "model_exists"
    assert registry.create_model(principal_of(admin), "churn").owner_email == admin.email


@pytest.mark.parametrize("name", ["", "Churn", "-churn", "_x", "churn model", "churn/1", "ü", "a" * 65, "a.b"])
def test_names_must_be_slugs(me, name):
    with pytest.raises(InvalidInput) as caught:
        registry.create_model(me, name)
    assert caught.value.code == "invalid_name" and "lowercase letters, digits" in caught.value.message


def test_names_the_dashboard_uses_as_pages_are_reserved(me):
    with pytest.raises(InvalidInput) as caught:
        registry.create_model(me, "upload")
    assert caught.value.code == "invalid_name" and "reserved" in caught.value.message


@pytest.mark.parametrize("name", ["a", "9", "churn-v2_final", "a" * 64])
def test_valid_names(me, name):
    assert registry.create_model(me, name).name == name


def test_tags_are_slugs_too_and_limited_in_number(me):
    with pytest.raises(InvalidInput) as caught:
        registry.create_model(me, "x", tags=["Bad Tag"])
    assert caught.value.code == "invalid_tag"
    with pytest.raises(InvalidInput):
        registry.create_model(me, "y", tags=[f"t{i}" for i in range(21)])


def test_list_pages_newest_activity_first(me):
    for name in ["m1", "m2", "m3", "m4", "m5"]:
        registry.create_model(me, name)
    first = registry.list_models(me, page=1, per_page=2)
    rest = [registry.list_models(me, page=p, per_page=2) for p in (2, 3)]
    assert (first.total, first.page, first.per_page) == (5, 1, 2)
    assert [m.name for m in first.items + rest[0].items + rest[1].items] == ["m5", "m4", "m3", "m2", "m1"]
    assert registry.list_models(me, page=4, per_page=2).items == []
    clamped = registry.list_models(me, page=0, per_page=10_000)
    assert (clamped.page, clamped.per_page) == (1, MAX_PAGE_SIZE)


def test_search_matches_name_or_description_case_insensitively_and_literally(me):
    registry.create_model(me, "churn", "Customer CHURN model")
    registry.create_model(me, "fraud", "card fraud; see churn_notes")
    registry.create_model(me, "price", "house prices")
    assert {m.name for m in registry.list_models(me, q="Churn").items} == {"churn", "fraud"}
    assert [m.name for m in registry.list_models(me, q="PRICE").items] == ["price"]
    assert registry.list_models(me, q="%").total == 0  # LIKE wildcards are literal
    assert [m.name for m in registry.list_models(me, q="churn_").items] == ["fraud"]
    with pytest.raises(InvalidInput):
        registry.list_models(me, q="a\x00")


def test_filter_by_tag_matches_whole_tags(me):
    registry.create_model(me, "a", tags=["vision", "prod"])
    registry.create_model(me, "b", tags=["vision-test"])
    registry.create_model(me, "c", tags=["prod"])
    assert {m.name for m in registry.list_models(me, tag="vision").items} == {"a"}
    assert {m.name for m in registry.list_models(me, tag="prod").items} == {"a", "c"}
    assert registry.list_models(me, tag="vis").total == 0
    with pytest.raises(InvalidInput):
        registry.list_models(me, tag='x"')


def test_deleted_models_leave_the_default_list_and_show_under_status_deleted(me):
    registry.create_model(me, "keep")
    registry.create_model(me, "gone")
    deleted = registry.delete_model(me, "gone")
    assert deleted.status.value == "deleted"
    assert [m.name for m in registry.list_models(me).items] == ["keep"]
    assert [m.name for m in registry.list_models(me, status="active").items] == ["keep"]
    assert [m.name for m in registry.list_models(me, status="deleted").items] == ["gone"]
    with pytest.raises(InvalidInput):
        registry.list_models(me, status="archived")


def test_a_deleted_model_is_readable_read_only_keeps_its_name_and_can_be_restored(me):
    registry.create_model(me, "churn", "first")
    registry.delete_model(me, "churn")
    assert registry.delete_model(me, "churn").status.value == "deleted"  # idempotent
    assert registry.get_model(me, "churn").status.value == "deleted"
    with pytest.raises(Conflict) as caught:
        registry.update_model(me, "churn", description="changed")
    assert caught.value.code == "model_deleted"
    with pytest.raises(Conflict) as caught:
        registry.create_model(me, "churn")
    assert caught.value.code == "model_exists"
    restored = registry.update_model(me, "churn", status="active", description="back")
    assert (restored.status.value, restored.description) == ("active", "back")


def test_update_changes_only_what_is_given(me):
    registry.create_model(me, "churn", "desc", ["a"])
    assert registry.update_model(me, "churn", tags=["b", "c"]).description == "desc"
    updated = registry.update_model(me, "churn", description="")
    assert (updated.description, updated.tags) == ("", ["b", "c"])
    assert updated.updated_at > updated.created_at
    with pytest.raises(InvalidInput):
        registry.update_model(me, "churn", status="archived")


def test_other_users_models_are_not_found_on_every_operation(me, admin, make_user, principal_of):
    registry.create_model(me, "mine")
    other = principal_of(make_user("other@example.com")[0])
    calls = [
        lambda: registry.get_model(other, "mine"),
        lambda: registry.update_model(other, "mine", description="x"),
        lambda: registry.delete_model(other, "mine"),
        lambda: registry.list_versions(other, "mine"),
        lambda: registry.get_version(other, "mine", 1),
        lambda: registry.update_version(other, "mine", 1, status="archived"),
        lambda: registry.set_alias(other, "mine", "production", 1),
        lambda: registry.delete_alias(other, "mine", "production"),
        lambda: registry.resolve_version(other, "mine"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.code == "model_not_found"
    assert registry.list_models(other).total == 0
    # naming the owner does not help a non-administrator, and says nothing about the account
    for owner in ("member@example.com", "nobody@example.com"):
        with pytest.raises(NotFound) as caught:
            registry.get_model(other, "mine", owner=owner)
        assert caught.value.code == "owner_not_found"
    assert registry.get_model(me, "mine").status.value == "active"


def test_admins_list_every_owner_and_address_a_model_by_owner(me, member, admin, principal_of):
    root = principal_of(admin)
    registry.create_model(me, "churn")
    registry.create_model(root, "churn")
    everyone = registry.list_models(root)
    assert sorted((m.name, m.owner_email) for m in everyone.items) == [
        ("churn", member.email), ("churn", admin.email)
    ]
    assert [m.owner_email for m in registry.list_models(root, owner=member.email).items] == [member.email]
    assert registry.get_model(root, "churn").owner_email == admin.email  # their own by default
    theirs = registry.update_model(root, "churn", description="by admin", owner=" Member@Example.com ")
    assert (theirs.owner_email, theirs.description) == (member.email, "by admin")
    assert registry.create_model(root, "for-member", owner=member.email).owner_email == member.email
    assert registry.get_model(me, "for-member").name == "for-member"
    with pytest.raises(NotFound) as caught:
        registry.get_model(root, "churn", owner="nobody@example.com")
    assert caught.value.code == "owner_not_found"


def test_scopes(member, key_principal):
    reader = key_principal(member, ["models:read"])
    writer = key_principal(member, ["models:write"])
    predictor = key_principal(member, ["predict"])
    assert registry.create_model(writer, "churn").name == "churn"
    assert registry.update_model(writer, "churn", description="x").description == "x"
    assert registry.get_model(reader, "churn").description == "x"
    assert registry.list_models(reader).total == 1
    for call in (lambda: registry.create_model(reader, "other"), lambda: registry.delete_model(reader, "churn"),
                 lambda: registry.list_models(writer), lambda: registry.get_model(predictor, "churn")):
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert caught.value.code == "insufficient_scope"


def test_serving_settings_change_when_given_and_none_returns_to_the_default(me):
    created = registry.create_model(me, "churn")
    assert (created.rate_limit_per_minute, created.cache_ttl_seconds) == (None, None)
    updated = registry.update_model(me, "churn", rate_limit_per_minute=600, cache_ttl_seconds=0)
    assert (updated.rate_limit_per_minute, updated.cache_ttl_seconds) == (600, 0)
    assert registry.update_model(me, "churn", description="d").rate_limit_per_minute == 600  # untouched
    assert registry.get_model(me, "churn").cache_ttl_seconds == 0
    cleared = registry.update_model(me, "churn", rate_limit_per_minute=None)
    assert (cleared.rate_limit_per_minute, cleared.cache_ttl_seconds) == (None, 0)


@pytest.mark.parametrize("field, bad", [
    ("rate_limit_per_minute", 0), ("rate_limit_per_minute", 2**31), ("rate_limit_per_minute", True),
    ("cache_ttl_seconds", -1), ("cache_ttl_seconds", 366 * 24 * 3600 + 1), ("cache_ttl_seconds", 1.5),
])
def test_serving_settings_are_checked(me, field, bad):
    registry.create_model(me, "churn")
    with pytest.raises(InvalidInput) as caught:
        registry.update_model(me, "churn", **{field: bad})
    assert caught.value.details == {"field": field}
    assert getattr(registry.get_model(me, "churn"), field) is None


def test_a_deleted_models_serving_settings_change_only_on_restore(me):
    registry.create_model(me, "churn")
    registry.delete_model(me, "churn")
    with pytest.raises(Conflict):
        registry.update_model(me, "churn", cache_ttl_seconds=10)
    restored = registry.update_model(me, "churn", status="active", cache_ttl_seconds=10)
    assert restored.cache_ttl_seconds == 10
