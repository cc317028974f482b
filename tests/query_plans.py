"""Query plans at size, for the guards in tests/*/test_query_plans.py (PostgreSQL only).

`big_company()` builds, in SQL and in a few seconds, a company large enough that PostgreSQL's planner uses an
index wherever one serves: 200 teams of 10 reps under 5 areas and 25 provinces, 300,000 deals (one in six
open, closing in the coming year; the others won or lost in the past ones), and one plan of 74,000 targets
(team, rep, 12 months x 2 segments). Then ANALYZE, so the planner knows the sizes.

`seq_scans_of(sql, table)` runs EXPLAIN (FORMAT JSON) on a statement exactly as the app sent it (captured
with `CaptureQueriesContext` around a request) and returns the sequential scans of `table` in its plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import CompanySettings, Region, RegionKind, Role, User
from crm.services import ensure_company_currency
from pipeline.services import pipeline_ensure_default
from tests.factories import make_region

AREAS, PROVINCES, TEAMS = 5, 5, 8  # per company, per area, per province: 200 teams
REPS_PER_TEAM = 10
DEALS = 300_000
OPEN_EVERY = 6  # one deal in six is open
LEAVES_PER_REP = 24  # 12 months x 2 segments


@dataclass
class BigCompany:
    director: User
    province_manager: User  # 8 teams, 80 reps: 4 % of the company
    team_manager: User  # 10 reps
    rep: User
    province: Region
    plan: object


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's: runs in the PostgreSQL suite (make test-postgres)")


def company_fixture(**options):
    """A module-scoped `company` fixture: built once for the module inside a transaction rolled back at its end
    (each test runs in a savepoint of it), so no other test ever sees these rows."""

    @pytest.fixture(scope="module")
    def company(django_db_setup, django_db_blocker):
        needs_postgresql()
        with django_db_blocker.unblock(), transaction.atomic():
            yield big_company(**options)
            transaction.set_rollback(True)

    return company


def _manager(region: Region, role: str = Role.MANAGER) -> User:
    user = User.objects.create(username=f"qp-m{region.pk}", role=role, region=region, password="!")
    region.manager = user
    region.save(update_fields=["manager"])
    return user


def big_company(*, deals: int = DEALS) -> BigCompany:
    """The company, its deals (`deals` of them) and its plan."""
    CompanySettings.load()
    currency = ensure_company_currency()
    pipeline = pipeline_ensure_default()
    company = make_region("QP company", "QP", kind=RegionKind.COMPANY)
    director = _manager(company, Role.DIRECTOR)
    teams = []
    for a in range(AREAS):
        area = make_region(f"Area {a}", f"QP{a}", parent=company, kind=RegionKind.AREA)
        _manager(area)
        for p in range(PROVINCES):
            province = make_region(f"Province {a}.{p}", f"QP{a}.{p}", parent=area, kind=RegionKind.PROVINCE)
            _manager(province)
            for t in range(TEAMS):
                team = make_region(f"Team {a}.{p}.{t}", f"QP{a}.{p}.{t}", parent=province)
                _manager(team)
                teams.append(team)
    User.objects.bulk_create(
        User(username=f"qp-r{team.pk}-{i}", role=Role.REP, region=team, password="!")
        for team in teams
        for i in range(REPS_PER_TEAM)
    )
    today = timezone.localdate()
    reps = list(User.objects.filter(username__startswith="qp-r").order_by("pk").values_list("pk", "region_id"))
    stages = list(pipeline.stages.order_by("order"))
    with connection.cursor() as cursor, _without_row_triggers(cursor):
        # Deal g: open when g % 6 = 0 (closing within the coming year), else won or lost in the past 1,000 days;
        # six deals in a row go to the same rep, the reps taking turns.
        cursor.execute(
            """
            WITH deal AS (
                SELECT g, g %% %(every)s = 0 AS open, (g / %(every)s) %% %(reps)s + 1 AS rep,
                       CASE WHEN g %% %(every)s = 0
                            THEN (%(open)s::bigint[])[(g / %(every)s) %% cardinality(%(open)s::bigint[]) + 1]
                            ELSE (%(closed)s::bigint[])[g %% cardinality(%(closed)s::bigint[]) + 1] END AS stage,
                       CASE WHEN g %% %(every)s = 0 THEN %(today)s::date + (g / %(every)s) %% 365
                            ELSE %(today)s::date - 1 - g %% 1000 END AS close
                FROM generate_series(0, %(deals)s - 1) g
            )
            INSERT INTO pipeline_opportunity (
                name, amount, amount_company, expected_close_date, closed_on, probability, probability_reason,
                forecast_category, next_step, lost_reason, external_id, stage_entered_at, created_at, updated_at,
                version, currency_id, owner_id, region_id, pipeline_id, stage_id)
            SELECT 'Deal ' || d.g, 1000 + d.g %% 9000, 1000 + d.g %% 9000, d.close,
                   CASE WHEN d.open THEN NULL ELSE d.close END, s.probability, '', s.forecast_category, '', '', '',
                   now(), now(), now(), 1, %(currency)s, (%(owners)s::bigint[])[d.rep],
                   (%(teams)s::bigint[])[d.rep], %(pipeline)s, s.id
            FROM deal d JOIN pipeline_stage s ON s.id = d.stage
            """,
            {
                "every": OPEN_EVERY,
                "reps": len(reps),
                "owners": [pk for pk, _team in reps],
                "teams": [team for _pk, team in reps],
                "open": [s.pk for s in stages if not s.is_closed],
                "closed": [s.pk for s in stages if s.is_closed],
                "pipeline": pipeline.pk,
                "today": today,
                "deals": deals,
                "currency": currency.code,
            },
        )
        plan = _plan(cursor, company, director, today)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_region, crm_user, pipeline_opportunity, targets_targetnode")
    province = Region.objects.get(code="QP2.3")
    team = Region.objects.get(code="QP2.3.4")
    return BigCompany(
        director=director,
        province_manager=province.manager,
        team_manager=team.manager,
        rep=User.objects.filter(region=team, role=Role.REP).first(),
        province=province,
        plan=plan,
    )


@contextmanager
def _without_row_triggers(cursor) -> Iterator[None]:
    """The rows are consistent by construction: no foreign-key trigger per row (as `bench.bigco` loads). With
    them, every test's end (Django checks deferred constraints) would check the 370,000 rows again."""
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0]:
        yield
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checked once, here
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        return
    cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        cursor.execute("SET session_replication_role = DEFAULT")


