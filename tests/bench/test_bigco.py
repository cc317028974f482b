"""The big-company generator of `make bench` at 1 % scale: the promised shape, and the engine, the raw
SQL and the pandas script of the attainment benchmark agreeing to the cent.

PostgreSQL only: the generator loads with COPY (as in CI's PostgreSQL run, `make test-postgres`).
"""

import math
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F, Max, Q, Sum

from bench import bench_attainment, bigco
from bench.bigco import COMPANY_CODE, CUSTOMERS_PER_REP, DEALS_PER_REP, HISTORY_PER_DEAL, fan_outs, generate, scale_of
from crm.models import Customer, Region, RegionKind, Role, User
from pipeline.models import Opportunity, OpportunityHistory
from targets.attainment.services import attainment_recompute
from targets.models import AttainmentSnapshot, PlanStatus, TargetNode, TargetNodeAmount

SCALE = 0.01
REPS = 50


@pytest.fixture
def company(db):
    if connection.vendor != "postgresql":
        pytest.skip("bench.bigco loads with PostgreSQL COPY: runs in the PostgreSQL suite (make test-postgres)")
    return generate(SCALE, verbose=False)


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_organisation_has_six_region_levels_and_teams_of_reps(company):
    regions = {r.pk: r for r in Region.objects.filter(Q(code__startswith="BC-") | Q(code=COMPANY_CODE))}
    assert company.counts["region levels"] == 6
    assert {r.depth for r in regions.values()} == {0, 1, 2, 3, 4, 5}
    for region in regions.values():
        parent_path = regions[region.parent_id].path if region.parent_id else "/"
        assert region.path == f"{parent_path}{region.pk}/"
        assert region.manager_id is not None
    teams = {pk for pk, r in regions.items() if r.kind == RegionKind.TEAM}
    assert teams == {pk for pk, r in regions.items() if r.depth == 5}
    reps = User.objects.filter(role=Role.REP, username__startswith="bc-")
    assert reps.count() == REPS
    assert set(reps.values_list("region_id", flat=True)) == teams
    assert Customer.objects.filter(owner__in=reps).count() == REPS * CUSTOMERS_PER_REP


def test_deals_and_history_are_consistent_with_their_final_stage(company):
    today = company.today
    deals = Opportunity.objects.filter(owner__username__startswith="bc-")
    assert deals.count() == REPS * DEALS_PER_REP
    changes = OpportunityHistory.objects.filter(opportunity__in=deals, field="stage").count()
    assert abs(changes - REPS * DEALS_PER_REP * HISTORY_PER_DEAL) < 0.03 * changes
    # The last stage change enters the deal's stage; each change leaves the stage the previous one entered.
    wrong_last = _rows(
        """
        SELECT count(*) FROM (
            SELECT DISTINCT ON (h.opportunity_id) h.new_stage_id, o.stage_id
            FROM pipeline_opportunityhistory h JOIN pipeline_opportunity o ON o.id = h.opportunity_id
            ORDER BY h.opportunity_id, h.changed_at DESC, h.id DESC
        ) x WHERE new_stage_id <> stage_id
        """
    )[0][0]
    broken_chain = _rows(
        """
        SELECT count(*) FROM (
            SELECT old_stage_id, lag(new_stage_id) OVER (PARTITION BY opportunity_id ORDER BY changed_at, id) AS prev
            FROM pipeline_opportunityhistory
        ) x WHERE old_stage_id IS DISTINCT FROM prev
        """
    )[0][0]
    assert (wrong_last, broken_chain) == (0, 0)
    assert not deals.filter(stage__is_won=True, closed_on__isnull=True).exists()
    # A close day exactly on won and lost deals: the open-deal lists and their index rely on it.
    assert not deals.filter(stage__is_lost=True, closed_on__isnull=True).exists()
    assert not deals.filter(stage__is_won=False, stage__is_lost=False, closed_on__isnull=False).exists()
    assert not deals.filter(stage__is_won=True, closed_on__gt=today).exists()
    assert not deals.open().filter(expected_close_date__lte=today).exists()
    assert deals.won().filter(closed_on__year=today.year - 2).exists(), "three years of history"
    assert deals.open().exists() and deals.filter(stage__is_lost=True).exists()
    # first_won_on is each customer's first won deal.
    wrong_first = _rows(
        """
        SELECT count(*) FROM crm_customer c
        LEFT JOIN (
            SELECT o.customer_id, min(o.closed_on) AS first FROM pipeline_opportunity o
            JOIN pipeline_stage s ON s.id = o.stage_id WHERE s.is_won GROUP BY o.customer_id
        ) w ON w.customer_id = c.id
        WHERE c.first_won_on IS DISTINCT FROM w.first
        """
    )[0][0]
    assert wrong_first == 0


