"""gunicorn as production runs it answers a keep-alive client one request per connection (`Connection: close`),
so each request goes to a worker with a free moment to accept it, not to the worker that accepted the client
first (the load benchmark's 60 users had one of three workers doing two thirds of the work)."""

import pytest
import requests
from django.db import connection

from tests.integration.serving import Gunicorn, base_env

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_a_keep_alive_client_gets_one_request_per_connection(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("a server process needs a shared database: runs in the PostgreSQL suite")
    served = Gunicorn(tmp_path, base_env(), workers=2, threads=2)
    try:
        with requests.Session() as session:
            answers = [session.get(served.url + "/accounts/login/", timeout=30) for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        assert {a.headers.get("Connection", "").lower() for a in answers} == {"close"}
    finally:
        served.stop()
