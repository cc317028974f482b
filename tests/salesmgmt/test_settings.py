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


def test_the_log_level_is_read_in_either_case():
    """gunicorn's own `LOG_LEVEL` is lower case (`salesmgmt.gunicorn`): the same variable configures Django's."""
    for level in ("warning", "INFO"):
        result = run_manage("check", env_extra={"LOG_LEVEL": level})
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name,value", [("DEBUG", "maybe"), ("DB_CONN_MAX_AGE", "ten"), ("DB_PGBOUNCER", "perhaps")])
def test_bad_environment_values_fail_loudly(name, value):
    result = run_manage("check", env_extra={name: value})
    assert result.returncode != 0
    assert name in result.stderr


def start_process(command: list[str], env_extra: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TESTING", "SECRET_KEY", "HTTPS")}
    env.update(env_extra)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


LOAD_WSGI = [sys.executable, "-c", "import salesmgmt.wsgi"]  # what gunicorn does first


@pytest.mark.parametrize("https", ["0", "1"])
@pytest.mark.parametrize("key", [None, "short-but-real"])
def test_the_web_app_refuses_to_start_without_a_real_secret_key_when_debug_is_off(https, key):
    env = {"DEBUG": "0", "HTTPS": https, **({"SECRET_KEY": key} if key else {})}
    result = start_process(LOAD_WSGI, env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("env", [{"DEBUG": "0", "SECRET_KEY": "a-real-production-secret-" + "q" * 30}, {"DEBUG": "1"}])
def test_the_web_app_starts_with_a_real_key_or_in_development(env):
    result = start_process(LOAD_WSGI, env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("program", [["worker", "--pool=solo"], ["beat", "--schedule", "/dev/null"]])
def test_celery_worker_and_beat_refuse_the_dev_secret_key_when_debug_is_off(program, tmp_path):
    if program[0] == "beat":
        program = ["beat", "--schedule", str(tmp_path / "schedule")]
    command = [sys.executable, "-m", "celery", "-A", "salesmgmt", *program, "-l", "warning"]
    result = start_process(command, {"DEBUG": "0", "CELERY_BROKER_URL": "memory://"})
    assert result.returncode != 0
    assert "SECRET_KEY is the development key" in result.stdout + result.stderr


def test_management_commands_still_run_to_prepare_a_deployment():
    """migrate / collectstatic run before the secret is in place; only serving processes refuse."""
    result = run_manage("check", env_extra={"DEBUG": "0"})
    assert result.returncode == 0, result.stderr


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
        "salesmgmt.cache.TolerantRedisCache",  # Redis down is a cache miss (tests/salesmgmt/test_cache.py)
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
