"""Production's gunicorn settings (salesmgmt/gunicorn.py): one request per connection unless told otherwise, and
a worker that has loaded the app freezes its start-up objects out of the garbage collector's scans."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env_extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_KEEPALIVE",)}
    env.update(DJANGO_SETTINGS_MODULE="salesmgmt.settings", **env_extra)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_no_keep_alive_unless_told():
    code = "import salesmgmt.gunicorn as g; print(g.keepalive)"
    assert run_python(code) == "0"
    assert run_python(code, WEB_KEEPALIVE="75") == "75"


def test_a_loaded_worker_freezes_what_lives_as_long_as_the_process():
    code = (
        "import django, gc; django.setup(); import salesmgmt.gunicorn as g\n"
        "assert gc.get_freeze_count() == 0\n"
        "g.post_worker_init(None)\n"
        "from django.urls import get_resolver\n"
        "print(gc.get_freeze_count(), get_resolver()._populated)"
    )
    frozen, populated = run_python(code).split()
    assert int(frozen) > 50_000  # Django, the apps, their models and URL patterns
    assert populated == "True"
