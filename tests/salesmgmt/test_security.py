"""Abuse protection: the login lockout (form and token endpoint), the password-reset rate, the API's throttles,
expiring and rotated API tokens, and the Content-Security-Policy header (salesmgmt.security, the settings)."""

import re
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.salesmgmt.test_settings import run_manage

PASSWORD = "pw-test-123"
LOGIN = "/accounts/login/"
TOKEN = "/api/auth/token/"
RESET = "/accounts/password_reset/"
LOCKED = "Too many failed logins: this account is locked from your address for 15 minutes."


def form_login(username, password, ip="10.0.0.1"):
    return Client(REMOTE_ADDR=ip).post(LOGIN, {"username": username, "password": password})


def token_login(username, password, ip="10.0.0.1"):
    return APIClient(REMOTE_ADDR=ip).post(TOKEN, {"username": username, "password": password}, format="json")


# --- lockout on the login form -------------------------------------------------------------------------


def test_the_form_locks_a_username_and_address_out_after_five_failures_until_the_cool_off_ends(org):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(4):
            response = form_login("rep", "wrong")
            assert response.status_code == 200
            assert "didn't match" in response.content.decode()
        fifth = form_login("rep", "wrong")
        assert fifth.status_code == 429 and fifth["Retry-After"] == "900"
        page = fifth.content.decode()
        assert 'data-testid="locked-out"' in page and LOCKED in page
        assert 'name="username"' in page and 'value="rep"' in page  # the form again, with the name typed
        # Locked out: the right password is refused too, from that address...
        right = form_login("rep", PASSWORD)
        assert right.status_code == 429 and "_auth_user_id" not in right.wsgi_request.session
        # ...while the same user from another address, and another user from this one, log in.
        assert form_login("rep", PASSWORD, ip="10.0.0.2").status_code == 302
        assert form_login("manager", PASSWORD).status_code == 302
        # Each try while locked starts the cool-off again: 14 minutes after the last one it still holds.
        clock.shift(timedelta(minutes=14))
        assert form_login("rep", PASSWORD).status_code == 429
        clock.shift(timedelta(minutes=16))
        after = form_login("rep", PASSWORD)
        assert after.status_code == 302 and after["Location"] == "/"


def test_a_successful_login_clears_the_failures_before_the_limit(org):
    for _ in range(4):
        form_login("rep", "wrong")
    assert form_login("rep", PASSWORD).status_code == 302
    for _ in range(4):
        assert form_login("rep", "wrong").status_code == 200  # counted from zero again


def test_an_administrator_unlocks_a_locked_out_user(org):
    for _ in range(5):
        form_login("rep", "wrong")
    assert form_login("rep", PASSWORD).status_code == 429
    assert AccessAttempt.objects.filter(username="rep", ip_address="10.0.0.1").exists()  # listed in the admin
    call_command("axes_reset_username", "rep")
    assert form_login("rep", PASSWORD).status_code == 302


