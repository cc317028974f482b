"""What a serving process checks before it starts: gunicorn (through `salesmgmt.wsgi`), a Celery worker and beat.

With DEBUG off the app refuses to start on the development SECRET_KEY (or on any key too short to sign sessions
safely), whatever HTTPS says: sessions, password-reset links and CSRF tokens would be forgeable by anyone who has
read this repository. Management commands (migrate, collectstatic, the demo seeds) still run, so a deployment can
be prepared before its secret is in place; the test suite (TESTING=1) is exempt.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEV_SECRET_KEY_PREFIX = "dev-only"
MIN_SECRET_KEY_LENGTH = 32


def insecure_secret_key(key: str) -> bool:
    return key.startswith(DEV_SECRET_KEY_PREFIX) or len(key) < MIN_SECRET_KEY_LENGTH


def refuse_insecure_start() -> None:
    """ImproperlyConfigured when a production process (DEBUG off, not the test suite) has no real SECRET_KEY."""
    if settings.DEBUG or getattr(settings, "TESTING", False):
        return
    if insecure_secret_key(settings.SECRET_KEY):
        raise ImproperlyConfigured(
            "SECRET_KEY is the development key (or shorter than "
            f"{MIN_SECRET_KEY_LENGTH} characters) and DEBUG is off: set SECRET_KEY to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=1 for development."
        )
