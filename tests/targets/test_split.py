"""Splitting targets: dimensions, methods, owners and deadlines, manual sums, edits and roll-ups."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import AuditLog, Tier
from salesmgmt.lib import periods
from targets.models import PlanStatus, SplitMethod, TargetNode, TargetPlan
from targets.planning.members import dimension_error
from targets.planning.selectors import incomplete_leaves, plan_tree, unbalanced_nodes
from targets.services import (
    node_update,
    plan_create,
    plan_submit,
    target_split,
    target_split_leaves,
    target_split_preview,
)
from tests.factories import CustomerFactory, UserFactory
from tests.targets.amounts import leaf_sums
from tests.targets.conftest import by_region, children_of, sql_split_statements


def root_of(plan):
    return plan.nodes.get(parent__isnull=True)


# --- plans ---------------------------------------------------------------------------------


def test_plan_creates_its_root_with_the_total_owner_and_period(plan, org):
    root = root_of(plan)
    assert (root.amount, root.owner, root.period_key, root.deadline) == (
        Decimal("1200000.00"),
        org.director,
        "FY2027",
        date(2027, 12, 31),
    )
    assert (plan.status, plan.current_version, plan.period_start) == (PlanStatus.DRAFT, 0, date(2027, 1, 1))
    assert AuditLog.objects.filter(action="target_plan.create", object_id=str(plan.pk), actor=org.director).exists()


def test_plan_rules(org, metrics, plan):
    with pytest.raises(ValidationError, match="already"):
        plan_create(metric=metrics["won_revenue"], period_key="FY2027", total=1, owner=org.director, actor=org.director)
    with pytest.raises(ValidationError, match="whole number"):
        plan_create(
            metric=metrics["new_customers"], period_key="FY2027", total="10.5", owner=org.director, actor=org.director
        )
    with pytest.raises(ValidationError, match="year or a quarter"):
        plan_create(
            metric=metrics["collections"], period_key="FY2027-M03", total=1, owner=org.director, actor=org.director
        )
    with pytest.raises(ValidationError, match="director"):
        plan_create(metric=metrics["collections"], period_key="FY2027", total=1, owner=org.manager, actor=org.manager)
    quarter = plan_create(
        metric=metrics["collections"], period_key="FY2027-Q2", total="1,000.50", owner=org.manager, actor=org.director
    )
    assert (quarter.total, quarter.period_start, quarter.period_end) == (
        Decimal("1000.50"),
        date(2027, 4, 1),
        date(2027, 6, 30),
    )


def test_a_manager_plans_for_his_own_area_only(org, metrics):
    east = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="600000", region=org.east, actor=org.manager
    )
    root = root_of(east)
    # The owner defaults to the region's manager; the root carries the region.
    assert (east.region, east.owner, root.region, root.owner) == (org.east, org.manager, org.east, org.manager)
    assert "East" in east.name
    provinces = target_split(node=root, dimension="region", method="equal", actor=org.manager).children
    assert {p.region_id for p in provinces} == {org.sh.pk, org.js.pk}

    with pytest.raises(ValidationError, match="outside your regions"):
        plan_create(metric=metrics["collections"], period_key="FY2027", total=1, region=org.north, actor=org.manager)
    with pytest.raises(ValidationError, match="company-wide"):
        plan_create(metric=metrics["collections"], period_key="FY2027", total=1, actor=org.manager)
    with pytest.raises(ValidationError, match="Only managers"):
        plan_create(metric=metrics["collections"], period_key="FY2027", total=1, region=org.sh, actor=org.rep)
    with pytest.raises(ValidationError, match="cannot make"):  # an owner outside his people
        plan_create(
            metric=metrics["collections"],
            period_key="FY2027",
            total=1,
            region=org.east,
            owner=org.manager_north,
            actor=org.manager,
        )
    assert not TargetPlan.objects.filter(metric=metrics["collections"]).exists()


def test_one_plan_per_metric_period_and_region(org, metrics, plan):
    east = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total="600000", region=org.east, actor=org.manager
    )
    with pytest.raises(ValidationError, match="already a .* plan for East"):
        plan_create(metric=metrics["won_revenue"], period_key="FY2027", total=1, region=org.east, actor=org.director)
    with pytest.raises(ValidationError, match="already a company-wide"):
        plan_create(metric=metrics["won_revenue"], period_key="FY2027", total=1, actor=org.director)
    # Another region, another period: fine (the director plans for North, owned by its manager).
    north = plan_create(
        metric=metrics["won_revenue"], period_key="FY2027", total=1, region=org.north, actor=org.director
    )
    assert north.owner == org.manager_north
    plan_create(metric=metrics["won_revenue"], period_key="FY2028", total=1, region=org.east, actor=org.manager)
    # The database keeps both rules too (company-wide: NULL regions are distinct in a plain unique index).
    for existing in (plan, east):
        with pytest.raises(IntegrityError), transaction.atomic():
            TargetPlan.objects.create(
                metric=existing.metric,
                region=existing.region,
                name="dup",
                period_kind=existing.period_kind,
                period_key=existing.period_key,
                period_start=existing.period_start,
                period_end=existing.period_end,
                total=1,
                owner=org.director,
                created_by=org.director,
            )


# --- dimensions, owners, deadlines --------------------------------------------------------


def test_region_split_gives_areas_to_their_managers_and_drills_down(plan, org):
    areas = by_region(target_split(node=root_of(plan), dimension="region", method="equal", actor=org.director).children)
    assert set(areas) == {org.east.pk, org.north.pk}  # HQ is the company: its areas are the top level
    assert (areas[org.east.pk].owner, areas[org.north.pk].owner) == (org.manager, org.manager_north)
    assert areas[org.east.pk].amount == Decimal("600000.00")

    provinces = target_split(node=areas[org.east.pk], dimension="region", method="equal", actor=org.director).children
    assert {p.region_id for p in provinces} == {org.sh.pk, org.js.pk}
    assert all(p.owner is None for p in provinces)  # no manager: incomplete until someone owns them
    assert {p.depth for p in provinces} == {2}
    assert {p.path[:10] for p in provinces} == {areas[org.east.pk].path}


def test_rep_split_takes_the_active_reps_of_the_region_subtree(plan, org):
    east = by_region(target_split(node=root_of(plan), dimension="region", method="equal", actor=org.director).children)[
        org.east.pk
    ]
    UserFactory(username="gone", role="rep", region=org.sh, is_active=False)
    reps = target_split(node=east, dimension="rep", method="equal", actor=org.director).children
    assert {r.rep for r in reps} == {org.rep, org.rep_same_team, org.rep_js}
    assert all(r.owner == r.rep for r in reps)
    assert sorted(r.amount for r in reps) == [Decimal("200000.00")] * 3
    assert all(r.region_id == org.east.pk for r in reps)  # coordinates are inherited


def test_time_split_sets_periods_and_deadlines(plan, org):
    quarters = target_split(node=root_of(plan), dimension="quarter", method="equal", actor=org.director).children
    assert [q.period_key for q in quarters] == ["FY2027-Q1", "FY2027-Q2", "FY2027-Q3", "FY2027-Q4"]
    assert [q.deadline for q in quarters] == [
        date(2027, 3, 31),
        date(2027, 6, 30),
        date(2027, 9, 30),
        date(2027, 12, 31),
    ]
    assert all(q.owner == org.director for q in quarters)  # inherited owner
    months = target_split(node=quarters[1], dimension="month", method="weights", basis="days", actor=org.director)
    # April 30 days, May 31, June 30 of 300,000.00.
    assert [m.amount for m in months.children] == [Decimal("98901.10"), Decimal("102197.80"), Decimal("98901.10")]


def test_a_fixed_dimension_cannot_be_split_again(plan, org, catalogue):
    root = root_of(plan)
    months = target_split(node=root, dimension="month", method="equal", actor=org.director).children
    with pytest.raises(ValidationError, match="shorter periods"):
        target_split(node=months[0], dimension="quarter", method="equal", actor=org.director)
    lines = target_split(node=months[0], dimension="product_line", method="equal", actor=org.director).children
    servers = next(n for n in lines if n.product_line == catalogue["servers"])
    with pytest.raises(ValidationError, match="already"):
        target_split(node=servers, dimension="product_line", method="equal", actor=org.director)
    products = target_split(node=servers, dimension="product", method="equal", actor=org.director).children
    assert {p.product for p in products} == {catalogue["rack"], catalogue["blade"]}  # only the line's products
    assert {p.product_line for p in products} == {catalogue["servers"]}
    weeks = list(target_split(node=products[0], dimension="week", method="equal", actor=org.director).children)
    assert weeks[0].period_start == date(2027, 1, 1) and weeks[-1].period_end == date(2027, 1, 31)
    assert dimension_error(weeks[0], "week") is not None


def test_segment_split(plan, org):
    children = target_split(
        node=root_of(plan),
        dimension="segment",
        method="manual",
        amounts={"existing": "800000", "new": "400000"},
        actor=org.director,
    ).children
    assert {c.segment: c.amount for c in children} == {"existing": Decimal("800000.00"), "new": Decimal("400000.00")}


# --- methods --------------------------------------------------------------------------------


def test_manual_amounts_must_add_up_and_say_what_is_left(plan, org):
    root = root_of(plan)
    with pytest.raises(ValidationError) as err:
        target_split(
            node=root,
            dimension="region",
            method="manual",
            amounts={org.east.pk: "700000", org.north.pk: "400000"},
            actor=org.director,
        )
    assert "100000.00 is still unallocated" in str(err.value)
    with pytest.raises(ValidationError) as err:
        target_split(
            node=root,
            dimension="region",
            method="manual",
            amounts={org.east.pk: "900000", org.north.pk: "400000"},
            actor=org.director,
        )
    assert "100000.00 too much" in str(err.value)
    assert not root.children.exists()  # nothing half-applied
    done = target_split(
        node=root,
        dimension="region",
        method="manual",
        amounts={str(org.east.pk): "700000", str(org.north.pk): "500000"},
        actor=org.director,
    )
    assert {c.region_id: c.amount for c in done.children} == {
        org.east.pk: Decimal("700000"),
        org.north.pk: Decimal("500000"),
    }


def test_weights_by_headcount_and_by_customer_tiers(plan, org):
    root = root_of(plan)
    preview = target_split_preview(
        node=root, dimension="region", method="weights", basis="headcount", actor=org.director
    )
    # East has 3 active reps, North 1.
    assert {c.key: c.amount for c in preview.children} == {
        str(org.east.pk): Decimal("900000.00"),
        str(org.north.pk): Decimal("300000.00"),
    }
    for _ in range(3):
        CustomerFactory(owner=org.rep_other, region=org.bj, tier=Tier.A)
    CustomerFactory(owner=org.rep, region=org.sh, tier=Tier.A)
    CustomerFactory(owner=org.rep, region=org.sh, tier=Tier.C)
    preview = target_split_preview(
        node=root, dimension="region", method="weights", basis="customers", tiers=[Tier.A], actor=org.director
    )
    assert {c.key: c.amount for c in preview.children} == {
        str(org.east.pk): Decimal("300000.00"),
        str(org.north.pk): Decimal("900000.00"),
    }
    assert not root.children.exists()  # a preview writes nothing


def test_manual_weights_and_a_subset_of_members(plan, org):
    root = root_of(plan)
    split = target_split(
        node=root, dimension="region", method="weights", weights={org.east.pk: 2, org.north.pk: 1}, actor=org.director
    )
    assert {c.region_id: c.amount for c in split.children} == {
        org.east.pk: Decimal("800000"),
        org.north.pk: Decimal("400000"),
    }
    only_east = target_split(node=root, dimension="region", method="equal", members=[org.east], actor=org.director)
    assert [(c.region_id, c.amount) for c in only_east.children] == [(org.east.pk, Decimal("1200000"))]


def test_re_split_replaces_children_only_while_draft(plan, org):
    root = root_of(plan)
    target_split(node=root, dimension="quarter", method="equal", actor=org.director)
    target_split_leaves(node=root, dimension="month", method="equal", actor=org.director)
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    assert TargetNode.objects.filter(plan=plan).count() == 3  # the quarters and months are gone
    plan_submit(plan=plan, actor=org.director)
    with pytest.raises(ValidationError, match="submitted"):
        target_split(node=root, dimension="quarter", method="equal", actor=org.director)


def test_split_leaves_splits_every_leaf_set_based(plan, org, django_assert_max_num_queries):
    root = root_of(plan)
    areas = target_split(node=root, dimension="region", method="equal", actor=org.director).children
    target_split(node=by_region(areas)[org.east.pk], dimension="rep", method="equal", actor=org.director)
    with django_assert_max_num_queries(16):
        result = target_split_leaves(node=root, dimension="month", method="equal", actor=org.director)
    assert (result.leaves, result.created) == (4, 48)  # North + 3 East reps, 12 months each
    leaves = TargetNode.objects.filter(plan=plan, split_dimension="")
    assert leaves.count() == 48 and set(leaves.values_list("period_kind", flat=True)) == {"month"}
    rep_months = leaves.filter(rep=org.rep_js)
    assert set(rep_months.values_list("owner", flat=True)) == {org.rep_js.pk}
    assert rep_months.get(period_key="FY2027-M02").deadline == date(2027, 2, 28)
    assert not unbalanced_nodes(plan).exists()
    assert AuditLog.objects.filter(action="target.split_leaves", object_id=str(root.pk)).exists()


def test_plan_tree_counts_children_for_lazy_expansion(plan, org, django_assert_max_num_queries):
    root = root_of(plan)
    target_split(node=root, dimension="region", method="equal", actor=org.director)
    target_split_leaves(node=root, dimension="month", method="equal", actor=org.director)
    with django_assert_max_num_queries(1):
        level = [(n.region.name, n.child_count, n.owner.username) for n in plan_tree(plan, root)]
    assert level == [("East", 12, "manager"), ("North", 12, "manager_north")]
    assert [n.child_count for n in plan_tree(plan)] == [2]


# --- editing ----------------------------------------------------------------------------------


def test_changing_one_part_is_refused_unless_the_siblings_rebalance(plan, org):
    root = root_of(plan)
    areas = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)
    east, north = areas[org.east.pk], areas[org.north.pk]
    east = target_split(node=east, dimension="month", method="equal", actor=org.director).node
    with pytest.raises(ValidationError, match="over-allocated"):
        node_update(node=east, amount="720000", expected_version=east.version, actor=org.director)
    east.refresh_from_db()
    assert east.amount == Decimal("600000")

    node_update(node=east, amount="720000", expected_version=east.version, rebalance=True, actor=org.director)
    east.refresh_from_db()
    north.refresh_from_db()
    assert (east.amount, north.amount) == (Decimal("720000"), Decimal("480000"))
    assert {m.amount for m in east.children.all()} == {Decimal("60000")}  # the months follow
    assert not unbalanced_nodes(plan).exists()


def test_changing_the_root_changes_the_plan_total_and_rescales_the_tree(plan, org):
    root = root_of(plan)
    target_split(
        node=root, dimension="region", method="weights", weights={org.east.pk: 3, org.north.pk: 1}, actor=org.director
    )
    node_update(node=root, amount="2400000", expected_version=root.version + 1, actor=org.director)
    plan.refresh_from_db()
    assert plan.total == Decimal("2400000")
    assert {c.region_id: c.amount for c in root.children.all()} == {
        org.east.pk: Decimal("1800000"),
        org.north.pk: Decimal("600000"),
    }


def test_owner_and_deadline_edits(plan, org):
    root = root_of(plan)
    east = by_region(target_split(node=root, dimension="region", method="equal", actor=org.director).children)[
        org.east.pk
    ]
    with pytest.raises(ValidationError, match="within FY2027"):
        node_update(node=east, deadline=date(2028, 1, 31), expected_version=east.version, actor=org.director)
    east = node_update(
        node=east, owner=org.rep, deadline=date(2027, 11, 30), expected_version=east.version, actor=org.director
    )
    assert (east.owner, east.deadline) == (org.rep, date(2027, 11, 30))
    entry = AuditLog.objects.filter(action="target.update", object_id=str(east.pk)).get()
    assert entry.changes["deadline"] == ["2027-12-31", "2027-11-30"]


# --- properties over random trees ------------------------------------------------------------

DIMENSIONS = ["region", "rep", "product_line", "product", "segment", "quarter", "month"]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_random_trees_always_add_up(org, metrics, catalogue, data):
    """Whatever the splits, every parent equals the sum of its children, nothing is negative,
    counts stay whole, and every roll-up adds up to the plan total."""
    counts = data.draw(st.booleans(), label="counts")
    if counts:
        total = Decimal(data.draw(st.integers(min_value=0, max_value=10**6), label="total"))
    else:
        total = Decimal(data.draw(st.integers(min_value=0, max_value=10**11), label="cents")).scaleb(-2)
    with transaction.atomic():
        plan = plan_create(
            metric=metrics["new_customers" if counts else "won_revenue"],
            period_key="FY2027",
            total=total,
            owner=org.director,
            actor=org.director,
        )
        for _step in range(data.draw(st.integers(min_value=1, max_value=4), label="steps")):
            leaves = list(TargetNode.objects.filter(plan=plan, split_dimension="").order_by("path"))
            leaf = data.draw(st.sampled_from(leaves), label="leaf")
            dims = [d for d in DIMENSIONS if dimension_error(leaf, d) is None]
            dimension = data.draw(st.sampled_from(dims), label="dimension")
            method = data.draw(st.sampled_from(["equal", "weights", "manual", "history", "leaves"]), label="method")
            try:
                if method == "leaves":
                    target_split_leaves(node=root_of(plan), dimension=dimension, method="equal", actor=org.director)
                    continue
                keys = [
                    c.key
                    for c in target_split_preview(
                        node=leaf, dimension=dimension, method="equal", actor=org.director
                    ).children
                ]
            except ValidationError:
                continue  # nothing to split into (e.g. no reps), or not every leaf can take this dimension
            ws = data.draw(
                st.lists(st.integers(min_value=0, max_value=1000), min_size=len(keys), max_size=len(keys)),
                label="weights",
            )
            kwargs = {}
            if method == "weights":
                kwargs["weights"] = dict(zip(keys, ws, strict=True))
            if method == "manual":
                preview = target_split_preview(
                    node=leaf,
                    dimension=dimension,
                    method="weights",
                    weights=dict(zip(keys, [w + 1 for w in ws], strict=True)),
                    actor=org.director,
                )
                kwargs["amounts"] = {c.key: c.amount for c in preview.children}
            target_split(node=leaf, dimension=dimension, method=method, actor=org.director, **kwargs)

        nodes = list(TargetNode.objects.filter(plan=plan).values_list("amount", flat=True))
        assert all(a >= 0 for a in nodes)
        if counts:
            assert all(a == a.to_integral_value() for a in nodes)
        assert not unbalanced_nodes(plan).exists()
        assert sum(r["amount"] for r in leaf_sums(plan, "region", "rep", "period_key")) == total
        transaction.set_rollback(True)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    cents=st.integers(min_value=0, max_value=10**11),
    quarter_weights=st.lists(st.integers(min_value=0, max_value=100), min_size=4, max_size=4),
    by_area=st.booleans(),
)
def test_month_quarter_year_rollups_agree(org, metrics, cents, quarter_weights, by_area):
    total = Decimal(cents).scaleb(-2)
    with transaction.atomic():
        plan = plan_create(
            metric=metrics["won_revenue"], period_key="FY2027", total=total, owner=org.director, actor=org.director
        )
        root = root_of(plan)
        if by_area:
            target_split(
                node=root,
                dimension="region",
                method="weights",
                weights={org.east.pk: 7, org.north.pk: 3},
                actor=org.director,
            )
            for area in children_of(root):
                target_split(
                    node=area,
                    dimension="quarter",
                    method="weights",
                    weights=dict(zip([f"FY2027-Q{i}" for i in range(1, 5)], quarter_weights, strict=True)),
                    actor=org.director,
                )
        else:
            target_split(
                node=root,
                dimension="quarter",
                method="weights",
                weights=dict(zip([f"FY2027-Q{i}" for i in range(1, 5)], quarter_weights, strict=True)),
                actor=org.director,
            )
        target_split_leaves(node=root, dimension="month", method="weights", basis="days", actor=org.director)

        months = leaf_sums(plan, "region", "period_key")
        by_quarter = {}
        for row in months:
            month = periods.parse_key(row["period_key"])
            q = periods.period_of(month.start, periods.QUARTER).key
            by_quarter[(row["region"], q)] = by_quarter.get((row["region"], q), Decimal(0)) + row["amount"]
        quarter_nodes = TargetNode.objects.filter(plan=plan, period_kind="quarter")
        assert by_quarter == {(q.region_id, q.period_key): q.amount for q in quarter_nodes}
        assert sum(by_quarter.values()) == total
        yearly = leaf_sums(plan, "period_kind")
        assert yearly == [{"period_kind": "month", "amount": total}]
        transaction.set_rollback(True)


def test_incomplete_leaves_lists_leaves_without_owner(plan, org):
    east = by_region(target_split(node=root_of(plan), dimension="region", method="equal", actor=org.director).children)[
        org.east.pk
    ]
    target_split(node=east, dimension="region", method="equal", actor=org.director)
    assert {n.region for n in incomplete_leaves(plan)} == {org.sh, org.js}


def test_split_methods_are_audited_with_amounts(plan, org):
    root = root_of(plan)
    target_split(node=root, dimension="region", method=SplitMethod.EQUAL, actor=org.director)
    entry = AuditLog.objects.get(action="target.split", object_id=str(root.pk))
    assert entry.actor == org.director
    assert entry.changes["split"] == [None, "region"]
    assert entry.changes["amounts"][1] == {"East": "600000.00", "North": "600000.00"}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    counts=st.booleans(),
    leaf_units=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=2),
    month_weights=st.one_of(
        st.none(),  # the equal split, which has its own SQL (no sort)
        st.lists(st.integers(min_value=0, max_value=10**6), min_size=12, max_size=12),
    ),
)
def test_the_sql_bulk_split_matches_the_python_math(org, metrics, counts, leaf_units, month_weights):
    """Uniform bulk splits run as one INSERT ... SELECT; it must split exactly like `largest_remainder`."""
    from salesmgmt.lib.allocation import largest_remainder

    places = 0 if counts else 2
    amounts = [Decimal(u).scaleb(-places) for u in leaf_units] + [Decimal(0)] * (2 - len(leaf_units))
    with transaction.atomic():
        plan = plan_create(
            metric=metrics["new_customers" if counts else "won_revenue"],
            period_key="FY2027",
            total=sum(amounts),
            owner=org.director,
            actor=org.director,
        )
        target_split(
            node=root_of(plan),
            dimension="segment",
            method="manual",
            amounts={"existing": amounts[0], "new": amounts[1]},
            actor=org.director,
        )
        keys = [f"FY2027-M{m:02d}" for m in range(1, 13)]
        with CaptureQueriesContext(connection) as queries:
            if month_weights is None:
                month_weights = [1] * 12
                result = target_split_leaves(node=root_of(plan), dimension="month", method="equal", actor=org.director)
            else:
                result = target_split_leaves(
                    node=root_of(plan),
                    dimension="month",
                    method="weights",
                    weights=dict(zip(keys, month_weights, strict=True)),
                    actor=org.director,
                )
        assert len(sql_split_statements(queries)) == 1, "the uniform split should have run in SQL"
        assert (result.leaves, result.created) == (2, 24)
        for segment in TargetNode.objects.filter(plan=plan, depth=1):
            months = list(segment.children.order_by("path"))
            assert [m.period_key for m in months] == keys
            expected = largest_remainder(segment.amount, month_weights, places=places)
            assert [m.amount for m in months] == expected
            assert {(m.owner_id, m.segment, m.deadline.month) for m in months} == {
                (org.director.pk, segment.segment, n) for n in range(1, 13)
            }
        transaction.set_rollback(True)


def test_weights_may_be_keyed_by_objects_and_bad_weights_are_refused(plan, org):
    root = root_of(plan)
    preview = target_split_preview(
        node=root,
        dimension="region",
        method="weights",
        weights={org.east: "1,000", org.north: 3000},
        actor=org.director,
    )
    assert [c.amount for c in preview.children] == [Decimal("300000.00"), Decimal("900000.00")]
    with pytest.raises(ValidationError, match="negative"):
        target_split_preview(
            node=root, dimension="region", method="weights", weights={org.east: -1}, actor=org.director
        )
    with pytest.raises(ValidationError, match="not a number"):
        target_split_preview(
            node=root, dimension="region", method="weights", weights={org.east: "lots"}, actor=org.director
        )
    with pytest.raises(ValidationError, match="Unknown dimension"):
        target_split_preview(node=root, dimension="galaxy", method="equal", actor=org.director)


def test_admin_defined_metrics_narrow_a_source(org, metrics, catalogue):
    from targets.services import metric_create

    with pytest.raises(ValidationError, match="admin"):
        metric_create(code="servers", name="Servers revenue", source="won_revenue", actor=org.director)
    with pytest.raises(ValidationError, match="Unknown filters: colour"):
        metric_create(
            code="servers", name="Servers revenue", source="won_revenue", filters={"colour": "red"}, actor=org.admin
        )
    metric = metric_create(
        code="servers",
        name="Servers revenue",
        source="won_revenue",
        filters={"product_line": catalogue["servers"].pk},
        actor=org.admin,
    )
    assert (metric.is_builtin, metric.places) == (False, 2)
    assert metrics["new_customers"].places == 0
    assert len(metric_ensure_defaults_again()) == 11  # 5 results + 6 process measures; idempotent


def metric_ensure_defaults_again():
    from targets.models import Metric
    from targets.services import metric_ensure_defaults

    metric_ensure_defaults()
    return Metric.objects.filter(is_builtin=True)