def test_the_failure_limit_and_cool_off_come_from_the_settings(org, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    assert form_login("rep", "wrong").status_code == 200
    second = form_login("rep", "wrong")
    assert second.status_code == 429 and second["Retry-After"] == "60"
    assert "locked from your address for 1 minute." in second.content.decode()


def test_behind_a_proxy_the_lockout_counts_the_address_the_proxy_saw(org, settings):
    settings.BEHIND_PROXY = True

    def via_proxy(password, client_ip, spoofed=""):
        # The proxy (REMOTE_ADDR 10.0.0.254) appends the address it saw to what the client sent.
        forwarded = f"{spoofed}, {client_ip}" if spoofed else client_ip
        client = Client(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=forwarded)
        return client.post(LOGIN, {"username": "rep", "password": password})

    for number in range(5):
        via_proxy("wrong", "198.51.100.7", spoofed=f"192.0.2.{number}")  # a new made-up address each time
    assert via_proxy(PASSWORD, "198.51.100.7", spoofed="192.0.2.99").status_code == 429
    assert via_proxy(PASSWORD, "198.51.100.8").status_code == 302  # another client behind the same proxy
    assert AccessAttempt.objects.get().ip_address == "198.51.100.7"


# --- lockout on the token endpoint ----------------------------------------------------------------------


def test_the_token_endpoint_locks_out_after_five_failures_with_a_json_429(org):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(4):
            response = token_login("rep", "wrong")
            assert response.status_code == 400 and response.json()["code"] == "invalid"
        fifth = token_login("rep", "wrong")
        assert fifth.status_code == 429 and fifth["Retry-After"] == "900"
        assert fifth.json() == {
            "detail": LOCKED + " Try again later, or ask an administrator to unlock it.",
            "code": "locked_out",
        }
        right = token_login("rep", PASSWORD)
        assert right.status_code == 429 and "token" not in right.json()
        assert token_login("manager", PASSWORD).status_code == 200  # another user from the same address
        # The form and the endpoint count together: the pair is locked on the form too.
        assert form_login("rep", PASSWORD).status_code == 429
        clock.shift(timedelta(minutes=16))
        assert token_login("rep", PASSWORD).status_code == 200


# --- password reset ----------------------------------------------------------------------------------------


def test_password_reset_mails_a_link_that_sets_a_new_password(org):
    org.rep.email = "rep@example.com"
    org.rep.save(update_fields=["email"])
    client = Client()
    response = client.post(RESET, {"email": "rep@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    (message,) = mail.outbox
    assert message.to == ["rep@example.com"]
    link = re.search(r"http://\S+/accounts/reset/\S+/", message.body).group(0)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and 'name="new_password1"' in form.content.decode()
    new = {"new_password1": "N3w-secret-pw!", "new_password2": "N3w-secret-pw!"}
    done = client.post(form.redirect_chain[-1][0], new)
    assert done.status_code == 302
    org.rep.refresh_from_db()
    assert org.rep.check_password("N3w-secret-pw!")


def test_password_reset_requests_are_limited_per_address_and_per_email(org):
    org.rep.email = "rep@example.com"
    org.rep.save(update_fields=["email"])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            assert Client(REMOTE_ADDR="10.0.0.1").post(RESET, {"email": "rep@example.com"}).status_code == 302
        refused = Client(REMOTE_ADDR="10.0.0.1").post(RESET, {"email": "rep@example.com"})
        assert refused.status_code == 429 and int(refused["Retry-After"]) == 3600
        assert "Too many password reset requests" in refused.content.decode()
        # The same e-mail from another address is refused too, and so is this address for another e-mail.
        assert Client(REMOTE_ADDR="10.0.0.2").post(RESET, {"email": "rep@example.com"}).status_code == 429
        assert Client(REMOTE_ADDR="10.0.0.1").post(RESET, {"email": "x@example.com"}).status_code == 429
        assert len(mail.outbox) == 5
        # Another address, another e-mail: served.
        assert Client(REMOTE_ADDR="10.0.0.3").post(RESET, {"email": "y@example.com"}).status_code == 302
        clock.shift(timedelta(hours=1, seconds=1))
        assert Client(REMOTE_ADDR="10.0.0.1").post(RESET, {"email": "rep@example.com"}).status_code == 302
        assert len(mail.outbox) == 6


# --- API throttles --------------------------------------------------------------------------------------------


def test_anonymous_calls_over_the_rate_get_a_json_429_with_retry_after(org, monkeypatch):
    # The calls an anonymous client can make (the token endpoint here) count per address.
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/min")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert [token_login("rep", PASSWORD, ip="10.0.0.9").status_code for _ in range(3)] == [200, 200, 200]
        response = token_login("rep", PASSWORD, ip="10.0.0.9")
        assert response.status_code == 429 and response["Retry-After"] == "60"
        body = response.json()
        assert body["code"] == "throttled" and "throttled" in body["detail"]
        assert token_login("rep", PASSWORD, ip="10.0.0.8").status_code == 200  # another address
        clock.shift(timedelta(seconds=61))
        assert token_login("rep", PASSWORD, ip="10.0.0.9").status_code == 200


def test_each_user_has_his_own_rate(org, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "2/min")
    rep, manager = APIClient(), APIClient()
    rep.force_authenticate(org.rep)
    manager.force_authenticate(org.manager)
    with time_machine.travel(timezone.now(), tick=False):
        assert [rep.get("/api/users/me/").status_code for _ in range(3)] == [200, 200, 429]
        assert manager.get("/api/users/me/").status_code == 200


def test_the_token_endpoint_has_its_own_stricter_rate(org, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "auth_token", "2/min")
    with time_machine.travel(timezone.now(), tick=False):
        codes = [token_login("rep", PASSWORD).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# --- expiring tokens -----------------------------------------------------------------------------------------


def test_a_token_expires_after_its_ttl_and_a_new_login_rotates_it(org):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        key = token_login("rep", PASSWORD).json()["token"]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        clock.shift(timedelta(hours=24 * 7) - timedelta(minutes=1))
        assert client.get("/api/users/me/").status_code == 200
        clock.shift(timedelta(minutes=2))
        expired = client.get("/api/users/me/")
        assert expired.status_code == 401 and expired["WWW-Authenticate"] == "Token"
        assert expired.json() == {
            "detail": "The token has expired: obtain a new one at /api/auth/token/.",
            "code": "token_expired",
        }
        fresh = token_login("rep", PASSWORD).json()["token"]
        assert fresh != key and list(Token.objects.filter(user=org.rep).values_list("key", flat=True)) == [fresh]
        client.credentials(HTTP_AUTHORIZATION=f"Token {fresh}")
        assert client.get("/api/users/me/").json()["username"] == "rep"


def test_the_token_lifetime_comes_from_the_settings(org, settings):
    settings.API_TOKEN_TTL_HOURS = 1
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_login('rep', PASSWORD).json()['token']}")
        clock.shift(timedelta(minutes=59))
        assert client.get("/api/users/me/").status_code == 200
        clock.shift(timedelta(minutes=2))
        assert client.get("/api/users/me/").json()["code"] == "token_expired"


# --- Content-Security-Policy ------------------------------------------------------------------------------------

EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def csp_directives(response) -> dict[str, str]:
    parts = [part.strip() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in parts}


def test_every_page_has_the_policy_with_exactly_these_directives(org, client_for):
    assert csp_directives(Client().get(LOGIN)) == EXPECTED_CSP
    assert csp_directives(client_for(org.rep).get("/")) == EXPECTED_CSP
    api = APIClient()
    api.force_authenticate(org.rep)
    assert csp_directives(api.get("/api/users/me/")) == EXPECTED_CSP


def test_the_swagger_page_is_under_the_policy_too(org, client_for):
    """Swagger UI comes from the app's static files and starts from a script file (no CDN, no inline script)."""
    response = client_for(org.rep).get("/api/docs/")
    assert response.status_code == 200 and csp_directives(response) == EXPECTED_CSP


# --- the environment -------------------------------------------------------------------------------------------


def test_the_limits_are_read_from_the_environment():
    code = (
        "from django.conf import settings as s; r = s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), s.API_TOKEN_TTL_HOURS, "
        "s.PASSWORD_RESET_RATE, r['user'], r['anon'], r['auth_token'], "
        "s.CONTENT_SECURITY_POLICY['DIRECTIVES'].get('report-uri'))"
    )
    env = {
        "AXES_FAILURE_LIMIT": "7",
        "AXES_COOLOFF_MINUTES": "30",
        "API_TOKEN_TTL_HOURS": "12",
        "PASSWORD_RESET_RATE": "3/hour",
        "API_RATE_USER": "500/min",
        "API_RATE_ANON": "20/min",
        "API_RATE_TOKEN": "5/min",
        "CSP_REPORT_URI": "/csp-report/",
    }
    result = run_manage("shell", "-c", code, env_extra=env)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip().splitlines()[-1].split()
    assert printed == ["7", "1800.0", "12", "3/hour", "500/min", "20/min", "5/min", "['/csp-report/']"]


@pytest.mark.parametrize("name,value", [("AXES_FAILURE_LIMIT", "0"), ("API_TOKEN_TTL_HOURS", "soon")])
def test_bad_limits_fail_loudly(name, value):
    result = run_manage("check", env_extra={name: value})
    assert result.returncode != 0 and name in result.stderr
