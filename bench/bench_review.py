"""The weekly review and the home pages on the tier-M company (issue 13's Performance section), through the Django
test client: `python -m bench review`.

The company is `bench.bigco` at scale BENCH_REVIEW_SCALE (default 1: 5,000 reps), prepared and its people
chosen as the load benchmark does (`bench.bench_load.prepare`, `choose_people`: a manager of a 50-rep region,
the director, a rep). Timed, each the median of RUNS requests after a warm-up, with its query count:
- the review of the 50-rep region, one row per rep (≤ 300 ms);
- the director's review of the company, one row per region (≤ 800 ms);
- each role's home page (≤ 150 ms).
Each answer is checked: the manager's review has one row per rep of his region, the director's one per area.
"""

from __future__ import annotations

import os
from typing import Any

from bench import Timing, repeated

RUNS = 5
REVIEW_GOAL = 0.3
DIRECTOR_GOAL = 0.8
HOME_GOAL = 0.15


def run(scale: float | None = None, *, director: bool = True) -> list[Timing]:
    """`director=False`: only the manager's and the rep's pages (the director's read the whole company: at tier L
    minutes on a busy machine, and no goal of issue 15)."""
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from bench.bench_load import choose_people, prepare
    from crm.models import Region, Role, User

    scale = scale if scale is not None else float(os.environ.get("BENCH_REVIEW_SCALE") or 1.0)
    timings, company = prepare(scale)
    people = choose_people(company)
    manager, boss, rep = people["managers"][0], people["director"], people["reps"][0]
    team = Region.objects.filter(manager=manager).order_by("depth", "path").first()
    assert team is not None
    team_reps = User.objects.filter(region__path__startswith=team.path, role=Role.REP, is_active=True).count()

    def page(user: User, url: str) -> Any:
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    cases = [
        (manager, f"/review/?region={team.pk}&by=rep", f"review: a {team_reps}-rep team, by rep", REVIEW_GOAL),
        (boss, "/review/", "review: the director, by region", DIRECTOR_GOAL),
        (rep, "/", "home: a rep", HOME_GOAL),
        (manager, "/", f"home: the manager of {team_reps} reps", HOME_GOAL),
        (boss, "/", "home: the director", HOME_GOAL),
    ]
    # As bench_load renders: no collectstatic manifest needed in this process.
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES={**settings.STORAGES, "staticfiles": static}):
        for user, url, name, goal in cases:
            if user == boss and not director:
                continue
            page(user, url)  # warm-up: templates compiled, caches filled
            timing, responses = repeated(name, RUNS, lambda user=user, url=url: page(user, url))
            timing.goal = goal
            timing.note = f"{url}; median of {RUNS}: " + ", ".join(f"{s:.3f}" for s in timing.extra["runs"]) + " s"
            timings.append(timing)
            html = responses[-1].content.decode()
            rows = html.count('<tr data-testid="row-')
            if url.startswith("/review/?region="):
                assert 0 < rows <= team_reps and 'data-key="rep:' in html, "one row per rep of the team"
            elif url == "/review/":
                areas = Region.objects.filter(parent__parent__isnull=True, parent__isnull=False).count()
                assert rows == areas and 'data-key="region:' in html, "one row per area"
    return timings
