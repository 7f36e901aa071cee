import pytest

OPERATIONS_WITHOUT_ERRORS = {("get", "/health"), ("get", "/health/ready"), ("get", "/metrics"),
                             ("get", "/v2/health/live"), ("get", "/v2/health/ready"), ("get", "/v2")}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def operations(client) -> list[tuple[str, str, dict]]:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    found = [
        (method, path, op)
        for path, item in r.json()["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]
    assert len([1 for _, path, _ in found if path.startswith("/api/v1/")]) >= 10  # the walk sees routes
    return found


def test_every_api_operation_has_a_summary(operations):
    missing = [f"{m.upper()} {p}" for m, p, op in operations
               if p.startswith("/api/v1") and not op.get("summary")]
    assert missing == []


def test_every_operation_but_health_and_metrics_documents_a_4xx(operations):
    undocumented = [
        f"{m.upper()} {p}"
        for m, p, op in operations
        if (m, p) not in OPERATIONS_WITHOUT_ERRORS
        and not any(str(code).startswith("4") for code in op.get("responses", {}))
    ]
    assert undocumented == []


def test_documented_errors_use_the_error_schema(operations):
    login = next(op for m, p, op in operations if (m, p) == ("post", "/api/v1/auth/login"))
    assert "429" in login["responses"]
    schema = login["responses"]["429"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ErrorBody")


def test_the_docs_page_answers(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in r.text
