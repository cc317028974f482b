"""Schemathesis against /api/schema/, every check, as each role: zero failures.

A live server serves the seeded company (tests/fuzz/conftest.py); `st run` (pinned in requirements-dev.txt)
generates requests from the schema with a fixed seed and number of examples per operation, in all its
phases (examples, coverage, fuzzing, stateful), and checks every response against the schema. Marked
`fuzz`: skipped unless FUZZ=1, which `.ci/fuzz` sets; FUZZ_MAX_EXAMPLES and FUZZ_SEED change the bounds."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.throttling import SimpleRateThrottle

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

ROLES = ["admin", "director", "manager", "rep"]
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "2"))
# A guard against a hung run (seconds, per role); on a free 2-core machine a role takes a few minutes.
TIMEOUT = int(os.environ.get("FUZZ_TIMEOUT", "1800"))
SEED = int(os.environ.get("FUZZ_SEED", "2026"))
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(autouse=True)
def _unthrottled(monkeypatch):
    """The fuzzer sends thousands of requests a minute from one address: at the production rates most would be
    answered 429 (the throttles are tested in tests/salesmgmt/test_security.py) and test nothing else."""
    rates = SimpleRateThrottle.THROTTLE_RATES
    for scope in list(rates):
        monkeypatch.setitem(rates, scope, "1000000/min")


def st_binary() -> str:
    found = Path(sys.executable).with_name("st")
    return str(found) if found.exists() else (shutil.which("st") or "st")


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing(role, world, live_server, tmp_path, pytestconfig):
    report = tmp_path / "report.json"
    schema = tmp_path / "schema.yaml"
    # The schema /api/schema/ serves, written once to a file (generating it takes longer than st waits).
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))
    command = [
        st_binary(),
        "--config-file",
        str(CONFIG),
        "run",
        str(schema),
        "--url",
        live_server.url,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    env = {**os.environ, "FUZZ_TOKEN": world.tokens[role]}
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=TIMEOUT)
    out_dir = os.environ.get("FUZZ_OUTPUT_DIR")
    if out_dir:
        Path(out_dir, f"st-{role}.txt").write_text(run.stdout + run.stderr)
        if report.exists():
            shutil.copy(report, Path(out_dir, f"st-{role}.json"))
    print(run.stdout[-20000:])
    assert report.exists(), run.stderr[-4000:]
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    summary = f"schemathesis as {role}: {cases['generated']} cases, {cases['unique_failures']} unique failures"
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n{summary} ({result['running_time']:.0f} s)")
    assert result["operations"]["tested"] == result["operations"]["selected"] > 100
    assert cases["generated"] > 0
    assert run.returncode == 0, f"schemathesis found failures as {role}:\n{run.stdout[-20000:]}\n{run.stderr[-4000:]}"
    assert cases["unique_failures"] == 0