def _plan(cursor, company: Region, director: User, today):
    """An approved company plan: root -> team -> rep -> 24 leaves (months x segments), as SQL."""
    from targets.models import PlanStatus, TargetNode, TargetPlan
    from targets.planning.metrics import metric_ensure_defaults

    metric = next(m for m in metric_ensure_defaults() if m.code == "won_revenue")
    start, end = today.replace(month=1, day=1), today.replace(month=12, day=31)
    year = {"period_kind": "year", "period_key": str(today.year), "period_start": start, "period_end": end}
    plan = TargetPlan.objects.create(
        metric=metric,
        name="Query plans",
        total=Decimal("1000000"),
        status=PlanStatus.APPROVED,
        owner=director,
        created_by=director,
        current_version=1,
        **year,
    )
    root = TargetNode.objects.create(
        plan=plan, path="0001.", depth=0, region=company, owner=director, amount=plan.total, **year
    )
    common = "segment, period_kind, period_key, period_start, period_end, split_method, amount, version, updated_at"
    cursor.execute(
        f"""
        INSERT INTO targets_targetnode (plan_id, parent_id, path, depth, region_id, owner_id, split_dimension,
                                        deadline, {common})
        SELECT %(plan)s, %(root)s, '0001.' || lpad((row_number() OVER (ORDER BY r.id))::text, 4, '0') || '.',
               1, r.id, r.manager_id, 'rep', %(end)s, '', 'year', %(key)s, %(start)s, %(end)s, 'manual', 5000, 1,
               now()
        FROM crm_region r WHERE r.kind = 'team' AND r.code LIKE 'QP%%'
        """,
        {"plan": plan.pk, "root": root.pk, "start": start, "end": end, "key": str(today.year)},
    )
    cursor.execute(
        f"""
        INSERT INTO targets_targetnode (plan_id, parent_id, path, depth, region_id, rep_id, owner_id,
                                        split_dimension, deadline, {common})
        SELECT n.plan_id, n.id,
               n.path || lpad((row_number() OVER (PARTITION BY n.id ORDER BY u.id))::text, 4, '0') || '.',
               2, n.region_id, u.id, u.id, 'month', n.deadline, '', 'year', n.period_key, n.period_start,
               n.period_end, 'manual', 500, 1, now()
        FROM targets_targetnode n JOIN crm_user u ON u.region_id = n.region_id AND u.role = 'rep'
        WHERE n.plan_id = %(plan)s AND n.depth = 1
        """,
        {"plan": plan.pk},
    )
    cursor.execute(
        f"""
        INSERT INTO targets_targetnode (plan_id, parent_id, path, depth, region_id, rep_id, owner_id,
                                        split_dimension, deadline, {common})
        SELECT n.plan_id, n.id, n.path || lpad(k::text, 4, '0') || '.', 3, n.region_id, n.rep_id, n.owner_id,
               '', n.deadline, CASE WHEN k %% 2 = 0 THEN 'new' ELSE 'existing' END, 'year', n.period_key,
               n.period_start, n.period_end, '', 20, 1, now()
        FROM targets_targetnode n CROSS JOIN generate_series(1, %(leaves)s) k
        WHERE n.plan_id = %(plan)s AND n.depth = 2
        """,
        {"plan": plan.pk, "leaves": LEAVES_PER_REP},
    )
    return plan


def sql_of(qs) -> str:
    """The statement a queryset runs, its parameters in place (as the app sends it)."""
    return connection.ops.compose_sql(*qs.query.sql_with_params())


def explain(sql: str) -> dict:
    """The plan PostgreSQL would run `sql` with (EXPLAIN (FORMAT JSON); the statement is not run)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


def seq_scans_of(sql: str, table: str) -> list[dict]:
    """The sequential scans of `table` in the plan of `sql`."""
    return [n for n in plan_nodes(explain(sql)) if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table]


def index_names(sql: str) -> set[str]:
    """The indexes the plan of `sql` reads."""
    return {n["Index Name"] for n in plan_nodes(explain(sql)) if "Index Name" in n}


def reading(queries: list[dict], table: str) -> list[str]:
    """The captured SELECTs that read `table`."""
    return [q["sql"] for q in queries if q["sql"].lstrip("( ").startswith("SELECT") and f'"{table}"' in q["sql"]]


def statements_reading(table: str, client, *calls) -> list[str]:
    """The statements that read `table` while `client` GETs each call: (url, params, extra request headers)."""
    with CaptureQueriesContext(connection) as ctx:
        for url, params, headers in calls:
            response = client.get(url, params, **headers)
            assert response.status_code == 200, (url, params, response.status_code)
    return reading(ctx.captured_queries, table)


def assert_no_full_scan(statements: list[str], table: str, what: str) -> None:
    assert statements, f"{what}: no statement read {table}"
    for sql in statements:
        assert not seq_scans_of(sql, table), f"{what} reads every row of {table} (a Seq Scan):\n{sql}"
