from datetime import timedelta

import pytest

from mlplatform.errors import AuthenticationFailed
from mlplatform.services import auth, tokens
from mlplatform.services.browser import SESSION_COOKIE, principal_from_cookie_header, safe_next_path


@pytest.mark.parametrize("target", ["/", "/account/", "/admin/users/?page=2"])
def test_local_next_paths_are_kept(target):
    assert safe_next_path(target) == target


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "account", ""],
)
def test_foreign_or_odd_next_paths_fall_back_to_home(target):
    assert safe_next_path(target) == "/"


def test_session_cookie_identifies_the_user(make_user):
    user, password = make_user()
    session = auth.start_browser_session(user.email, password, "127.0.0.1")
    principal = principal_from_cookie_header(f"theme=dark; {SESSION_COOKIE}={session.token}")
    assert principal.user_id == user.id and principal.auth_method == "session"
    assert session.max_age == 7 * 24 * 3600


def test_ended_session_is_refused(make_user):
    user, password = make_user()
    session = auth.start_browser_session(user.email, password, "127.0.0.1")
    auth.end_browser_session(session.token)
    with pytest.raises(AuthenticationFailed) as caught:
        principal_from_cookie_header(f"{SESSION_COOKIE}={session.token}")
    assert caught.value.code == "token_revoked"


@pytest.mark.parametrize("header", ["", "theme=dark", f"{SESSION_COOKIE}=", 'a="unterminated'])
def test_missing_or_junk_cookies_are_not_a_session(header):
    with pytest.raises(AuthenticationFailed):
        principal_from_cookie_header(header)


def test_an_access_token_is_not_a_session(make_user):
    user, _ = make_user()
    access = tokens.issue(user.id, tokens.ACCESS, timedelta(minutes=5))
    with pytest.raises(AuthenticationFailed):
        principal_from_cookie_header(f"{SESSION_COOKIE}={access}")
