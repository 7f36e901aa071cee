import re
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families


def test_a_request_id_is_generated(client):
    first = client.get("/health").headers["x-request-id"]
    second = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@pytest.mark.parametrize("given", ["abc-123", "trace.ID_0042", "x" * 64])
def test_a_safe_request_id_is_echoed(client, given):
    assert client.get("/health", headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["has space", "x" * 65, "<script>", "semi;colon", "../etc"])
def test_an_unsafe_request_id_is_replaced(client, given):
    echoed = client.get("/health", headers={"X-Request-ID": given}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_errors_carry_the_request_id_too(client, settings):
    r = client.post("/api/v1/auth/register", content=b" " * (settings.max_body_bytes + 1),
                    headers={"Content-Type": "application/json", "X-Request-ID": "req-413"})
    assert r.status_code == 413 and r.headers["x-request-id"] == "req-413"


@pytest.mark.parametrize("path", ["/health", "/api/v1/auth/me", "/api/v1/nowhere"])
def test_json_answers_carry_nosniff(client, path):
    r = client.get(path)
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def scrape(client) -> list:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(r.text) for sample in family.samples]


def request_count(client, method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    found = [s.value for s in scrape(client)
             if s.name == "mlplatform_http_requests_total" and s.labels == labels]
    return found[0] if found else 0.0


def test_metrics_count_requests_by_route_template_and_status(client, admin):
    route = "/api/v1/api-keys/{key_id}"
    key_id = uuid.uuid4()
    before = request_count(client, "DELETE", route, 404)
    for _ in range(3):
        assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin.headers).status_code == 404
    assert request_count(client, "DELETE", route, 404) == before + 3

    samples = scrape(client)
    assert not any(str(key_id) in str(s.labels) for s in samples)  # raw paths never become labels
    latency = [
        s for s in samples
        if s.name == "mlplatform_http_request_duration_seconds_count"
        and s.labels == {"method": "DELETE", "route": route, "status": "404"}
    ]
    assert latency and latency[0].value >= 3
    buckets = {s.labels["le"] for s in samples if s.name == "mlplatform_http_request_duration_seconds_bucket"}
    assert {"0.005", "1.0", "+Inf"} <= buckets


def test_metrics_label_each_status_separately(client):
    before_ok = request_count(client, "GET", "/api/v1/auth/me", 200)
    before_401 = request_count(client, "GET", "/api/v1/auth/me", 401)
    assert client.get("/api/v1/auth/me").status_code == 401
    assert request_count(client, "GET", "/api/v1/auth/me", 401) == before_401 + 1
    assert request_count(client, "GET", "/api/v1/auth/me", 200) == before_ok
