"""Importing 100,000 won deals (issue 15): the wizard's commit of a CSV and of an XLSX file, in rows per second,
with the peak memory of the process that runs it.

The company beside which the deals are imported is generated here (a small one: 4 areas of 4 teams, 200 reps,
5,000 customers, 30 products in 3 lines, the default pipeline). The file names each deal's external id, customer,
rep (by name, as people write them), team, product, an amount with cents, the won stage, the engage and close
dates, as an export from another CRM would.

Each file goes through the wizard's own code: `import_job_create` keeps the upload, `import_job_validate` checks it
(the preview step, timed apart) and `import_job_commit` (the Celery task's body) reads the stored file, checks every
row again and writes in one transaction. The commit runs in a fresh Python
process (Django set up, the web worker's imports done), timed and with its peak RSS (VmHWM) beside what the idle
process held; the background work the import enqueues (the attainment rebuild) is held, as a web request with a
broker does, and not timed.

Goals: CSV >= 20,000 rows/s and XLSX >= 5,000 rows/s (rows / commit time, the commit's check included). The CSV is
also committed at a quarter of the rows to show how memory grows with the file. The files are written afresh on
each run into $TMPDIR/salesmgmt-bench-imports (their ids must be new to the database); BENCH_IMPORT_ROWS changes
the size (e.g. 20000 for a quick look) and BENCH_IMPORT_FILES which of them run (e.g. "csv" for the full-size CSV
alone; the names are csv-small, csv and xlsx); BENCH_IMPORT_PROFILE=path keeps each commit's cProfile stats in
path.<job id> (its times are then the profiler's); BENCH_IMPORT_STREAM=1 commits streamed (the deals written while the
rows are checked; off in the app, slower) to compare.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from bench import Timing

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
SMALL_ROWS = ROWS // 4
FILES = [f.strip() for f in os.environ.get("BENCH_IMPORT_FILES", "csv-small,csv,xlsx").split(",") if f.strip()]
CSV_GOAL = 20_000  # rows per second
XLSX_GOAL = 5_000
AREAS, TEAMS_PER_AREA, REPS, CUSTOMERS, LINES, PRODUCTS_PER_LINE = 4, 4, 200, 5_000, 3, 10
HEADER = ["Deal ID", "Customer", "Sales Rep", "Team", "Product", "Amount", "Stage", "Engage Date", "Close Date"]
MAPPING = {
    "Deal ID": "external_id",
    "Customer": "customer",
    "Sales Rep": "owner",
    "Team": "region",
    "Product": "product",
    "Amount": "amount",
    "Stage": "stage",
    "Engage Date": "created_on",
    "Close Date": "close_date",
}
FIRST_NAMES = ("Wei", "Fang", "Lei", "Min", "Jing", "Tao", "Yan", "Hui", "Jun", "Ping")
LAST_NAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun", "Ma", "Hu")

CHILD = r"""
import json, os, sys, time
import django
django.setup()
from bench import held_dispatch
from pipeline import importing
from pipeline.importing import jobs
from pipeline.models import ImportJob
import openpyxl, python_calamine, xlrd  # a worker has them imported already

job_id = int(sys.argv[1])


def peak_mb():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's peak across exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


steps = {"validate": 0.0, "apply": 0.0}
progress = []


