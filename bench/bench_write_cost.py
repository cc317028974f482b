"""What one deal move costs, request and background work, without any other load (issue 12's write path).

The load benchmark (`bench_load`) needs a move's whole CPU, the web request's Python, PostgreSQL's and the
worker's, near 30-40 ms on its 2 cores. This one measures each part alone on the tier-M company (`bench.bigco`,
its plan built once): MOVES deals of WRITERS teams (as the load's writers, each team's manager through the API
with a token) moved one stage on, each by `POST /api/opportunities/<id>/move-stage/` through Django's test client
with the outbox's dispatch held back (the worker's part is run here, apart); then the background work the moves
enqueued, as a worker runs it:

- the drain of the deals' recomputes (`targets.recompute_for_deal`, drained together): once with every move
  pending (the moves of a busy second, one pass), once per move (a quiet worker: each move its own pass);
- the alert evaluations the drains enqueued (`targets.evaluate_alerts`).

Per move: Python CPU (`time.process_time`), PostgreSQL CPU of the connection (`bench.DatabaseCPU`) and queries.
Then the figures must equal a full rebuild (which writes nothing when they do).

Run alone on a kept database (the company is generated when it is missing):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/salesmgmt_x python -m bench.bench_write_cost
With BENCH_PROFILE=request,drain,alerts the parts run under cProfile (their times are then the profiler's).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

from bench import DatabaseCPU, Timing, held_dispatch, profiled

SCALE = 1.0  # tier M
WRITERS = 10  # teams, as the load's writers
MOVES = 40  # moves per pass (each of another deal)
RECOMPUTE = "targets.recompute_for_deal"
ALERTS = "targets.evaluate_alerts"


@contextmanager
def _cost(name: str, parts: dict):
    """Python CPU, PostgreSQL CPU and queries of a block, added to `parts[name]`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    part = parts.setdefault(
        name, {"python": 0.0, "postgres": 0.0, "queries": 0, "calls": 0, "wall": 0.0, "function_calls": 0}
    )
    probe = Timing(name=name)
    with profiled(probe), DatabaseCPU() as db, CaptureQueriesContext(connection) as queries:
        cpu, wall = time.process_time(), time.perf_counter()
        yield
        part["python"] += time.process_time() - cpu
        part["wall"] += time.perf_counter() - wall
    part["postgres"] += db.seconds or 0.0
    part["function_calls"] += probe.extra.get("calls", 0)
    part["queries"] += len(queries)
    part["calls"] += 1


def _company():
    """The tier-M plan (generated here when this database has none) and its figures built."""
    from django.utils import timezone

    from bench import bigco
    from targets.attainment.services import attainment_recompute
    from targets.models import LatestAttainment, TargetPlan

    plan = TargetPlan.objects.filter(name__startswith="BigCo signed revenue").order_by("pk").last()
    if plan is None:
        plan = bigco.generate(SCALE).plan
    if not LatestAttainment.objects.filter(node__plan=plan).exists():
        attainment_recompute(plan=plan, as_of=timezone.localdate())
    return plan


