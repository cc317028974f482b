"""One weighted-pipeline rule and one rounding rule: a deal's row, its page, the API and every total
show the same cents (a 100.05 deal at 50 % weighs 50.025, shown 50.03 everywhere, half up)."""

import re
from decimal import Decimal

from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.models import Opportunity
from salesmgmt.lib import attainment
from salesmgmt.lib.money import quantize
from tests.factories import make_deal


def half_cent_deal(org):
    return make_deal(owner=org.rep, amount="100.05", probability=50, probability_reason="a half-cent test")


def test_a_deal_weighs_the_same_on_its_row_its_page_the_api_and_in_the_totals(org, client_for, api):
    deal = half_cent_deal(org)
    assert deal.weighted_amount == Decimal("50.03")

    team = client_for(org.manager).get(reverse("pipeline:team")).content.decode()
    row = re.search(rf'data-testid="team-row-{deal.pk}">.*?</tr>', team, re.S).group(0)
    assert re.findall(r'class="num">([^<]*)</td>', row) == ["100.05", "50.03"]
    assert 'data-testid="total-weighted" data-value="50.03">50.03<' in team

    page = client_for(org.rep).get(reverse("pipeline:deal_detail", args=[deal.pk])).content.decode()
    assert re.search(r'class="num">50\.03 ', page)

    client = api(org.rep)
    assert client.get(f"/api/opportunities/{deal.pk}/").json()["weighted_amount"] == "50.03"
    assert client.get("/api/opportunities/totals/?status=open").json()["weighted"] == "50.03"


def test_money_rounds_half_up_away_from_zero_whatever_the_context():
    assert quantize(Decimal("0.005")) == Decimal("0.01")
    assert quantize(Decimal("-0.005")) == Decimal("-0.01")
    assert quantize(Decimal("50.025")) == Decimal("50.03")  # half-even would say 50.02
    assert quantize(Decimal("0.0049999")) == Decimal("0.00")
    assert quantize(Decimal("2.45"), Decimal("0.1")) == Decimal("2.5")


@given(
    cents=st.integers(min_value=0, max_value=10**14),
    probability=st.integers(min_value=0, max_value=100),
)
@example(cents=10005, probability=50)  # 50.025: the half cent the two rules used to round apart
@example(cents=1, probability=50)
def test_a_deal_alone_weighs_what_it_adds_to_a_total_of_one(cents, probability):
    amount = Decimal(cents).scaleb(-2)
    # The row's rule (the model) and the totals' rule (Σ amount × % of a group, here of one) agree.
    one = Opportunity(amount_company=amount, probability=probability).weighted_amount
    assert one == attainment.weighted_total(amount * probability)
    # ... which is the exact weighted amount rounded once, half up, to the cent.
    exact = amount * probability / 100
    assert abs(one - exact) <= Decimal("0.005")
    assert one - exact != Decimal("-0.005")
