"""/healthz reports the database, Redis and the workers, and names what fails."""

import pytest


@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_when_database_redis_and_a_worker_answer(client, celery_worker):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert celery_worker in body["checks"]["worker"]["answered"]


@pytest.mark.django_db
def test_healthz_is_503_naming_redis_and_workers_when_redis_is_gone(
    client, settings, tmp_path
):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing-listens-here.sock"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis", "worker"]
    assert body["checks"]["database"]["ok"] is True
    assert "No such file" in body["checks"]["redis"]["error"]


def test_plotly_is_served_locally(client):
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert len(body) > 1_000_000 and b"plotly" in body[:2000].lower()