def writers(moves: int) -> list[tuple[object, int]]:
    """(manager, open deal id) pairs: the open deals (before the last open stage) of WRITERS teams' managers,
    round robin over the teams as the load's writers move them; deals the bench moved before are skipped."""
    from django.utils import timezone

    from crm.models import Region
    from pipeline.models import Opportunity, Stage

    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    last_open = Stage.objects.filter(is_won=False, is_lost=False).order_by("-order").values_list("order", flat=True)[0]
    teams = list(
        Region.objects.filter(manager__isnull=False, children__isnull=True).order_by("id").select_related("manager")
    )
    teams = random.Random(12).sample(teams, WRITERS)
    per_team = []
    for team in teams:
        deals = list(
            Opportunity.objects.filter(
                region=team, stage__is_won=False, stage__is_lost=False, stage__order__lt=last_open
            )
            .exclude(stage_entered_at__gte=today)  # not one this bench moved today
            .order_by("id")
            .values_list("id", flat=True)[: moves // WRITERS + 1]
        )
        per_team.append([(team.manager, pk) for pk in deals])
    chosen = [pair for round_ in zip(*per_team, strict=False) for pair in round_]
    return chosen[:moves]


def _move(client, token: str, deal_id: int, stage_of: dict[tuple[int, int], int], parts: dict) -> None:
    from pipeline.models import Opportunity

    deal = Opportunity.objects.values("version", "pipeline_id", "stage__order").get(pk=deal_id)
    body = {
        "stage": stage_of[deal["pipeline_id"], deal["stage__order"] + 1],
        "version": deal["version"],
        "evidence": "bench-write-cost",
    }
    with _cost("request", parts):
        response = client.post(
            f"/api/opportunities/{deal_id}/move-stage/",
            body,
            content_type="application/json",
            headers={"authorization": f"Token {token}"},
        )
    if response.status_code != 200:
        raise RuntimeError(f"move of deal {deal_id}: HTTP {response.status_code} {response.content[:300]!r}")


def _background(parts: dict, prefix: str) -> None:
    """The worker's part of what is pending: the recomputes' drain, then the alert evaluations it enqueued."""
    from salesmgmt import outbox
    from salesmgmt.models import OutboxTask
    from targets.tasks import evaluate_alerts

    with _cost(f"{prefix} drain", parts):
        outbox.drain(RECOMPUTE)
    for pk, args in list(OutboxTask.objects.filter(name=ALERTS).order_by("id").values_list("pk", "args")):
        with _cost(f"{prefix} alerts", parts):
            evaluate_alerts(*args)
        OutboxTask.objects.filter(pk=pk).delete()


def measure(moves: int = MOVES) -> tuple[dict, dict]:
    """Move `moves` deals then drain all at once; move `moves` more draining after each. The parts' costs."""
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from pipeline.models import Stage

    stage_of = {(s.pipeline_id, s.order): s.pk for s in Stage.objects.all()}
    pairs = writers(2 * moves)
    tokens = {m.pk: Token.objects.get_or_create(user=m)[0].key for m, _deal in pairs}
    client = Client()
    together: dict = {}
    alone: dict = {}
    with held_dispatch():
        # Warm up: the first request loads URL confs, serializers and the like.
        for manager, deal_id in pairs[:1]:
            _move(client, tokens[manager.pk], deal_id, stage_of, {})
            _background({}, "warm-up")
        for manager, deal_id in pairs[1 : moves + 1]:
            _move(client, tokens[manager.pk], deal_id, stage_of, together)
        _background(together, "together")
        for manager, deal_id in pairs[moves + 1 :]:
            _move(client, tokens[manager.pk], deal_id, stage_of, alone)
            _background(alone, "alone")
    return together, alone


def _timings(parts: dict, moves: int, label: str) -> list[Timing]:
    out = []
    total = {"python": 0.0, "postgres": 0.0}
    for name, p in parts.items():
        for k in total:
            total[k] += p[k]
        out.append(
            Timing(
                name=f"write cost ({label}): {name}, per move",
                seconds=p["wall"] / moves,
                cpu=p["python"] / moves,
                queries=round(p["queries"] / moves),
                note=(
                    f"Python {p['python'] / moves * 1000:.1f} ms + PostgreSQL {p['postgres'] / moves * 1000:.1f} ms "
                    f"CPU a move; {p['queries']} queries in {p['calls']} runs for {moves} moves"
                    + (f"; {p['function_calls'] / moves:,.0f} Python calls a move" if p["function_calls"] else "")
                ),
                extra=p,
            )
        )
    out.append(
        Timing(
            name=f"write cost ({label}): all parts, per move",
            seconds=sum(p["wall"] for p in parts.values()) / moves,
            cpu=total["python"] / moves,
            queries=round(sum(p["queries"] for p in parts.values()) / moves),
            note=f"CPU: Python {total['python'] / moves * 1e3:.1f} ms + PostgreSQL "
            f"{total['postgres'] / moves * 1e3:.1f} ms",
        )
    )
    return out


def run(moves: int = MOVES) -> list[Timing]:
    from bench.bench_load import rebuild_check

    plan = _company()
    together, alone = measure(moves)
    timings = _timings(together, moves, f"{moves} moves, one drain")
    timings += _timings(alone, moves, "a drain after each move")
    check = rebuild_check(plan, "write cost: figures == a full rebuild afterwards")
    return [*timings, check]


def main(argv: list[str], print_table: Callable | None = None) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")
    django.setup()
    from django.core.management import call_command

    from bench.__main__ import print_table

    call_command("migrate", interactive=False, verbosity=0)
    timings = run(int(argv[0]) if argv else MOVES)
    print_table(timings)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average {load}")


if __name__ == "__main__":
    main(sys.argv[1:])
