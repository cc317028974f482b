"""The review's funnel, win rate and driver pages on the big company (issue 13), through the Django test client.

Goals (the issue's Performance section): a manager's pages over a ~50-rep area in at most 300 ms on the
server, their query count the same whatever the number of deals; the director's figures aggregated by
area in at most 800 ms. The director's company-wide funnel (every deal created in the half year, ~100,000
deals and their stage history) is measured without a goal. Each timing is the median of RUNS requests, and
each page's answer is checked against a plain count.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from bench import Timing, repeated

RUNS = 5
MANAGER_GOAL = 0.3
DIRECTOR_GOAL = 0.8


def run(scale: float | None = None) -> list[Timing]:
    from django.test import Client

    from bench import bigco
    from crm.models import CompanySettings, Region, Role, User
    from pipeline.models import Opportunity

    scale = scale if scale is not None else float(os.environ.get("BENCH_ANALYTICS_SCALE") or 1.0)
    company = bigco.generate(scale, verbose=False)
    today = company.today
    quarter = CompanySettings.load().period_of(today, "quarter")
    half_year = (today - timedelta(days=182), today)
    # The manager of a region just above the teams: ~50 reps at scale 1.
    area = Region.objects.filter(children__isnull=False, children__children__isnull=True).order_by("pk").first()
    assert area is not None and area.manager_id is not None
    manager = User.objects.get(pk=area.manager_id)
    director = User.objects.filter(role=Role.DIRECTOR).first()
    assert director is not None
    reps = User.objects.filter(region__path__startswith=area.path, role=Role.REP).count()

    timings: list[Timing] = []

    def page(user: User, url: str) -> Any:
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    period = f"period={quarter.key}"
    dates = f"date_from={half_year[0]:%Y-%m-%d}&date_to={half_year[1]:%Y-%m-%d}"
    cases = [
        (manager, f"/review/funnel/?{dates}&by=owner", f"funnel page: a manager's {reps} reps", MANAGER_GOAL),
        (manager, f"/review/drivers/?{period}&by=owner", f"drivers page: a manager's {reps} reps", MANAGER_GOAL),
        (director, f"/api/review/drivers/?{period}&by=region", "drivers API: the director, by area", DIRECTOR_GOAL),
        (
            director,
            f"/api/review/win-rates/?{dates}&by=region&period=range",
            "win-rates API: the director, per team",
            DIRECTOR_GOAL,
        ),
        (director, f"/api/review/funnel/?{dates}", "funnel API: the director, company-wide", None),
    ]
    for user, url, name, goal in cases:
        timing, responses = repeated(name, RUNS, lambda user=user, url=url: page(user, url))
        timing.goal = goal
        timing.note = f"median of {RUNS}"
        timings.append(timing)
        last = responses[-1]
        if url.startswith("/review/funnel/"):
            cohort = Opportunity.objects.filter(
                region__path__startswith=area.path,
                created_at__date__gte=half_year[0],
                created_at__date__lte=half_year[1],
            ).count()
            assert last.context["funnel"].deals == cohort, "the manager's cohort"
        elif url.startswith("/review/drivers/"):
            whole = last.context["whole"].row
            assert whole.now.exact and whole.now.product == whole.now.amount, "the driver identity"
        elif "win-rates" in url:
            closed = Opportunity.objects.filter(closed_on__range=half_year).count()
            assert sum(r["won"] + r["lost"] for r in last.json()) == closed, "every closed deal, once"
    return timings
