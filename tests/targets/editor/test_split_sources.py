"""The split previews by history list every part with the source of its weight: the dialog for one target,
the dialog for every leaf below a target (a page of leaves at a time, each with all its parts), and the API."""

import re
from datetime import date
from decimal import Decimal

import pytest

from crm.models import Role
from targets.models import TargetNode
from tests.factories import UserFactory, make_deal
from tests.targets.editor.test_split_dialog import HTMX, split_url

EXTRA_REPS = 22


@pytest.fixture
def history(org):
    """FY2026: Shanghai's second rep sold in each of the first ten months; 22 more Shanghai reps sold in
    two months each (too thin a history of their own)."""
    won = next(s for s in org.stages if s.is_won)
    for month in range(1, 11):
        make_deal(owner=org.rep_same_team, amount=str(1000 * month), stage=won, close=date(2026, month, 10))
    reps = [UserFactory(username=f"sh-extra-{i:02d}", role=Role.REP, region=org.sh) for i in range(EXTRA_REPS)]
    for i, rep in enumerate(reps):
        for month in (1 + i % 10, 1 + (i + 3) % 10):
            make_deal(owner=rep, amount="500", stage=won, close=date(2026, month, 12))
    return reps


def leaf_parts(html: str) -> dict[tuple[int, str], tuple[Decimal, str]]:
    """{(leaf id, part key): (amount, source)} of a bulk preview."""
    rows = re.findall(
        r'<tr data-testid="leaf-part-(\d+)-([^"]+)" data-source="([^"]+)">.*?data-value="([^"]+)"', html, re.S
    )
    return {(int(leaf), key): (Decimal(value), source) for leaf, key, source, value in rows}


def test_the_dialog_for_every_leaf_lists_every_part_with_its_source(org, history, east_tree, east_plan, client_for):
    root = TargetNode.objects.get(pk=east_tree["root"].pk)
    client = client_for(org.manager)
    data = {"scope": "leaves", "dimension": "month", "method": "history", "version": root.version}
    first = client.post(split_url(east_plan, root), data, **HTMX).content.decode()
    leaves = list(TargetNode.objects.filter(plan=east_plan, split_dimension="").order_by("path"))
    assert len(leaves) == EXTRA_REPS + 3  # Shanghai's 24 reps and Jiangsu
    assert 'data-testid="leaves-range" data-first="1" data-last="20"' in first
    assert 'data-testid="leaves-next"' in first and 'data-testid="leaves-previous"' not in first
    second = client.post(split_url(east_plan, root), {**data, "leaf_page": "2"}, **HTMX).content.decode()
    assert 'data-testid="leaves-range" data-first="21" data-last="25"' in second
    shown = {**leaf_parts(first), **leaf_parts(second)}
    # Every leaf, each with its 12 months, and the amounts add up to each leaf.
    assert {leaf for leaf, _key in shown} == {leaf.pk for leaf in leaves} and len(shown) == len(leaves) * 12
    for leaf in leaves:
        assert sum(a for (pk, _k), (a, _s) in shown.items() if pk == leaf.pk) == leaf.amount
    extra = {n.pk for n in leaves if n.rep_id in {r.pk for r in history}}
    # The thin reps follow Shanghai's curve: something in every month Shanghai sold (January to October);
    # nothing in November and December, when nobody sold anything.
    for (pk, key), (amount, source) in shown.items():
        if pk in extra:
            assert (amount > 0, source) == ((True, "region") if key < "FY2027-M11" else (False, "none"))
    assert "curve of Shanghai" in first and "own history" in first
    # The 22, Shanghai's first rep (no history at all) and Jiangsu (none either) follow a curve above.
    assert re.findall(r"<li>([^<]*)</li>", first) == [
        "24 targets had too little history of their own; they follow their team&#x27;s or the company&#x27;s curve.",
        "50 parts had nothing last year and get no target.",
    ]
    assert TargetNode.objects.filter(plan=east_plan).count() == 5 + EXTRA_REPS  # a preview writes nothing

    client.post(split_url(east_plan, root), {**data, "action": "commit"}, **HTMX)
    written = {(n.parent_id, n.period_key): n.amount for n in TargetNode.objects.filter(period_kind="month")}
    assert written == {key: amount for key, (amount, _s) in shown.items()}


def test_a_page_beyond_the_last_shows_the_last_leaves(org, history, east_tree, east_plan, client_for):
    root = east_tree["root"]
    data = {"scope": "leaves", "dimension": "month", "method": "history", "leaf_page": "99"}
    html = client_for(org.manager).post(split_url(east_plan, root), data, **HTMX).content.decode()
    assert 'data-first="25" data-last="25"' in html or 'data-first="21" data-last="25"' in html
    data["leaf_page"] = "x"
    html = client_for(org.manager).post(split_url(east_plan, root), data, **HTMX).content.decode()
    assert 'data-first="1" data-last="20"' in html


def test_the_dialog_for_one_target_shows_each_parts_source(org, history, east_tree, east_plan, client_for):
    extra = TargetNode.objects.get(plan=east_plan, rep=history[0])
    data = {"dimension": "month", "method": "history", "version": extra.version}
    html = client_for(org.manager).post(split_url(east_plan, extra), data, **HTMX).content.decode()
    sources = re.findall(r'data-testid="source-(FY2027-M\d\d)" data-source="([^"]+)">([^<]+)<', html)
    assert len(sources) == 12
    assert {(s, label) for key, s, label in sources if key < "FY2027-M11"} == {("region", "curve of Shanghai")}
    assert {(s, label) for key, s, label in sources if key >= "FY2027-M11"} == {("none", "nothing last year")}


def test_the_api_previews_list_every_part_with_its_source(org, history, east_tree, east_plan, api):
    client = api(org.manager)
    extra = TargetNode.objects.get(plan=east_plan, rep=history[0])
    url = f"/api/target-nodes/{extra.pk}/split-preview/"
    body = client.post(url, {"dimension": "month", "method": "history"}, format="json").json()
    assert [c["source"] for c in body["children"]] == ["region"] * 10 + ["none"] * 2
    assert body["children"][0]["source_label"] == "curve of Shanghai"
    root = east_tree["root"]
    url = f"/api/target-nodes/{root.pk}/split-leaves-preview/"
    body = client.post(url, {"dimension": "month", "method": "history", "offset": 20}, format="json").json()
    assert (body["leaf_count"], body["part_count"], body["offset"]) == (25, 300, 20)
    assert len(body["leaves"]) == 5 and all(len(leaf["children"]) == 12 for leaf in body["leaves"])
    assert sum(body["sources"].values()) == 300
    for leaf in body["leaves"]:
        assert sum(Decimal(c["amount"]) for c in leaf["children"]) == Decimal(leaf["amount"])
        assert all(c["source_label"] for c in leaf["children"])
    bad = client.post(url, {"dimension": "month", "method": "manual"}, format="json")
    assert bad.status_code == 400 and "one target at a time" in str(bad.json())
    bad = client.post(url, {"dimension": "month", "method": "history", "limit": 0}, format="json")
    assert bad.status_code == 400
