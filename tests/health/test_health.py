def test_live(client):
    assert client.get("/health/live").json() == {"status": "ok"}


def test_ready_checks_the_database(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_ready_is_503_problem_when_database_is_gone(client):
    async def break_db():
        await client.app.state.engine.dispose()
        from app.core.config import Settings
        from app.core.db import make_engine

        client.app.state.engine = make_engine(
            Settings(_env_file=None, database_url="postgresql://nobody@127.0.0.1:1/none")
        )

    original = client.app.state.engine
    client.portal.call(break_db)
    try:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 503
    finally:
        client.portal.call(client.app.state.engine.dispose)
        client.app.state.engine = original
