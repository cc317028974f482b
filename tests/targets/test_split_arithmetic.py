"""The arithmetic of the split dialog, as plain functions and properties of the previews (no database):
what is left to allocate as parts are typed, the totals of a preview, and the pages of a bulk preview."""

from decimal import Decimal

import pytest

from targets.services import LeafPreview, LeavesSplitPreview, ProposedChild, SplitPreview, amount_left


def child(amount: str) -> ProposedChild:
    return ProposedChild(
        key="k", label="k", amount=Decimal(amount), weight=None, owner_id=None, deadline=None, coords={}
    )


@pytest.mark.parametrize(
    ("typed", "left"),
    [
        (["100", "200.50"], Decimal("699.50")),
        (["1,000", "0"], Decimal("0")),  # as typed, with a thousands separator
        (["600", "500"], Decimal("-100")),  # too much: negative
        ([], Decimal("1000")),
        (["100", "abc"], None),  # not a number yet
    ],
)
def test_amount_left_while_typing_parts(typed, left):
    assert amount_left(Decimal("1000"), typed) == left


def test_a_preview_totals_its_parts():
    preview = SplitPreview(
        node=None, dimension="region", method="equal", children=[child("1.10"), child("2.05")], warnings=[]
    )
    assert preview.total == Decimal("3.15")
    assert LeafPreview(leaf=None, children=[child("5"), child("0.01")]).total == Decimal("5.01")
    assert SplitPreview(node=None, dimension="region", method="equal", children=[], warnings=[]).total == 0


def leaves_page(offset: int, shown: int, count: int, limit: int = 20) -> LeavesSplitPreview:
    rows = [LeafPreview(leaf=None, children=[]) for _ in range(shown)]
    return LeavesSplitPreview(
        node=None, dimension="month", method="equal", leaves=rows, leaf_count=count, part_count=0,
        offset=offset, warnings=[], sources={}, limit=limit,
    )  # fmt: skip


def test_the_pages_of_a_bulk_preview():
    first = leaves_page(0, 20, 45)
    assert (first.first_shown, first.last_shown, first.page, first.pages) == (1, 20, 1, 3)
    assert (first.previous_page, first.next_page) == (None, 2)
    middle = leaves_page(20, 20, 45)
    assert (middle.first_shown, middle.last_shown, middle.previous_page, middle.next_page) == (21, 40, 1, 3)
    last = leaves_page(40, 5, 45)
    assert (last.first_shown, last.last_shown, last.previous_page, last.next_page) == (41, 45, 2, None)
    only = leaves_page(0, 20, 20)
    assert (only.pages, only.previous_page, only.next_page) == (1, None, None)
    empty = leaves_page(0, 0, 0)
    assert (empty.first_shown, empty.last_shown, empty.pages, empty.next_page) == (0, 0, 1, None)
