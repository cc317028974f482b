"""Subtree totals kept per region (crm/rollup.py): a company-wide figure added up from each region's kept total,
recounting only the regions a committed write moved since — and always equal to counting everything afresh.

These tests commit (transaction=True): the freshness versions move only after a commit, as in production."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count, Sum

from coaching.selectors import deal_figures, subtree_deal_figures
from crm import rollup
from crm.models import DataScope
from crm.scopes import region_subtree, sees_subtree
from pipeline import analytics
from pipeline.models import Opportunity, Stage
from pipeline.services import opportunity_move_stage
from salesmgmt.lib import periods
from tests.factories import make_deal

pytestmark = pytest.mark.django_db(transaction=True)


def _next(stage: Stage) -> Stage:
    return Stage.objects.filter(pipeline_id=stage.pipeline_id, order__gt=stage.order, is_lost=False).order_by("order")[
        0
    ]


@pytest.fixture
def deals(org):
    first = org.stages[0]
    return {
        "sh": make_deal(owner=org.rep, amount="1000.10", stage=first),
        "js": make_deal(owner=org.rep_js, amount="200.02", stage=first),
        "bj": make_deal(owner=org.rep_other, amount="30.33", stage=first),
        "bj2": make_deal(owner=org.rep_other, amount="4.00", stage=_next(first)),
    }


class Counted:
    """`own` of the test: per region, (deals in the first stage, their amount); records which regions it read."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.calls: list[list[int]] = []

    def __call__(self, ids):
        self.calls.append(sorted(ids))
        rows = (
            Opportunity.objects.filter(region__in=ids, stage=self.stage)
            .order_by()
            .values("region")
            .annotate(n=Count("id"), amount=Sum("amount"))
        )
        return {r["region"]: (r["n"], r["amount"]) for r in rows}


def _totals(org, own, paths):
    return rollup.subtree_totals(
        "test:first-stage", paths, own, lambda a, b: (a[0] + b[0], a[1] + b[1]), (0, Decimal("0.00"))
    )


def _afresh(org, paths):
    """Every region's subtree counted directly, without the rollup."""
    first = org.stages[0]
    result = {}
    for pk in paths:
        qs = Opportunity.objects.filter(region__in=region_subtree(pk), stage=first)
        found = qs.aggregate(n=Count("id"), amount=Sum("amount"))
        result[pk] = (found["n"], found["amount"] or Decimal("0.00"))
    return result


def test_totals_are_kept_and_only_the_regions_a_move_changed_are_counted_again(org, deals):
    paths = dict(region_subtree(org.hq).values_list("pk", "path"))
    own = Counted(org.stages[0])

    first = _totals(org, own, paths)
    assert own.calls == [sorted(paths)]  # nothing kept yet: every region counted, in one call
    assert first == _afresh(org, paths)
    assert first[org.hq.pk] == (3, Decimal("1230.45"))
    assert first[org.east.pk] == (2, Decimal("1200.12"))

    assert _totals(org, own, paths) == first
    assert len(own.calls) == 1  # nothing changed: every total from the cache

    # A deal in Beijing moves on (committed): Beijing, North and HQ are counted again, nothing else.
    deal = deals["bj"]
    opportunity_move_stage(opportunity=deal, stage=_next(deal.stage), actor=org.rep_other, evidence="met")
    after = _totals(org, own, paths)
    assert own.calls[1] == sorted([org.bj.pk, org.north.pk, org.hq.pk])
    assert after == _afresh(org, paths)
    assert after[org.hq.pk] == (2, Decimal("1200.12"))
    assert after[org.north.pk] == (0, Decimal("0.00"))
    assert after[org.east.pk] == first[org.east.pk]


def test_a_write_nobody_declared_makes_every_total_count_again(org, deals):
    paths = dict(region_subtree(org.hq).values_list("pk", "path"))
    own = Counted(org.stages[0])
    _totals(org, own, paths)
    Opportunity.objects.filter(pk=deals["sh"].pk).update(amount=Decimal("5.00"))  # raw: no key declared
    after = _totals(org, own, paths)
    assert own.calls[1] == sorted(paths)
    assert after == _afresh(org, paths)
    assert after[org.east.pk] == (2, Decimal("205.02"))


def test_an_uncommitted_write_is_counted_and_nothing_is_kept_from_it(org, deals):
    paths = dict(region_subtree(org.hq).values_list("pk", "path"))
    own = Counted(org.stages[0])
    before = _totals(org, own, paths)
    with pytest.raises(RuntimeError), transaction.atomic():
        make_deal(owner=org.rep, amount="7.00", stage=org.stages[0])
        inside = _totals(org, own, paths)
        assert own.calls[1] == sorted(paths)  # its own write is not in the versions: counted afresh
        assert inside[org.hq.pk] == (4, Decimal("1237.45"))
        raise RuntimeError("roll back")
    # The rolled-back deal was never kept (its pending key is bumped after the rollback, harmlessly: counted again).
    assert _totals(org, own, paths) == before


