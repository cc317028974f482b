"""The statement the attainment engine runs, written out: `manage.py attainment_sql` renders it for a
sample plan and `sample_statement.sql` beside this file holds it, so a reader sees the query that runs and
any change to it shows in review. After a deliberate change, rewrite the file with
`UPDATE_SAMPLE_SQL=1 pytest tests/targets/attainment/test_statement.py` (PostgreSQL) and review the diff."""

import os
import re
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from targets.attainment.services import attainment_recompute
from targets.models import LatestAttainment
from tests.targets.attainment.test_recompute import build_plan

SAMPLE = Path(__file__).with_name("sample_statement.sql")
AS_OF = date(2027, 9, 15)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement engine is PostgreSQL's; SQLite uses the reference"
)


@pytest.fixture
def sample_plan(org, metrics):
    """FY2027 signed revenue split by region, rep and month: the usual shape of a plan."""
    with time_machine.travel("2027-09-15 09:00 +0800", tick=False):
        return build_plan(org, metrics["won_revenue"], dimensions=("region", "rep", "month"))


def rendered(plan, *options) -> str:
    out = StringIO()
    call_command("attainment_sql", "--plan", str(plan.pk), "--as-of", AS_OF.isoformat(), *options, stdout=out)
    return out.getvalue()


def normalised(sql: str, plan) -> str:
    """The ids of this run's rows (they differ from run to run) as named placeholders."""
    return re.sub(rf"\bplan_id = {plan.pk}\b", "plan_id = :plan_id", sql)


@postgresql_only
def test_the_statement_for_a_sample_plan_is_the_checked_in_one(sample_plan):
    sql = normalised(rendered(sample_plan), sample_plan)
    if os.environ.get("UPDATE_SAMPLE_SQL"):
        SAMPLE.write_text(sql)
    assert sql == SAMPLE.read_text()


@postgresql_only
def test_the_rendered_statement_is_the_one_that_runs(sample_plan):
    """Run the printed text as it stands: it computes every node of the plan (none has figures yet), as the
    engine's own run then writes them."""
    sql = rendered(sample_plan)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.execute("SELECT count(*) FROM attainment_changed")
        (computed,) = cursor.fetchone()
        cursor.execute("DROP TABLE attainment_changed")
    assert computed == sample_plan.nodes.count()
    assert attainment_recompute(plan=sample_plan, as_of=AS_OF) == computed
    assert LatestAttainment.objects.filter(node__plan=sample_plan).count() == computed


@pytest.mark.django_db
def test_the_command_refuses_sqlite_or_an_unknown_plan():
    with pytest.raises(CommandError, match="PostgreSQL" if connection.vendor != "postgresql" else "No plan"):
        call_command("attainment_sql", "--plan", "999999", stdout=StringIO())