def timed_step(name, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            steps[name] += time.perf_counter() - start
    return wrapper


jobs.import_validate = timed_step("validate", jobs.import_validate)
jobs.import_apply = timed_step("apply", jobs.import_apply)
original_progress = jobs._set_progress
jobs._set_progress = lambda *args: (progress.append(args[-1]), original_progress(*args))[1]
def backend_cpu():  # CPU seconds of this connection's PostgreSQL backend (same machine), from /proc
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


stream_cpu = []  # of the connection a streamed commit writes on (`jobs.DealStream`), taken as its thread ends


class _Connections:
    def __getattr__(self, name):
        return getattr(django.db.connections, name)

    def close_all(self):
        stream_cpu.append(backend_cpu() or 0)
        django.db.connections.close_all()


import django.db
jobs.connections = _Connections()
if os.environ.get("BENCH_IMPORT_STREAM"):  # write the deals while the rows are checked (jobs.DealStream)
    jobs.STREAM = True
before = peak_mb()
db_before = backend_cpu()
start, cpu = time.perf_counter(), time.process_time()
profile_to = os.environ.get("BENCH_IMPORT_PROFILE")  # a file to keep the commit's cProfile stats in
if profile_to:
    import cProfile
    profile = cProfile.Profile()
    profile.enable()
with held_dispatch():
    job = importing.import_job_commit(job_id=job_id)
if profile_to:
    profile.disable()
    profile.dump_stats(f"{profile_to}.{job_id}")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
db_after = backend_cpu()
after = peak_mb()
job = ImportJob.objects.get(pk=job_id)
print(json.dumps({
    "seconds": seconds, "rss_mb": after, "idle_mb": before, "status": job.status, "cpu": cpu,
    "db_cpu": None if db_before is None or db_after is None else db_after - db_before + sum(stream_cpu),
    "message": (job.result or {}).get("message", ""), "created": (job.result or {}).get("created", {}),
    "steps": steps, "progress_updates": len(progress), "streamed": bool(stream_cpu),
}))
"""


def _folder() -> Path:
    folder = Path(tempfile.gettempdir()) / "salesmgmt-bench-imports"
    folder.mkdir(exist_ok=True)
    return folder


def _company() -> dict:
    """The company the deals are imported beside; returns the names the file uses."""
    from crm.models import Customer, ProductLine, RegionKind, Role, User
    from crm.services import ensure_company_currency, product_create, product_line_create, region_create, user_create
    from pipeline.services import pipeline_ensure_default

    rng = random.Random(15)
    ensure_company_currency()
    pipeline = pipeline_ensure_default()
    won = pipeline.stages.get(is_won=True)
    root = region_create(name="Import Co", code="IMP-CO", kind=RegionKind.COMPANY)
    teams = []
    for a in range(AREAS):
        area = region_create(name=f"Area {a + 1}", code=f"IMP-A{a + 1}", kind=RegionKind.AREA, parent=root)
        for t in range(TEAMS_PER_AREA):
            code = f"IMP-A{a + 1}-T{t + 1}"
            teams.append(region_create(name=f"Team {a + 1}.{t + 1}", code=code, kind=RegionKind.TEAM, parent=area))
    actor = user_create(username="imp-director", password=None, role=Role.DIRECTOR, region=root)
    reps = []
    for i in range(REPS):
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        reps.append(
            user_create(
                username=f"imp-rep{i:03d}",
                password=None,
                role=Role.REP,
                region=teams[i % len(teams)],
                first_name=f"{first}{i // (len(FIRST_NAMES) * len(LAST_NAMES)) or ''}",
                last_name=last,
            )
        )
    products = []
    for n in range(LINES):
        line = product_line_create(name=f"Series {n + 1}", code=f"IMP-L{n + 1}")
        for p in range(PRODUCTS_PER_LINE):
            products.append(
                product_create(line=line, name=f"Model {n + 1}{p:02d}", code=f"IMP-P{n + 1}{p:02d}", list_price=1000)
            )
    customers = Customer.objects.bulk_create(
        [
            Customer(name=f"客户 {i:05d} Trading Co.", owner=rep, region=rep.region)
            for i in range(CUSTOMERS)
            for rep in [reps[rng.randrange(REPS)]]
        ],
        batch_size=1000,
    )
    assert ProductLine.objects.filter(code__startswith="IMP-L").count() == LINES
    return {
        "actor_id": actor.pk,
        "won": won.name,
        "customers": [(c.name, c.owner_id) for c in customers],
        "reps": {
            r.pk: (f"{r.first_name} {r.last_name}", r.region.code)
            for r in User.objects.filter(pk__in=[x.pk for x in reps]).select_related("region")
        },
        "products": [p.name for p in products],
    }


def _rows(company: dict, n: int, prefix: str):
    """The deals of one file: each with one of the customer's owner's deals, a product, cents, engage and close
    dates over the last three years."""
    rng = random.Random(f"{prefix}{n}")
    start = date(2024, 1, 1)
    for i in range(n):
        customer, owner = company["customers"][rng.randrange(len(company["customers"]))]
        rep, team = company["reps"][owner]
        engaged = start + timedelta(days=rng.randrange(900))
        closed = engaged + timedelta(days=rng.randrange(5, 120))
        cents = rng.randrange(100_000, 50_000_000)
        yield [
            f"{prefix}-{i:06d}",
            customer,
            rep,
            team,
            company["products"][rng.randrange(len(company["products"]))],
            Decimal(cents) / 100,
            company["won"],
            engaged,
            closed,
        ]


def _csv(path: Path, company: dict, n: int, prefix: str) -> Decimal:
    total = Decimal(0)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for row in _rows(company, n, prefix):
            total += row[5]
            writer.writerow([*row[:7], row[7].isoformat(), row[8].isoformat()])
    return total


def _xlsx(path: Path, company: dict, n: int, prefix: str) -> Decimal:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    total = Decimal(0)
    for row in _rows(company, n, prefix):
        total += row[5]
        row[5] = float(row[5])  # as Excel keeps numbers
        sheet.append(row)
    workbook.save(path)
    return total


def _child(job_id: int) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")}
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(job_id)], capture_output=True, text=True, env=env, cwd=root
    )
    if result.returncode:
        raise RuntimeError(f"The import's process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _import(label: str, path: Path, n: int, total: Decimal, prefix: str, actor, goal: float | None) -> list[Timing]:
    from django.db.models import Sum

    from pipeline.importing import import_job_create, import_job_validate
    from pipeline.models import ImportKind, ImportStatus, Opportunity

    job = import_job_create(kind=ImportKind.OPPORTUNITIES, data=path.read_bytes(), filename=path.name, actor=actor)
    start = time.perf_counter()
    plan = import_job_validate(job=job, mapping=MAPPING, options={}, actor=actor)
    preview = time.perf_counter() - start
    assert not plan.errors, plan.errors[:5]
    del plan
    job.refresh_from_db()
    assert job.status == ImportStatus.VALIDATED
    result = _child(job.pk)
    assert result["status"] == ImportStatus.DONE, result["message"]
    written = Opportunity.objects.filter(external_id__startswith=f"{prefix}-")
    assert written.count() == n and written.aggregate(s=Sum("amount"))["s"] == total, "the import lost deals"
    rate = n / result["seconds"]
    steps = result["steps"]
    cpu = result["cpu"] + (result["db_cpu"] or 0)
    busy = Timing(
        name=f"  {label} {n:,}, by CPU time (Python + PostgreSQL)",
        seconds=n / cpu,
        goal=goal,
        unit="rows/s",
        at_least=True,
        note=(
            f"{result['cpu']:.1f} s Python + {result['db_cpu'] or 0:.1f} s PostgreSQL: the rate on a machine "
            "where nothing else runs (the wall-clock rate above includes waiting for a busy CPU)"
        ),
    )
    timing = Timing(
        name=f"commit {n:,} won deals, {label}",
        seconds=rate,
        goal=goal,
        unit="rows/s",
        at_least=True,
        note=(
            f"{result['seconds']:.1f} s (check {steps['validate']:.1f} s, then write {steps['apply']:.1f} s; "
            f"{'deals written while checked' if result['streamed'] else 'nothing written while checking'}); "
            f"peak RSS {result['rss_mb']:.0f} MB (+{result['rss_mb'] - result['idle_mb']:.0f} MB); "
            f"preview check {n / preview:,.0f} rows/s; {result['progress_updates']} progress updates"
        ),
    )
    timing.extra.update(result, preview_seconds=preview)
    return [timing, busy]


def run() -> list[Timing]:
    from crm.models import User

    print("  generating the company ...", flush=True)
    company = _company()
    actor = User.objects.get(pk=company["actor_id"])
    folder = _folder()
    stamp = f"{int(time.time()) % 100000:05d}"  # the database is fresh, but a kept file's ids must be new to it
    timings = []
    for name, label, writer, suffix, n, goal in (
        ("csv-small", "CSV", _csv, "csv", SMALL_ROWS, None),
        ("csv", "CSV", _csv, "csv", ROWS, CSV_GOAL),
        ("xlsx", "XLSX", _xlsx, "xlsx", ROWS, XLSX_GOAL),
    ):
        if name not in FILES:
            continue
        prefix = f"{suffix.upper()}{n}-{stamp}"
        path = folder / f"won-deals-{n}.{suffix}"
        print(f"  writing {path.name} ...", flush=True)
        total = writer(path, company, n, prefix)
        print(f"  importing {path.name} ({path.stat().st_size / 2**20:.1f} MB) ...", flush=True)
        timings.extend(_import(label, path, n, total, prefix, actor, goal))
    return timings