def test_sees_subtree_follows_the_data_scope(org):
    assert sees_subtree(org.director, org.hq)
    assert sees_subtree(org.manager, org.east) and sees_subtree(org.manager, org.sh)
    assert not sees_subtree(org.manager, org.north) and not sees_subtree(org.manager, org.hq)
    assert not sees_subtree(org.rep, org.sh)
    org.manager.data_scope = DataScope.DEPARTMENT  # his own region only, not the teams below it
    org.manager.save()
    assert not sees_subtree(org.manager, org.east)


def _won(org, deal, day):
    won = Stage.objects.get(pipeline=org.pipeline, is_won=True)
    return opportunity_move_stage(opportunity=deal, stage=won, actor=deal.owner, closed_on=day, evidence="signed")


def test_the_review_and_win_rates_from_kept_totals_equal_a_direct_count(org, deals, monkeypatch):
    lost = Stage.objects.get(pipeline=org.pipeline, is_lost=True)
    _won(org, deals["sh"], date(2026, 5, 4))
    opportunity_move_stage(
        opportunity=deals["bj"], stage=lost, actor=org.rep_other, lost_reason="price", closed_on=date(2026, 5, 5)
    )
    period = periods.Period(date(2026, 1, 1), date(2026, 12, 31), periods.YEAR, 2026, 0)
    paths = dict(region_subtree(org.hq).values_list("pk", "path"))

    def direct_figures():
        return deal_figures(Opportunity.objects.filter(region__in=list(paths)), period)

    def rates(user, region):
        return analytics.win_rates(
            user,
            date_from=period.start,
            date_to=date(2026, 12, 31),
            by=analytics.BY_REGION,
            period=None,
            region=region,
            counts_only=True,
        )

    assert subtree_deal_figures(org.director, org.hq, paths, period) == direct_figures()
    kept = rates(org.director, org.hq)
    assert {(r.key, r.won, r.lost) for r in kept} == {(org.east.pk, 1, 0), (org.north.pk, 0, 1)}

    _won(org, deals["js"], date(2026, 6, 1))  # a second win, in Jiangsu: East's totals move
    assert subtree_deal_figures(org.director, org.hq, paths, period) == direct_figures()
    kept = rates(org.director, org.hq)
    east_paths = dict(region_subtree(org.east).values_list("pk", "path"))
    by_team = rates(org.manager, org.east)
    # The same rows as the direct count (a reader who does not see the whole subtree counts directly).
    monkeypatch.setattr(analytics, "sees_subtree", lambda user, region: False)
    assert kept == rates(org.director, org.hq)
    assert by_team == rates(org.manager, org.east)
    assert {(r.key, r.won, r.lost) for r in kept} == {(org.east.pk, 2, 0), (org.north.pk, 0, 1)}
    assert {(r.key, r.won) for r in by_team} == {(org.sh.pk, 1), (org.js.pk, 1)}
    assert subtree_deal_figures(org.manager, org.east, east_paths, period).won == Decimal("1200.12")


def test_team_pipeline_sums_from_kept_totals_equal_a_direct_count(org, deals, settings):
    """The team pipeline's totals and per-stage subtotals of open deals, for the director's whole company and a
    manager's area, added up from kept per-region sums: equal to counting them directly, after a move too."""
    from pipeline.selectors import team_pipeline_by_stage

    cases = [(org.director, {}), (org.manager, {"region": org.east}), (org.director, {"region": org.north})]

    def both():
        kept = [team_pipeline_by_stage(user, filters)[1:] for user, filters in cases]
        settings.ROLLUP_CACHE = False
        direct = [team_pipeline_by_stage(user, filters)[1:] for user, filters in cases]
        settings.ROLLUP_CACHE = True
        return kept, direct

    kept, direct = both()
    assert kept == direct
    assert kept[0][0]["count"] == 4 and kept[0][0]["total"] == Decimal("1234.45")
    assert kept[1][0]["count"] == 2  # East: Shanghai's and Jiangsu's deals
    deal = deals["bj"]
    opportunity_move_stage(opportunity=deal, stage=_next(deal.stage), actor=org.rep_other, evidence="met")
    kept_after, direct_after = both()
    assert kept_after == direct_after
    assert kept_after[0][1] != kept[0][1]  # the move shows in the per-stage subtotals
    stage = {row["stage"].pk: row for row in kept_after[2][1]}
    assert stage[_next(org.stages[0]).pk]["count"] == 2  # both Beijing deals in the second stage now
