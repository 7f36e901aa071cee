"""The foundation's promise, in a real browser: register, sign in, create a key, use it, revoke it."""

from __future__ import annotations

import re
import time
import uuid

import httpx
from playwright.sync_api import Page, expect

PASSWORD = "a long enough passphrase"


def register_and_sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/register/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("#register")
    expect(page).to_have_url(re.compile(r"/login/\?registered=1"))
    expect(page.get_by_text("Account created")).to_be_visible()
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")


def test_key_lifecycle_from_the_browser(page: Page, live_server: str, admin_account):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    register_and_sign_in(page, live_server, email)
    expect(page.locator("#current-user")).to_have_text(email)

    page.goto(f"{live_server}/account/")
    page.fill("#key-name", "browser test key")
    page.get_by_role("checkbox", name="models:read").click()
    page.click("#create-key")
    secret_box = page.locator("#new-key-secret")
    expect(secret_box).to_contain_text("mlp_")
    secret = secret_box.inner_text().strip()
    page.click("#close-secret")
    expect(secret_box).to_have_count(0)

    row = page.locator(".key-row", has_text="browser test key")
    expect(row).to_contain_text("predict, models:read")
    expect(row).to_contain_text(secret.split("_")[0] + "_" + secret.split("_")[1])

    me = httpx.get(f"{live_server}/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["email"] == email
    assert me.json()["scopes"] == ["models:read", "predict"]

    row.get_by_role("button", name="Revoke").click()
    page.click("#confirm-revoke")
    expect(row).to_contain_text("revoked")
    # the revoking process forgets at once; the other web workers follow within auth_cache_seconds
    deadline = time.monotonic() + 1.0
    refused = httpx.get(f"{live_server}/api/v1/auth/me", headers={"X-API-Key": secret})
    while refused.status_code != 401 and time.monotonic() < deadline:
        refused = httpx.get(f"{live_server}/api/v1/auth/me", headers={"X-API-Key": secret})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_revoked"


def test_pages_need_a_session_and_come_back_after_sign_in(page: Page, live_server: str, admin_account):
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    httpx.post(f"{live_server}/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    page.goto(f"{live_server}/account/")
    expect(page).to_have_url(re.compile(r"/login/\?next=%2Faccount%2F"))
    page.fill("#email", email)
    page.fill("#password", "wrong password!!")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_contain_text("Invalid email or password")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page).to_have_url(f"{live_server}/account/")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    assert "mlp_session" not in page.evaluate("document.cookie")

    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.goto(f"{live_server}/account/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))


def test_admin_deactivates_and_reactivates_a_user(page: Page, live_server: str, admin_account):
    victim = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    httpx.post(f"{live_server}/api/v1/auth/register", json={"email": victim, "password": PASSWORD})
    page.goto(f"{live_server}/login/?next=/admin/users/")
    page.fill("#email", admin_account[0])
    page.fill("#password", admin_account[1])
    page.click("#sign-in")
    expect(page.get_by_role("link", name="Users")).to_be_visible()

    page.fill("#user-search", victim)
    row = page.locator(".user-row", has_text=victim)
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Deactivate").click()
    page.click("#confirm-user-change")
    expect(row).to_contain_text("deactivated")
    login = httpx.post(f"{live_server}/api/v1/auth/login", json={"email": victim, "password": PASSWORD})
    assert login.status_code == 401 and login.json()["error"]["code"] == "account_deactivated"

    row.get_by_role("button", name="Reactivate").click()
    page.click("#confirm-user-change")
    expect(row).not_to_contain_text("deactivated")
    assert httpx.post(f"{live_server}/api/v1/auth/login",
                      json={"email": victim, "password": PASSWORD}).status_code == 200


def test_regular_users_do_not_see_admin_pages(page: Page, live_server: str, admin_account):
    email = f"eve-{uuid.uuid4().hex[:8]}@example.com"
    register_and_sign_in(page, live_server, email)
    expect(page.locator("#current-user")).to_have_text(email)
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    page.goto(f"{live_server}/admin/users/")
    expect(page.get_by_text("Administrator rights required")).to_be_visible()