def test_plan_has_rep_month_segment_leaves_that_sum_up_the_tree(company):
    plan = company.plan
    assert plan.status == PlanStatus.APPROVED and plan.period_start <= company.today <= plan.period_end
    nodes = TargetNode.objects.filter(plan=plan)
    leaves = nodes.leaves()
    assert leaves.count() == REPS * 12 * 2
    assert set(leaves.values_list("segment", flat=True)) == {"existing", "new"}
    assert not leaves.filter(rep__isnull=True).exists() and not leaves.exclude(owner_id=F("rep_id")).exists()
    assert set(leaves.values_list("period_kind", flat=True)) == {"month"}
    assert nodes.get(parent=None).amount == plan.total
    unbalanced = _rows(
        """
        SELECT p.id FROM targets_targetnode p JOIN targets_targetnode c ON c.parent_id = p.id
        WHERE p.plan_id = %s GROUP BY p.id, p.amount HAVING sum(c.amount) <> p.amount
        """,
        [plan.pk],
    )
    assert unbalanced == []
    assert not nodes.exclude(split_dimension="").filter(children__isnull=True).exists()
    assert all(len(path) == 5 * (depth + 1) for path, depth in nodes.values_list("path", "depth"))
    assert nodes.aggregate(d=Max("depth"))["d"] == 8  # root, 5 region levels, rep, month, segment
    assert TargetNodeAmount.objects.filter(plan=plan, version_from=1).count() == nodes.count()


def test_engine_raw_sql_and_pandas_agree_to_the_cent(company, tmp_path):
    plan, today = company.plan, company.today
    written = attainment_recompute(plan=plan, as_of=today)
    engine = bench_attainment.snapshot_cents(plan)
    sql = bench_attainment.sql_cents(plan, today)
    facts_csv, nodes_csv = bench_attainment.export_csv(plan, tmp_path)
    pandas, _read = bench_attainment.pandas_cents(facts_csv, nodes_csv, plan.period_start, plan.period_end, today)

    assert written == len(engine) == TargetNode.objects.filter(plan=plan).count()
    assert bench_attainment.mismatches(engine, sql) == []
    assert bench_attainment.mismatches(engine, pandas) == []
    # Not vacuous: the root from the ORM, independently of all three.
    root = TargetNode.objects.get(plan=plan, parent=None)
    won = (
        Opportunity.objects.won()
        .filter(owner__username__startswith="bc-", closed_on__range=(plan.period_start, today))
        .aggregate(s=Sum("amount_company"))["s"]
    )
    open_deals = Opportunity.objects.open().filter(expected_close_date__range=(plan.period_start, plan.period_end))
    open_total = open_deals.aggregate(s=Sum("amount_company"))["s"]
    assert won > 0 and open_total > 0
    assert engine[root.pk][0] == int(won * 100)
    assert engine[root.pk][2] == int(open_total * 100)
    snapshot = AttainmentSnapshot.objects.get(node=root, as_of=today)
    assert snapshot.target == plan.total and snapshot.actual == Decimal(engine[root.pk][0]) / 100


