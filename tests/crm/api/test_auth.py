"""Token and session authentication; unauthenticated calls get a JSON 401."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import results


def test_token_obtained_with_username_and_password_authenticates_later_calls(org, deals):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "rep", "password": "pw-test-123"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/users/me/").json()["username"] == "rep"
    assert {row["owner"] for row in results(client.get("/api/opportunities/"))} == {org.rep.pk}
    # The next login rotates the token: a new one, and the old one no longer works.
    again = APIClient().post("/api/auth/token/", {"username": "rep", "password": "pw-test-123"}, format="json")
    assert again.status_code == 200 and again.json()["token"] != token
    assert client.get("/api/users/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {again.json()['token']}")
    assert client.get("/api/users/me/").json()["username"] == "rep"


def test_wrong_password_is_a_json_400(org):
    response = APIClient().post("/api/auth/token/", {"username": "rep", "password": "nope"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"]["non_field_errors"] == ["Unable to log in with provided credentials."]
    assert "token" not in body


def test_token_endpoint_takes_json_only(org):
    response = APIClient().post("/api/auth/token/", {"username": "rep", "password": "pw-test-123"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "url", ["/api/opportunities/", "/api/customers/", "/api/users/me/", "/api/collections/", "/api/pipelines/"]
)
def test_unauthenticated_call_is_a_json_401(db, url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_a_json_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/opportunities/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_session_login_works_and_writes_need_the_csrf_token(org, deals):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(org.rep)
    assert client.get("/api/users/me/").json()["username"] == "rep"

    response = client.post("/api/activities/", {"customer": deals["rep"].customer_id}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
