"""`make run` prints the logins the README's tour uses and the address it serves (`demo_logins`)."""

import re
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from pipeline.management.commands.seed_demo import TOUR_LOGINS, seed_organisation

ROOT = Path(__file__).resolve().parents[2]


def demo_logins(**options) -> str:
    out = StringIO()
    call_command("demo_logins", stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def demo_people(db):
    seed_organisation()  # the demo company's people, as `seed_demo` loads them (without its deals)


def test_the_printed_logins_are_the_tours(demo_people):
    printed = re.findall(r"^  .+ (\S+)$", demo_logins(), re.MULTILINE)
    assert printed == ["admin", "director", "mgr_east", "rep_sh1"]


def test_the_tours_logins_are_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for username in TOUR_LOGINS.values():
        assert f"`{username}`" in readme


def test_the_printed_address_follows_the_server(demo_people):
    assert "http://127.0.0.1:8000/" in demo_logins()
    assert "http://127.0.0.1:8123/" in demo_logins(addr="127.0.0.1:8123")


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_run_serves_and_prints_the_same_port():
    commands = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "demo_logins --addr 127.0.0.1:8123" in commands
    assert "runserver 127.0.0.1:8123" in commands
