def test_live_answers_ok(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(r.headers["x-request-id"]) == 32


def test_ready_reports_each_dependency(client):
    body = client.get("/health/ready").json()
    assert set(body["checks"]) == {"database", "redis", "worker", "model_hosts"}
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["model_hosts"]["ok"]
