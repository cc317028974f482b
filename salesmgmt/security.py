"""Abuse protection shared by every app: the login lockout's answer (django-axes), expiring API tokens, the
password-reset rate, and the 429 answer of every API operation in the schema.

The settings (and their environment variables) are in `salesmgmt.settings`, section "abuse protection"."""

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework import exceptions, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

# --- login lockout (django-axes) -------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address (AXES_CLIENT_IP_CALLABLE, and the password-reset rate), read as DRF's throttles read
    it: REMOTE_ADDR, or behind PROXY_COUNT proxies of ours the X-Forwarded-For entry the outermost one added (the
    entries before it are the client's to write)."""
    if settings.BEHIND_PROXY:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops:
            return hops[-min(settings.PROXY_COUNT, len(hops))]
    return request.META.get("REMOTE_ADDR", "")


def cool_off_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = max(1, math.ceil(cool_off_seconds() / 60))
    return ngettext(
        "Too many failed logins: this account is locked from your address for %(minutes)d minute. "
        "Try again later, or ask an administrator to unlock it.",
        "Too many failed logins: this account is locked from your address for %(minutes)d minutes. "
        "Try again later, or ask an administrator to unlock it.",
        minutes,
    ) % {"minutes": minutes}


class LockedOut(exceptions.APIException):
    """The API's lockout answer: 429 with the message and Retry-After (the whole cool-off: every try while
    locked starts it again)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self):
        super().__init__(detail=lockout_message())
        self.wait = cool_off_seconds()


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a locked-out login on the form gets the form again with the message (429); an API
    call gets the JSON error shape."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": lockout_message(), "code": LockedOut.default_code}, status=429)
    else:
        username = (credentials or {}).get("username") or request.POST.get("username", "")
        context = {
            "form": AuthenticationForm(request, initial={"username": username}),
            "locked_out": lockout_message(),
            "next": request.POST.get("next") or request.GET.get("next", ""),
        }
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(cool_off_seconds())
    return response


# --- API tokens --------------------------------------------------------------------------------------


def token_ttl() -> timedelta:
    return timedelta(hours=settings.API_TOKEN_TTL_HOURS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a token issued more than API_TOKEN_TTL_HOURS ago (401)."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token.created < timezone.now() - token_ttl():
            raise exceptions.AuthenticationFailed(
                _("The token has expired: obtain a new one at /api/auth/token/."), code="token_expired"
            )
        return user, token


@transaction.atomic
def issue_token(user) -> Token:
    """A new API token for `user`, replacing (and so revoking) the one it had: each login rotates the token and
    starts its lifetime again."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


# --- password reset rate -----------------------------------------------------------------------------


class PasswordResetThrottle(SimpleRateThrottle):
    """PASSWORD_RESET_RATE requests per `ident` (a client IP address, an e-mail address), in the default cache."""

    scope = "password_reset"

    def __init__(self, ident: str):
        self.ident = ident
        super().__init__()

    def get_rate(self):
        return settings.PASSWORD_RESET_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, refused with the form's error (429, Retry-After) past PASSWORD_RESET_RATE requests
    from one IP address or for one e-mail address. The answer never tells whether the address has an account."""

    def post(self, request, *args, **kwargs):
        email = request.POST.get("email", "").strip().lower()
        throttles = [PasswordResetThrottle(f"ip:{client_ip(request)}")]
        if email:
            throttles.append(PasswordResetThrottle(f"email:{email}"))
        refused = [throttle for throttle in throttles if not throttle.allow_request(request, self)]
        if not refused:
            return super().post(request, *args, **kwargs)
        form = self.get_form()
        form.is_valid()
        form.add_error(None, _("Too many password reset requests: please wait a while and try again."))
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(math.ceil(max(throttle.wait() or 1 for throttle in refused)))
        return response


# --- schema --------------------------------------------------------------------------------------------

THROTTLED_DESCRIPTION = _(
    "Too many requests (the client's API rate, or a login locked out after failed attempts): `detail` says so; "
    "retry after the number of seconds in the Retry-After header."
)


def add_throttled_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation may answer 429 with the error shape and Retry-After."""
    response = {
        "description": str(THROTTLED_DESCRIPTION),
        "headers": {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": str(_("Seconds to wait before the next request.")),
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                operation.setdefault("responses", {}).setdefault("429", response)
    return result
