import uuid

import pytest

from mlplatform.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mlplatform.services import auth, principals, tokens, users

from tests.services.helpers import IP, PASSWORD, auth_failure_code


@pytest.fixture
def team(admin, make_user):
    """The admin plus five more accounts, three of them on team.example."""
    names = ["a.one@team.example", "b.two@team.example", "c.three@team.example",
             "xavier@else.example", "yolanda@else.example"]
    return [admin] + [make_user(n)[0] for n in names]


def test_admin_lists_everyone_in_pages(admin, team, principal_of):
    me = principal_of(admin)
    first = users.list_users(me, page=1, size=4)
    second = users.list_users(me, page=2, size=4)
    assert (first.total, second.total, first.size, second.page) == (6, 6, 4, 2)
    assert len(first.items) == 4 and len(second.items) == 2
    seen = [u.id for u in first.items + second.items]
    assert sorted(seen) == sorted(u.id for u in team)
    assert users.list_users(me, page=3, size=4).items == []


def test_search_is_a_case_insensitive_substring_match(admin, team, principal_of):
    found = users.list_users(principal_of(admin), search="  TEAM.Example ")
    assert found.total == 3
    assert sorted(u.email for u in found.items) == [
        "a.one@team.example", "b.two@team.example", "c.three@team.example"
    ]


def test_search_treats_like_wildcards_literally(admin, make_user, principal_of):
    make_user("a_b@example.com")
    make_user("axb@example.com")
    me = principal_of(admin)
    assert [u.email for u in users.list_users(me, search="a_b").items] == ["a_b@example.com"]
    assert users.list_users(me, search="%").total == 0


def test_search_refuses_nul_bytes(admin, principal_of):
    with pytest.raises(InvalidInput):
        users.list_users(principal_of(admin), search="a\x00b")


def test_paging_arguments_are_clamped(admin, team, principal_of):
    page = users.list_users(principal_of(admin), page=0, size=10_000)
    assert (page.page, page.size, len(page.items)) == (1, users.MAX_PAGE_SIZE, 6)
    far = users.list_users(principal_of(admin), page=10**30, size=50)
    assert far.items == [] and far.total == 6


def test_non_admins_cannot_list_or_change_accounts(admin, member, principal_of):
    me = principal_of(member)
    for attempt in (
        lambda: users.list_users(me),
        lambda: users.set_active(me, admin.id, False),
        lambda: users.set_active(me, member.id, True),
    ):
        with pytest.raises(PermissionDenied) as caught:
            attempt()
        assert caught.value.code == "admin_required"


def test_an_admin_cannot_deactivate_themselves(admin, principal_of):
    with pytest.raises(Conflict) as caught:
        users.set_active(principal_of(admin), admin.id, False)
    assert caught.value.code == "cannot_deactivate_self"
    assert users.get_user(admin.id).is_active


def test_unknown_accounts_are_not_found(admin, principal_of):
    with pytest.raises(NotFound):
        users.set_active(principal_of(admin), uuid.uuid4(), False)
    with pytest.raises(NotFound):
        users.get_user(uuid.uuid4())


def test_deactivation_stops_tokens_refresh_tokens_and_keys(admin, member, new_key, principal_of):
    pair = auth.login(member.email, PASSWORD, IP)
    key = new_key(member)
    principals.authenticate_api_key(key.secret)  # warm this process's cache
    principals.authenticate_token(pair.access_token, tokens.ACCESS)

    changed = users.set_active(principal_of(admin), member.id, False)

    assert changed.is_active is False and users.get_user(member.id).is_active is False
    refused = auth_failure_code(principals.authenticate_token, pair.access_token, tokens.ACCESS)
    assert refused == "account_deactivated"
    assert auth_failure_code(principals.authenticate_api_key, key.secret) == "account_deactivated"
    assert auth_failure_code(auth.refresh, pair.refresh_token) == "invalid_refresh_token"
    assert auth_failure_code(auth.login, member.email, PASSWORD, IP) == "account_deactivated"


def test_reactivation_restores_access_but_not_revoked_refresh_tokens(admin, member, new_key, principal_of):
    pair = auth.login(member.email, PASSWORD, IP)
    key = new_key(member)
    users.set_active(principal_of(admin), member.id, False)

    assert users.set_active(principal_of(admin), member.id, True).is_active is True

    assert principals.authenticate_api_key(key.secret).user_id == member.id
    assert principals.authenticate_token(pair.access_token, tokens.ACCESS).user_id == member.id
    assert auth_failure_code(auth.refresh, pair.refresh_token) == "invalid_refresh_token"
    auth.login(member.email, PASSWORD, IP)
