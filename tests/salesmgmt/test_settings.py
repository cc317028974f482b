"""Settings: production variables give a clean `check --deploy`; bad values fail loudly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, env_extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "TESTING", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(env_extra)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_check_deploy_is_clean_with_production_variables():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_extra={
            "DEBUG": "0",
            "HTTPS": "1",
            "SECRET_KEY": "x" * 30 + "-Prod-Secret-9f8e7d6c5b4a3210zyxw",
            "ALLOWED_HOSTS": "sales.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_them():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_extra={"DEBUG": "0"})
    assert result.returncode != 0


@pytest.mark.parametrize("name,value", [("DEBUG", "maybe"), ("DB_CONN_MAX_AGE", "ten"), ("DB_PGBOUNCER", "perhaps")])
def test_bad_environment_values_fail_loudly(name, value):
    result = run_manage("check", env_extra={name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_production_refuses_the_dev_secret_key():
    result = run_manage("check", env_extra={"DEBUG": "0", "HTTPS": "1", "ALLOWED_HOSTS": "x"})
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def database_settings(**env_extra) -> list[str]:
    code = (
        "from django.conf import settings; db = settings.DATABASES['default']; "
        "print(db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS'], db.get('DISABLE_SERVER_SIDE_CURSORS', False))"
    )
    result = run_manage("shell", "--verbosity", "0", "-c", code, env_extra=env_extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_connections_persist_a_minute_with_a_health_check_unless_told_otherwise():
    assert database_settings() == ["60", "True", "False"]
    assert database_settings(DB_CONN_MAX_AGE="0") == ["0", "True", "False"]
    # Behind PgBouncer in transaction pooling: chunked reads without server-side cursors.
    assert database_settings(DB_PGBOUNCER="1") == ["60", "True", "True"]


def test_sessions_are_read_from_redis_when_it_is_configured():
    code = "from django.conf import settings; print(settings.SESSION_ENGINE, settings.CACHES['default']['BACKEND'])"

    def engine(**env_extra):
        result = run_manage("shell", "--verbosity", "0", "-c", code, env_extra=env_extra)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert engine(REDIS_URL="") == [
        "django.contrib.sessions.backends.db",
        "django.core.cache.backends.locmem.LocMemCache",
    ]
    assert engine(REDIS_URL="redis://127.0.0.1:6379/0") == [
        "django.contrib.sessions.backends.cached_db",
        "django.core.cache.backends.redis.RedisCache",
    ]


def connection_options(**env_extra) -> str:
    code = "from django.conf import settings; print(repr(settings.DATABASES['default'].get('OPTIONS', {})))"
    result = run_manage("shell", "--verbosity", "0", "-c", code, env_extra=env_extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_connections_turn_jit_off_unless_told_or_behind_pgbouncer():
    url = "postgres://app@127.0.0.1:5432/app"
    assert connection_options(DATABASE_URL=url) == "{'options': '-c jit=off'}"
    assert connection_options(DATABASE_URL=f"{url}?options=-c%20statement_timeout%3D5000") == (
        "{'options': '-c statement_timeout=5000 -c jit=off'}"
    )
    assert connection_options(DATABASE_URL=url, DB_JIT="1") == "{}"
    # PgBouncer refuses startup options: there it is set on the role or database.
    assert connection_options(DATABASE_URL=url, DB_PGBOUNCER="1") == "{}"
    assert "jit" not in connection_options(DATABASE_URL="sqlite:///x.sqlite3")


def test_the_apps_postgresql_connection_runs_without_jit(db):
    """A statement estimated high (an alert evaluation of a few dozen nodes) would otherwise pay 50-180 ms of
    JIT compilation for a 2 ms run."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
