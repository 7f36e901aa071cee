"""The error format for what no route handles: unknown paths and wrong methods."""

import pytest


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/whatever", "/api/v1/auth/nope", "/api/v2/x/y", "/api/"])
def test_unknown_api_paths_answer_json_404(client, expect_error, method, path):
    error = expect_error(getattr(client, method)(path), 404, "route_not_found")
    assert error["message"] == f"No API route {path}"


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("get", "/api/v1/auth/login", {"POST"}),
        ("put", "/api/v1/auth/me", {"GET"}),
        ("delete", "/api/v1/api-keys", {"GET", "POST"}),
        ("get", "/api/v1/api-keys/3fa85f64-5717-4562-b3fc-2c963f66afa6", {"DELETE"}),
        ("post", "/health", {"GET"}),
    ],
)
def test_a_wrong_method_on_a_known_route_answers_405(client, expect_error, method, path, allowed):
    r = getattr(client, method)(path)
    expect_error(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} >= allowed


def test_with_the_ui_mounted_behind_the_api_unknown_paths_still_answer_json(settings, expect_error):
    """The composition root mounts the Reflex app at "" after every API route, as here."""
    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from mlplatform.api.app import create_api

    api = create_api(settings)
    api.mount("", PlainTextResponse("the ui"))
    with TestClient(api) as c:
        assert c.get("/account/").text == "the ui"
        expect_error(c.get("/api/v1/whatever"), 404, "route_not_found")
        expect_error(c.delete("/api/v1/auth/login"), 405, "method_not_allowed")
        assert c.get("/api/v1/auth/me").status_code == 401
