"""Health, readiness (503 naming what is down) and Prometheus metrics."""

from __future__ import annotations


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(app):
    from connector.queue import connect

    app.extensions["baton"].redis = connect("redis://127.0.0.1:1/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"].startswith("unreachable")
    assert body["checks"].get("database") is None
    assert "redis" in body["error"]["message"]


def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "baton_escalations_total" in text
    assert "baton_http_requests_total" in text
