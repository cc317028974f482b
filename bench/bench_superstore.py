"""The public Tableau "Sample - Superstore" file (9,994 order lines) through the wizard's own code (issue 15): a
manager of the North area imports it as historical won deals with the guessed mapping, a default owner and
"create missing", as tests/pipeline/imports/test_superstore.py does through the views. The commit creates 657
regions (the file's Region -> State -> City under his area), 20 product lines (Category -> Sub-Category), 1,849
products and 793 customers before its 9,994 deals.

Timed: the preview's check (`import_job_validate`) and the commit (`import_job_commit`, the Celery task's body),
the commit split into its re-check, the creation of the missing records and the deals' write, each with its SQL
queries (COPY counted as one statement). The background work the import enqueues (the attainment rebuild) is held,
as a web request with a broker does, and not timed. The won total is checked against the file's lines, each
rounded half up to the cent. Goal: the commit in <= 10 s. BENCH_PROFILE=superstore shows where the time goes.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from bench import Timing, held_dispatch, timed

SUPERSTORE = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "tableau-sample-superstore"
FILE = SUPERSTORE / "Sample-Superstore.csv"
GOAL = 10.0  # seconds for the commit


def _company() -> dict[str, Any]:
    """The persona company of the tests: HQ with East and North, Beijing under North; the manager of North
    imports, the Beijing rep is the default owner."""
    from crm.models import RegionKind, Role
    from crm.services import ensure_company_currency, region_create, user_create
    from pipeline.services import pipeline_ensure_default

    ensure_company_currency()
    pipeline_ensure_default()
    hq = region_create(name="HQ", code="HQ", kind=RegionKind.COMPANY)
    region_create(name="East", code="EAST", kind=RegionKind.AREA, parent=hq)
    north = region_create(name="North", code="NORTH", kind=RegionKind.AREA, parent=hq)
    beijing = region_create(name="Beijing", code="BJ", kind=RegionKind.PROVINCE, parent=north)
    manager = user_create(username="manager_north", password=None, role=Role.MANAGER, region=north)
    north.manager = manager
    north.save(update_fields=["manager"])
    rep = user_create(
        username="rep_bj", password=None, role=Role.REP, region=beijing, first_name="Bei", last_name="Jing"
    )
    return {"manager": manager, "rep": rep, "north": north}


def _file_total() -> tuple[int, Decimal]:
    """The file's lines and the sum of their amounts, each rounded half up to the cent."""
    with FILE.open(newline="", encoding="utf-8") as handle:
        amounts = [Decimal(row["Sales"].strip()) for row in csv.DictReader(handle)]
    cent = Decimal("0.01")
    return len(amounts), sum((a.quantize(cent, rounding=ROUND_HALF_UP) for a in amounts), Decimal(0))


@contextmanager
def _steps() -> Iterator[dict[str, list[float]]]:
    """Seconds, queries and Python CPU seconds of the commit's steps: its re-check, its write (`import_apply`) and,
    inside the write, the creation of the missing records (`create_missing`); the deals are the write less that."""
    from django.db import connection

    from pipeline.importing import jobs, writing

    steps: dict[str, list[float]] = {"check": [0.0, 0, 0.0], "apply": [0.0, 0, 0.0], "create": [0.0, 0, 0.0]}
    queries = Counter[str]()

    def count(execute, sql, params, many, context):
        queries["n"] += 1
        return execute(sql, params, many, context)

    def wrapped(name: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start, before, cpu = time.perf_counter(), queries["n"], time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                steps[name][0] += time.perf_counter() - start
                steps[name][1] += queries["n"] - before
                steps[name][2] += time.process_time() - cpu

        return wrapper

    originals = (jobs.import_validate, jobs.import_apply, writing.create_missing)
    jobs.import_validate = wrapped("check", jobs.import_validate)
    jobs.import_apply = wrapped("apply", jobs.import_apply)
    writing.create_missing = wrapped("create", writing.create_missing)
    try:
        with connection.execute_wrapper(count):
            yield steps
    finally:
        jobs.import_validate, jobs.import_apply, writing.create_missing = originals
        steps["all"] = [0.0, queries["n"], 0.0]


def run() -> list[Timing]:
    from django.db.models import Sum

    from crm.models import Customer, Product, ProductLine, Region
    from pipeline.importing import import_job_commit, import_job_create, import_job_validate
    from pipeline.models import ImportKind, ImportStatus, Opportunity

    if not FILE.is_file():
        print(f"  the Superstore sample is not at {FILE}: skipped", flush=True)
        return []
    rows, total = _file_total()
    company = _company()
    manager = company["manager"]
    job = import_job_create(kind=ImportKind.WON_DEALS, data=FILE.read_bytes(), filename=FILE.name, actor=manager)
    options = {"create_missing": True, "default_owner_id": company["rep"].pk}
    with timed(f"superstore: preview check of {rows:,} lines") as preview:
        plan = import_job_validate(job=job, mapping=job.mapping, options=options, actor=manager)
    assert not plan.errors, plan.errors[:5]
    will_create = plan.will_create
    del plan

    before = {m: m.objects.count() for m in (Region, ProductLine, Product, Customer)}
    with _steps() as steps, held_dispatch(), timed(f"superstore: commit of {rows:,} lines", goal=GOAL) as commit:
        done = import_job_commit(job_id=job.pk)
    assert done is not None and done.status == ImportStatus.DONE, done and done.result
    won = Opportunity.objects.filter(region__path__startswith=company["north"].path)
    assert won.count() == rows and won.aggregate(s=Sum("amount_company"))["s"] == total, "the import lost deals"
    made = {m.__name__: m.objects.count() - n for m, n in before.items()}
    assert made == {
        "Region": will_create["regions"],
        "ProductLine": will_create["product_lines"],
        "Product": will_create["products"],
        "Customer": will_create["customers"],
    }, (made, will_create)

    check, apply, create = steps["check"], steps["apply"], steps["create"]
    deals = [apply[i] - create[i] for i in range(3)]
    commit.queries = int(steps["all"][1])
    commit.note = (
        f"{rows / commit.seconds:,.0f} rows/s; re-check {check[0]:.1f} s ({check[1]:,} queries), create "
        f"{create[0]:.1f} s ({create[1]:,} queries: {made['Region']} regions, {made['ProductLine']} lines, "
        f"{made['Product']:,} products, {made['Customer']} customers), deals {deals[0]:.1f} s ({deals[1]:,} queries)"
    )
    preview.note = f"{rows / preview.seconds:,.0f} rows/s"
    rate = Timing(name="  superstore: commit rate", seconds=rows / commit.seconds, unit="rows/s", note="rows / commit")
    creating = Timing(
        name="  superstore: creating the missing records",
        seconds=create[0],
        queries=int(create[1]),
        cpu=create[2],
        note=f"{sum(made.values()):,} records with their audit rows; {create[2]:.1f} s of Python CPU",
    )
    return [preview, commit, rate, creating]