def test_tiers_are_scales_and_tier_l_keeps_six_levels_of_50_rep_regions():
    assert [scale_of(t) for t in ("S", "m", "L", "3", 0.5)] == [0.1, 1.0, 10.0, 3.0, 0.5]
    for bad in ("XL", "0", "-1"):
        with pytest.raises(ValueError):
            scale_of(bad)
    assert fan_outs(500) == [4, 3, 3, 3]  # tier M as it was
    fans = fan_outs(5_000)  # tier L: 5,000 teams of 10 under the 5 levels above them
    assert len(fans) == 4
    teams_per_holder = 5_000 / math.prod(fans)
    assert 4 <= teams_per_holder <= 5  # as tier M's 500 / 108: the manager of a ~50-rep region
    assert all(0 < f <= 6 for f in fan_outs(1_500))


def _fingerprint() -> dict[str, str]:
    """The generated rows as text, ids made relative to the first of their table and stages named (ids of
    two generations differ), hashed per table."""
    first = "(SELECT min(id) FROM {} WHERE {})"
    deal0 = first.format("pipeline_opportunity", "name LIKE 'BigCo deal %%'")
    user0 = first.format("crm_user", "username LIKE 'bc-%%'")
    customer0 = first.format("crm_customer", "name LIKE 'BigCo customer %%'")
    queries = {
        "deals": f"""
            SELECT md5(string_agg(concat_ws(',', o.id - {deal0}, o.name, o.customer_id - {customer0},
                o.owner_id - {user0}, s.name, o.amount, o.amount_company, o.expected_close_date, o.closed_on,
                o.probability, o.forecast_category, o.lost_reason, o.created_at, o.stage_entered_at, o.version),
                ';' ORDER BY o.id))
            FROM pipeline_opportunity o JOIN pipeline_stage s ON s.id = o.stage_id WHERE o.name LIKE 'BigCo deal %%'
        """,
        "history": f"""
            SELECT md5(string_agg(concat_ws(',', h.opportunity_id - {deal0}, h.field, h.old_value, h.new_value,
                so.name, sn.name, h.changed_by_id - {user0}, h.changed_at), ';' ORDER BY h.id))
            FROM pipeline_opportunityhistory h JOIN pipeline_stage sn ON sn.id = h.new_stage_id
            LEFT JOIN pipeline_stage so ON so.id = h.old_stage_id
            WHERE h.opportunity_id >= {deal0}
        """,
        "leaves": """
            SELECT md5(string_agg(concat_ws(',', n.path, n.segment, n.period_key, n.amount), ';' ORDER BY n.path))
            FROM targets_targetnode n WHERE n.plan_id = (SELECT max(id) FROM targets_targetplan)
        """,
    }
    return {name: _rows(sql)[0][0] for name, sql in queries.items()}


def test_generating_in_chunks_changes_no_row(db, monkeypatch):
    """Deals and stage changes are built and sent CHUNK_DEALS deals at a time: the rows are the same whatever
    the chunk (tier M's company is what every benchmark was measured on)."""
    if connection.vendor != "postgresql":
        pytest.skip("bench.bigco loads with PostgreSQL COPY: runs in the PostgreSQL suite (make test-postgres)")
    from django.db import transaction
    from django.utils import timezone

    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    fingerprints = []
    for chunk in (bigco.CHUNK_DEALS, 1_000):  # 6,000 deals: one chunk, then 6 (the last one short)
        monkeypatch.setattr(bigco, "CHUNK_DEALS", chunk)
        with transaction.atomic():
            generated = generate(SCALE, verbose=False)
            fingerprints.append(_fingerprint())
            transaction.set_rollback(True)
    assert generated.counts["opportunities"] == REPS * DEALS_PER_REP
    assert fingerprints[0] == fingerprints[1]
    assert None not in fingerprints[0].values()
