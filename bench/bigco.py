"""A big company for the attainment benchmarks, generated fast straight into PostgreSQL.

At scale 1 (the Performance issue's sizes):
- a region tree 6 levels deep: company -> 4 areas -> 3 -> 3 -> 3 -> 500 teams of 10 reps;
- 5,000 reps (role rep, region = their team) and one manager per region (the company's is a director);
- 60,000 customers (12 a rep), 600,000 opportunities created over the 3 fiscal years ending with the
  current one: a deal whose close date has passed is won (35 %) or lost, the others are open with a
  close date in the future; ~3,000,000 stage changes (creation, forward moves, some steps back and
  forth, the final move), consistent with each deal's final stage; customers' `first_won_on` set from
  their won deals;
- one APPROVED signed-revenue plan for the current fiscal year: root -> areas -> ... -> teams -> reps
  -> 12 months -> 2 segments = 120,000 leaves; a leaf's target is last year's revenue of the same
  rep, month and segment plus 15 % (at least 10,000); inner nodes are the exact sums of their children.

Rows are built with numpy and loaded with COPY (psycopg 3) under `session_replication_role = replica`
when the user may set it (no per-row foreign-key triggers: the rows are consistent by construction).
Amounts are whole yuan, so a deal's weighted amount (amount x probability / 100) is exact to the cent
however it is grouped: every way of computing attainment must agree to the cent.

`scale` shrinks or grows everything proportionally (0.01: 50 reps, 6,000 deals, 1,200 leaves); the region
tree keeps its 6 levels (narrower fan-outs below scale 1, wider above: `fan_outs`). The tiers
of issue 15 are scales (`TIERS`, `scale_of`): S = 0.1, M = 1, L = 10 (50,000 reps, 6,000,000 deals,
~30,000,000 stage changes, 1,200,000 leaves).

Memory stays bounded as the scale grows: the per-deal facts are numpy arrays (~100 bytes a deal), while the
rows of the deals and of their stage changes are built, formatted and sent in chunks of `CHUNK_DEALS` deals
(a chunk is formatted while the previous one is on its way to the server: `QueuedLibpqWriter`). Chunking
changes nothing in the output: the random draws are made in the same order as whole arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

REPS = 5_000
TEAM_SIZE = 10
CUSTOMERS_PER_REP = 12
DEALS_PER_REP = 120  # 600,000 at scale 1
HISTORY_PER_DEAL = 5  # 3,000,000 stage changes at scale 1
FAN_OUTS = (4, 3, 3, 3)  # company -> areas -> ... -> the level holding the teams (tier M)
TIER_M_TEAMS = REPS // TEAM_SIZE
WIN_RATE = 0.35
GROWTH = Decimal("1.15")
MIN_LEAF = 10_000  # yuan
# Tiers of issue 15, as scales. Tier M is the Performance issue's company; the benchmarks' figures are at M.
TIERS = {"S": 0.1, "M": 1.0, "L": 10.0}
CHUNK_DEALS = 200_000  # deals (and their ~1,000,000 stage changes) built and sent at a time
CHUNK_NODES = 200_000  # target nodes built and sent at a time

# order, name, probability, won, lost, forecast category
STAGES = (
    (1, "Lead", 10, False, False, "pipeline"),
    (2, "Qualified", 25, False, False, "pipeline"),
    (3, "Proposal", 50, False, False, "best_case"),
    (4, "Negotiation", 75, False, False, "commit"),
    (5, "Won", 100, True, False, "closed"),
    (6, "Lost", 0, False, True, "omitted"),
)
WON, LOST = 5, 6
# The benchmarks share one company region (bench_split looks it up by this code): with two top-level
# regions a company-wide plan would split into companies instead of areas.
COMPANY_CODE = "BENCH-CO"
INDUSTRIES = ("Manufacturing", "Retail", "Healthcare", "Finance", "Energy", "Logistics", "Education")
LOST_REASONS = ("Price", "Competitor", "No budget", "No decision")


@dataclasses.dataclass
class BigCo:
    plan: object
    today: date
    counts: dict
    seconds: float
    won_stage_id: int
    open_stage_ids: list[int]
    rep_ids: list[int]
    steps: dict[str, float] = dataclasses.field(default_factory=dict)


def scale_of(tier: str | float) -> float:
    """A tier's scale ("L" -> 10.0); a number (or its text) is a scale already."""
    if isinstance(tier, str) and tier.upper() in TIERS:
        return TIERS[tier.upper()]
    try:
        scale = float(tier)
    except ValueError:
        raise ValueError(f"A tier is one of {', '.join(TIERS)} or a positive scale, not {tier!r}.") from None
    if not scale > 0:
        raise ValueError(f"A scale is positive, not {tier!r}.")
    return scale


def generate(scale: float | str = 1.0, seed: int = 20261123, *, verbose: bool = True) -> BigCo:
    """Create the company in the current database (PostgreSQL); returns the plan and the counts."""
    from django.db import connection, transaction
    from django.utils import timezone

    if connection.vendor != "postgresql":
        raise RuntimeError("bench.bigco loads with PostgreSQL COPY; DATABASE_URL must point at PostgreSQL.")
    scale = scale_of(scale)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with transaction.atomic(), connection.cursor() as cursor:
        replica = _replica(cursor, True)
        try:
            gen = _Generator(cursor, rng, scale, timezone.localdate(), timezone.now())
            result = gen.run()
        finally:
            if replica:
                _replica(cursor, False)
    analyze = time.perf_counter()
    with connection.cursor() as cursor:
        # As autovacuum keeps production's tables: statistics, and the visibility map that lets an index-only
        # scan skip the heap (the open deals' totals). VACUUM cannot run inside a transaction (a test's).
        cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
    result.steps["analyze"] = time.perf_counter() - analyze
    result.seconds = time.perf_counter() - started
    if verbose:
        counts = ", ".join(f"{v:,} {k}" for k, v in result.counts.items())
        steps = ", ".join(f"{k} {v:.1f}" for k, v in result.steps.items())
        print(f"bigco (scale {scale:g}): {counts} in {result.seconds:.1f} s ({steps})", flush=True)
    return result


def _replica(cursor, on: bool) -> bool:
    """Skip per-row foreign-key triggers while loading (needs a superuser; harmless without)."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic():  # a savepoint: a refusal must not abort the outer transaction
            cursor.execute(f"SET LOCAL session_replication_role = {'replica' if on else 'origin'}")
        return True
    except DatabaseError:  # not a superuser: load with the triggers
        return False


def _reserve(cursor, table: str, n: int) -> int:
    """Reserve n consecutive ids of `table` and return the first (the database is ours alone)."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    seq = cursor.fetchone()[0]
    cursor.execute("SELECT nextval(%s)", [seq])
    first = cursor.fetchone()[0]
    if n > 1:
        cursor.execute("SELECT setval(%s, %s)", [seq, first + n - 1])
    return first


def _cells(column: pd.Series) -> list[str]:
    """One column as CSV cells: NULL unquoted-empty, '' quoted, timestamps in UTC, booleans t/f.

    Written by hand: pandas' to_csv spends ~15 us a cell on timezone-aware timestamps (45 s for the
    stage changes alone); this is ~0.3 us."""
    types = pd.api.types
    missing = column.isna().to_numpy()
    if types.is_bool_dtype(column):
        cells = np.where(column.to_numpy(dtype=bool, na_value=False), "t", "f").astype(object)
    elif types.is_integer_dtype(column):
        cells = column.to_numpy(dtype=np.int64, na_value=0).astype(str).astype(object)
    elif types.is_datetime64_any_dtype(column) and column.dt.tz is None:  # naive: dates
        cells = np.datetime_as_string(column.to_numpy(dtype="datetime64[D]"), unit="D").astype(object)
    elif types.is_datetime64_any_dtype(column):
        values = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        cells = np.datetime_as_string(values, unit="us", timezone="UTC").astype(object)
    else:  # text, dates, decimals as their str(); each distinct value formatted once
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        formatted = np.array([_quoted(str(v)) for v in uniques] + [""], dtype=object)
        cells = formatted[codes]  # the sentinel -1 picks the trailing ""
    cells[missing] = ""
    return cells.tolist()


def _quoted(text: str) -> str:
    if text == "" or any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _copy(cursor, table: str, frames: pd.DataFrame | Iterable[pd.DataFrame], chunk: int = 200_000) -> int:
    """COPY a DataFrame, or DataFrames of the same columns one after the other, in CSV (NaN/NA/None load as
    NULL). Cells are formatted a chunk at a time (a chunk's cells as Python strings take ~10x its frame's
    memory), each while the previous chunk is sent by psycopg's writer thread (its queue is bounded)."""
    from psycopg.copy import QueuedLibpqWriter

    if isinstance(frames, pd.DataFrame):
        whole = frames
        frames = (whole.iloc[start : start + chunk] for start in range(0, len(whole), chunk))
    parts = iter(frames)
    first = next(parts, None)
    if first is None:
        return 0
    columns = ", ".join(f'"{c}"' for c in first.columns)
    raw = getattr(cursor, "cursor", cursor)  # Django's wrapper -> psycopg's cursor
    count = 0
    statement = f'COPY "{table}" ({columns}) FROM STDIN WITH (FORMAT csv)'
    with raw.copy(statement, writer=QueuedLibpqWriter(raw)) as copy:
        for frame in itertools.chain([first], parts):
            for start in range(0, len(frame), chunk):
                part = frame.iloc[start : start + chunk]
                cells = [_cells(part[c]) for c in part.columns]
                copy.write("\n".join(map(",".join, zip(*cells, strict=True))) + "\n")
            count += len(frame)
    return count


def _secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint (the primary key stays)."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = %s
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)
        """,
        [table],
    )
    return cursor.fetchall()


@contextlib.contextmanager
def _indexes_built_after(cursor, table: str) -> Iterator[None]:
    """Load many rows into `table` inside: its secondary indexes are dropped before and built again after (one
    sort each instead of millions of insertions). All in the caller's transaction, so a failure leaves the
    schema as it was."""
    indexes = _secondary_indexes(cursor, table)
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    for _name, definition in indexes:
        cursor.execute(definition)


def _copy_big(cursor, table: str, frame: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """COPY many rows, the table's secondary indexes built after (`_indexes_built_after`)."""
    with _indexes_built_after(cursor, table):
        return _copy(cursor, table, frame)


def fan_outs(teams: int) -> list[int]:
    """The company's fan-outs: narrowed until the team-holding level has no more nodes than teams (below
    tier M); above tier M widened, the narrowest first, while each node of that level keeps as many teams as
    at tier M (~4.6: a region of ~50 reps, the manager's review of the benchmarks) — tier L: 5, 6, 6, 6."""
    fans = list(FAN_OUTS)
    while math.prod(fans) > teams:
        i = max(range(len(fans)), key=lambda k: (fans[k], k))
        if fans[i] == 1:
            break
        fans[i] -= 1
    holders = teams * math.prod(FAN_OUTS) / TIER_M_TEAMS
    while teams > TIER_M_TEAMS:
        i = min(range(len(fans)), key=lambda k: (fans[k], -k))
        if math.prod(fans) // fans[i] * (fans[i] + 1) > holders:
            break
        fans[i] += 1
    return fans


class _Generator:
    def __init__(self, cursor, rng, scale: float, today: date, now: datetime):
        from crm.models import CompanySettings
        from salesmgmt.lib import periods

        self.cursor, self.rng, self.today, self.now = cursor, rng, today, now
        self.reps = max(TEAM_SIZE, round(REPS * scale))
        self.teams = math.ceil(self.reps / TEAM_SIZE)
        self.customers = self.reps * CUSTOMERS_PER_REP
        self.deals = self.reps * DEALS_PER_REP
        settings = CompanySettings.load()
        self.start_month = settings.fiscal_year_start_month
        self.currency = settings.currency
        self.fy = periods.period_of(today, periods.YEAR, self.start_month)
        self.last_fy = periods.year(self.fy.fiscal_year - 1, self.start_month)
        self.first_fy = periods.year(self.fy.fiscal_year - 2, self.start_month)
        self.months = [periods.month(self.fy.fiscal_year, m, self.start_month) for m in range(1, 13)]
        self.counts: dict[str, int] = {}
        self.steps: dict[str, float] = {}

    def run(self) -> BigCo:
        # The secondary indexes are built again after the load: one sort each, in memory up to tier L's.
        self.cursor.execute(f"SET LOCAL maintenance_work_mem = '{'1GB' if self.deals > 1_000_000 else '256MB'}'")
        steps = (self._reference, self._organisation, self._customers, self._deals, self._history)
        for step in steps:
            self._step(step)
        plan = self._step(self._plan)
        return BigCo(
            plan=plan,
            today=self.today,
            counts=self.counts,
            seconds=0.0,
            won_stage_id=int(self.stage_ids[WON]),
            open_stage_ids=[int(self.stage_ids[o]) for o in (1, 2, 3, 4)],
            rep_ids=[int(x) for x in self.rep_user_ids],
            steps=self.steps,
        )

    def _step(self, step):
        started = time.perf_counter()
        result = step()
        self.steps[step.__name__.strip("_")] = time.perf_counter() - started
        return result

    # --- reference rows (ORM: a handful) ---------------------------------------------------------

    def _reference(self) -> None:
        from crm.models import Currency
        from pipeline.models import Pipeline, Stage

        Currency.objects.get_or_create(code=self.currency, defaults={"name": self.currency})
        pipeline, _created = Pipeline.objects.get_or_create(name="BigCo sales", defaults={"name_zh": "大公司销售流程"})
        self.pipeline_id = pipeline.pk
        self.stage_ids = np.zeros(len(STAGES) + 1, dtype=np.int64)
        self.stage_prob = np.zeros(len(STAGES) + 1, dtype=np.int64)
        self.stage_names = np.empty(len(STAGES) + 1, dtype=object)
        self.stage_names[0] = ""
        self.stage_forecast = np.empty(len(STAGES) + 1, dtype=object)
        for order, name, probability, won, lost, forecast in STAGES:
            stage, _created = Stage.objects.get_or_create(
                pipeline=pipeline,
                order=order,
                defaults={
                    "name": name,
                    "probability": probability,
                    "is_won": won,
                    "is_lost": lost,
                    "forecast_category": forecast,
                },
            )
            self.stage_ids[order] = stage.pk
            self.stage_prob[order] = stage.probability
            self.stage_names[order] = stage.name
            self.stage_forecast[order] = stage.forecast_category

    # --- regions and users -----------------------------------------------------------------------

    def _organisation(self) -> None:
        from crm.models import Region

        fans = fan_outs(self.teams)
        # Regions level by level: (parent index, sibling number); teams hang under the last level round-robin.
        levels: list[list[tuple[int | None, int]]] = [[(None, 1)]]
        for fan in fans:
            levels.append([(p, s + 1) for p in range(len(levels[-1])) for s in range(fan)])
        holders = len(levels[-1])
        teams = [(t % holders, t // holders + 1) for t in range(self.teams)]
        levels.append(sorted(teams))
        n_regions = sum(len(level) for level in levels)
        n_users = n_regions + self.reps  # a manager per region, then the reps
        region0 = _reserve(self.cursor, "crm_region", n_regions)
        user0 = _reserve(self.cursor, "crm_user", n_users)

        kinds = ["company", "area"] + ["province"] * (len(levels) - 3) + ["team"]
        rows, ids_of_level = [], []
        next_id = region0
        for depth, level in enumerate(levels):
            ids = list(range(next_id, next_id + len(level)))
            next_id += len(level)
            ids_of_level.append(ids)
            for i, (parent, _sibling) in enumerate(level):
                parent_row = rows[ids_of_level[depth - 1][parent] - region0] if parent is not None else None
                path = f"{parent_row['path'] if parent_row else '/'}{ids[i]}/"
                number = ids[i] - region0
                rows.append(
                    {
                        "id": ids[i],
                        "name": "BigCo" if depth == 0 else f"BigCo {kinds[depth]} {number}",
                        "code": COMPANY_CODE if depth == 0 else f"BC-R{number}",
                        "kind": kinds[depth],
                        "path": path,
                        "depth": depth,
                        "manager_id": user0 + number,
                        "parent_id": parent_row["id"] if parent_row else None,
                    }
                )
        company = Region.objects.filter(code=COMPANY_CODE).first()
        if company is not None:  # another benchmark's company: hang the areas under it (one top region)
            rows[0].update(id=company.pk, path=company.path, manager_id=company.manager_id or user0)
            for row in rows[1:]:
                row["path"] = company.path + row["path"][len(f"/{region0}/") :]
                if row["parent_id"] == region0:
                    row["parent_id"] = company.pk
        regions = pd.DataFrame(rows)
        regions["manager_id"] = regions["manager_id"].astype("Int64")
        regions["parent_id"] = regions["parent_id"].astype("Int64")
        self.counts["regions"] = _copy(self.cursor, "crm_region", regions[1:] if company else regions)
        self.counts["region levels"] = len(levels)
        self.regions = regions

        team_ids = np.array(ids_of_level[-1], dtype=np.int64)
        rep_team = np.arange(self.reps) // TEAM_SIZE
        self.rep_user_ids = user0 + n_regions + np.arange(self.reps)
        self.rep_region = team_ids[rep_team]
        self.director_id = user0
        users = pd.DataFrame(
            {
                "id": np.concatenate([user0 + np.arange(n_regions), self.rep_user_ids]),
                "username": [f"bc-m{i}" for i in range(n_regions)] + [f"bc-r{i}" for i in range(self.reps)],
                "first_name": ["Manager"] * n_regions + ["Rep"] * self.reps,
                "last_name": [str(i) for i in range(n_regions)] + [str(i) for i in range(self.reps)],
                "role": ["director"] + ["manager"] * (n_regions - 1) + ["rep"] * self.reps,
                "region_id": np.concatenate([regions["id"].to_numpy(), self.rep_region]),
                "employee_code": [f"BCM{i:05d}" for i in range(n_regions)] + [f"BCR{i:05d}" for i in range(self.reps)],
            }
        )
        users["password"] = "!bigco"  # unusable
        users["email"] = ""
        users["data_scope"] = ""
        users["is_superuser"] = False
        users["is_staff"] = False
        users["is_active"] = True
        users["date_joined"] = self.now
        self.counts["users"] = _copy(self.cursor, "crm_user", users)
        self.counts["reps"] = self.reps
        self.manager_of_region = dict(zip(regions["id"], regions["manager_id"], strict=True))

    # --- customers and deals ---------------------------------------------------------------------

    def _customers(self) -> None:
        n, rng = self.customers, self.rng
        self.customer0 = _reserve(self.cursor, "crm_customer", n)
        owner_index = np.arange(n) % self.reps  # customer k belongs to rep k % reps
        origin = self.first_fy.start.toordinal()
        self.customer_since = rng.integers(origin - 730, self.today.toordinal() - 60, size=n)
        self.customer_owner = owner_index
        frame = pd.DataFrame(
            {
                "id": self.customer0 + np.arange(n),
                "name": [f"BigCo customer {k}" for k in range(n)],
                "industry": np.array(INDUSTRIES, dtype=object)[rng.integers(len(INDUSTRIES), size=n)],
                "tier": np.array(["KA", "A", "B", "C"], dtype=object)[rng.choice(4, size=n, p=[0.05, 0.15, 0.3, 0.5])],
                "owner_id": self.rep_user_ids[owner_index],
                "region_id": self.rep_region[owner_index],
            }
        )
        frame["external_id"] = ""
        frame["notes"] = ""
        epoch = date(1970, 1, 1).toordinal()
        frame["created_at"] = pd.Series((self.customer_since - epoch).astype("datetime64[D]")).dt.tz_localize("UTC")
        frame["updated_at"] = self.now
        self.customer_frame = frame  # written with the deals, which give `first_won_on`

    def _deals(self) -> None:
        n, rng = self.deals, self.rng
        origin = self.first_fy.start.toordinal()
        today = self.today.toordinal()
        # Reps are not equally productive; a deal goes with one of its owner's customers, after the
        # customer came (customers keep coming, so "new" revenue is real in every year).
        weight = rng.lognormal(0.0, 0.4, size=self.reps)
        rep = rng.choice(self.reps, size=n, p=weight / weight.sum())
        customer = rep + self.reps * rng.integers(CUSTOMERS_PER_REP, size=n)
        since = np.maximum(origin, self.customer_since[customer])
        created = since + (rng.random(n) * (today - since)).astype(np.int64)  # a day
        cycle = np.minimum(14 + rng.gamma(2.0, 40.0, size=n).astype(np.int64), 360)
        close = created + cycle
        closed = close <= today
        won = closed & (rng.random(n) < WIN_RATE)
        lost = closed & ~won
        # Stages reached before the end: open deals sit in 1-4, lost ones were lost after reaching 1-4.
        open_stage = rng.choice(4, size=n, p=[0.35, 0.3, 0.2, 0.15]) + 1
        lost_after = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1]) + 1
        final = np.where(won, WON, np.where(lost, LOST, open_stage))
        self.reached = np.where(won, 4, np.where(lost, lost_after, open_stage))
        amount = np.maximum(1_000, np.round(rng.lognormal(np.log(60_000), 0.9, size=n), -2)).astype(np.int64)

        self.deal0 = _reserve(self.cursor, "pipeline_opportunity", n)
        self.deal_created, self.deal_close, self.deal_closed = created, close, closed
        self.deal_final, self.deal_rep, self.deal_customer, self.deal_amount = final, rep, customer, amount
        epoch = date(1970, 1, 1).toordinal()
        self.deal_created_at = (created - epoch).astype("datetime64[D]").astype("datetime64[s]") + rng.integers(
            8 * 3600, 18 * 3600, size=n
        ).astype("timedelta64[s]")
        self.deal_lost_reason = np.where(lost, rng.integers(len(LOST_REASONS), size=n), -1)
        # Each customer's first won deal (its close day): the segment of its deals ("new" before it).
        first = np.full(self.customers, np.iinfo(np.int64).max)
        np.minimum.at(first, customer[won], close[won])
        self.customer_first_won = first
        has_won = first < np.iinfo(np.int64).max
        frame = self.customer_frame
        frame["first_won_on"] = pd.Series(np.where(has_won, first - epoch, 0).astype("datetime64[D]")).where(has_won)
        self.counts["customers"] = _copy(self.cursor, "crm_customer", frame)
        self.counts["customers with a won deal"] = int(has_won.sum())
        del self.customer_frame
        self.counts["opportunities"] = n  # the rows are written with their history (`_history`)

    def _deal_frames(self, entered_at: np.ndarray, version: np.ndarray) -> Iterator[pd.DataFrame]:
        """The deals' rows, CHUNK_DEALS at a time; entered_at and version come from their history."""
        epoch = date(1970, 1, 1).toordinal()
        reasons = np.array([*LOST_REASONS, ""], dtype=object)  # -1 (not lost) picks ""
        for a in range(0, self.deals, CHUNK_DEALS):
            b = min(a + CHUNK_DEALS, self.deals)
            final, rep, amount = self.deal_final[a:b], self.deal_rep[a:b], self.deal_amount[a:b]
            close_dates = (self.deal_close[a:b] - epoch).astype("datetime64[D]")
            frame = pd.DataFrame(
                {
                    "id": self.deal0 + np.arange(a, b),
                    "name": pd.Series(np.arange(a, b)).map("BigCo deal {}".format),
                    "customer_id": self.customer0 + self.deal_customer[a:b],
                    "owner_id": self.rep_user_ids[rep],
                    "region_id": self.rep_region[rep],
                    "pipeline_id": self.pipeline_id,
                    "stage_id": self.stage_ids[final],
                    "amount": amount,
                    "currency_id": self.currency,
                    "amount_company": amount,
                    "expected_close_date": pd.Series(close_dates),
                    "closed_on": pd.Series(np.where(self.deal_closed[a:b], close_dates, np.datetime64("NaT"))),
                    "probability": self.stage_prob[final],
                    "forecast_category": self.stage_forecast[final],
                    "lost_reason": reasons[self.deal_lost_reason[a:b]],
                    "created_at": pd.Series(self.deal_created_at[a:b]).dt.tz_localize("UTC"),
                }
            )
            for column in ("probability_reason", "next_step", "external_id"):
                frame[column] = ""
            frame["updated_at"] = self.now
            frame["stage_entered_at"] = pd.Series(entered_at[a:b].astype("datetime64[s]")).dt.tz_localize("UTC")
            frame["version"] = version[a:b]
            yield frame

    def _history(self) -> None:
        """Creation (-> Lead), forward moves up to the stage reached, some back-and-forth pairs, the close."""
        n, rng = self.deals, self.rng
        reached, final = self.reached, self.deal_final
        tail = (final >= WON).astype(np.int64)
        base = reached + tail
        eligible = reached >= 2
        lam = max(0.0, (HISTORY_PER_DEAL * n - base.sum()) / 2 / max(1, eligible.sum()))
        pairs = rng.poisson(lam, size=n) * eligible
        rows = base + 2 * pairs
        # Times: spread evenly from creation to the close (closed deals) or to now (open ones).
        created = self.deal_created_at.astype(np.int64)
        epoch = date(1970, 1, 1).toordinal()
        close_at = (self.deal_close - epoch) * 86400 + 17 * 3600
        now = int(self.now.timestamp()) - 3600
        end = np.where(self.deal_closed, np.maximum(close_at, created + 60), np.maximum(now, created + 60))
        denominator = np.where(self.deal_closed, np.maximum(rows - 1, 1), rows)
        span = end - created
        # A deal's stage was entered by its last change (j = rows - 1).
        entered_at = created + span * (rows - 1) // denominator
        self.counts["opportunities"] = _copy_big(
            self.cursor, "pipeline_opportunity", self._deal_frames(entered_at, rows)
        )
        del entered_at

        changed_by = self.rep_user_ids[self.deal_rep]

        def frames() -> Iterator[pd.DataFrame]:
            for a in range(0, n, CHUNK_DEALS):
                b = min(a + CHUNK_DEALS, n)
                count = rows[a:b]
                local = np.repeat(np.arange(b - a), count)
                deal = local + a
                starts = np.cumsum(count) - count
                j = np.arange(int(count.sum())) - starts[local]
                m, p = reached[deal], pairs[deal]
                order = np.where(
                    j < m, j + 1, np.where(j < m + 2 * p, np.where((j - m) % 2 == 0, m - 1, m), final[deal])
                )
                previous = np.concatenate([[0], order[:-1]])
                previous[j == 0] = 0
                at = created[deal] + span[deal] * j // denominator[deal]
                old_stage = pd.array(np.where(previous > 0, self.stage_ids[previous], 0), dtype="Int64")
                old_stage[previous == 0] = pd.NA
                yield pd.DataFrame(
                    {
                        "opportunity_id": self.deal0 + deal,
                        "field": "stage",
                        "old_value": self.stage_names[previous],
                        "new_value": self.stage_names[order],
                        "old_stage_id": old_stage,
                        "new_stage_id": self.stage_ids[order],
                        "reason": "",
                        "changed_by_id": changed_by[deal],
                        "changed_at": pd.Series(at.astype("datetime64[s]")).dt.tz_localize("UTC"),
                    }
                )

        self.counts["stage changes"] = _copy_big(self.cursor, "pipeline_opportunityhistory", frames())

    # --- the plan ----------------------------------------------------------------------------------

    def _leaf_cents(self) -> np.ndarray:
        """[rep, month, segment] targets in cents: last year's same month and segment + 15 %, at least 10,000."""
        won = self.deal_final == WON
        first = self.customer_first_won
        last = (
            won
            & (self.deal_close >= self.last_fy.start.toordinal())
            & (self.deal_close <= self.last_fy.end.toordinal())
        )
        days = self.deal_close[last]
        epoch = date(1970, 1, 1).toordinal()
        months = (days - epoch).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
        fiscal_month = (months - self.start_month) % 12
        segment = (first[self.deal_customer[last]] < days).astype(np.int64)  # 1: existing, 0: new
        history = np.zeros((self.reps, 12, 2), dtype=np.int64)
        np.add.at(history, (self.deal_rep[last], fiscal_month, segment), self.deal_amount[last])
        grown = np.round(history * float(GROWTH), -2).astype(np.int64)
        return np.maximum(grown, MIN_LEAF) * 100

    def _plan(self):
        from django.utils import timezone

        from targets.models import PlanStatus, TargetPlan
        from targets.planning.metrics import metric_ensure_defaults

        leaf_cents = self._leaf_cents()  # [rep, month, (new, existing)]
        metric = {m.code: m for m in metric_ensure_defaults()}["won_revenue"]
        total = int(leaf_cents.sum())
        plan = TargetPlan.objects.create(
            metric=metric,
            name=f"BigCo signed revenue {self.fy.key}",
            period_kind="year",
            period_key=self.fy.key,
            period_start=self.fy.start,
            period_end=self.fy.end,
            total=Decimal(total) / 100,
            status=PlanStatus.APPROVED,
            owner_id=self.director_id,
            created_by_id=self.director_id,
            approved_by_id=self.director_id,
            approved_at=timezone.now(),
            current_version=1,
        )
        regions = self.regions
        children: dict = {}
        for rid, parent in zip(regions["id"], regions["parent_id"], strict=True):
            children.setdefault(None if pd.isna(parent) else int(parent), []).append(int(rid))
        reps_of_team: dict = {}
        for i, team in enumerate(self.rep_region):
            reps_of_team.setdefault(int(team), []).append(i)
        rep_cents = leaf_cents.sum(axis=(1, 2))
        team_cents = {t: int(rep_cents[r].sum()) for t, r in reps_of_team.items()}

        def region_cents(rid: int) -> int:
            if rid in reps_of_team:
                return team_cents[rid]
            return sum(region_cents(c) for c in children.get(rid, ()))

        n_nodes = 1 + (len(regions) - 1) + self.reps * (1 + 12 + 24)
        node0 = _reserve(self.cursor, "targets_targetnode", n_nodes)
        year = (self.fy.kind, self.fy.key, self.fy.start, self.fy.end)
        ids = itertools.count(node0)  # ids in the order the rows come (depth first, as the paths sort)
        Rows = Iterator[tuple]

        def row(node_id, parent, path, depth, region, rep, segment, period, split, method, cents, owner) -> tuple:
            return (node_id, parent, path, depth, region, rep, segment, *period, split, method, cents, owner)

        def region_nodes(parent_id, parent_path, depth, rid, sibling) -> Rows:
            path = f"{parent_path}{sibling:04d}."
            manager = int(self.manager_of_region[rid])
            node = next(ids)
            if rid in reps_of_team:
                yield row(node, parent_id, path, depth, rid, None, "", year, "rep", "history", team_cents[rid], manager)
                for k, r in enumerate(reps_of_team[rid], start=1):
                    yield from rep_nodes(node, f"{path}{k:04d}.", depth + 1, rid, r)
                return
            cents = region_cents(rid)
            yield row(node, parent_id, path, depth, rid, None, "", year, "region", "history", cents, manager)
            for k, child in enumerate(children.get(rid, ()), start=1):
                yield from region_nodes(node, path, depth + 1, child, k)

        def rep_nodes(parent_id, path, depth, team, r) -> Rows:
            user = int(self.rep_user_ids[r])
            node = next(ids)
            yield row(node, parent_id, path, depth, team, user, "", year, "month", "history", int(rep_cents[r]), user)
            for m, month in enumerate(self.months):
                period = (month.kind, month.key, month.start, month.end)
                month_path = f"{path}{m + 1:04d}."
                cents = leaf_cents[r, m]
                month_node = next(ids)
                yield row(
                    month_node, node, month_path, depth + 1, team, user, "", period, "segment", "weights",
                    int(cents.sum()), user,
                )  # fmt: skip
                for k, (segment, c) in enumerate((("existing", cents[1]), ("new", cents[0])), start=1):
                    path_k = f"{month_path}{k:04d}."
                    yield row(
                        next(ids), month_node, path_k, depth + 2, team, user, segment, period, "", "", int(c), user
                    )

        def all_rows() -> Rows:
            company = children[None][0]
            root = next(ids)
            yield row(root, None, "0001.", 0, None, None, "", year, "region", "manual", total, self.director_id)
            for k, child in enumerate(children.get(company, ()), start=1):
                yield from region_nodes(root, "0001.", 1, child, k)

        columns = [
            "id",
            "parent_id",
            "path",
            "depth",
            "region_id",
            "rep_id",
            "segment",
            "period_kind",
            "period_key",
            "period_start",
            "period_end",
            "split_dimension",
            "split_method",
            "amount",
            "owner_id",
        ]
        leaves = 0

        def frames() -> Iterator[pd.DataFrame]:
            nonlocal leaves
            rows = all_rows()
            while batch := list(itertools.islice(rows, CHUNK_NODES)):
                frame = pd.DataFrame(batch, columns=columns)
                for column in ("parent_id", "region_id", "rep_id", "owner_id"):
                    frame[column] = frame[column].astype("Int64")
                frame["amount"] = frame["amount"].map(lambda c: f"{c // 100}.{c % 100:02d}")
                frame["plan_id"] = plan.pk
                frame["deadline"] = frame["period_end"]
                frame["version"] = 1
                frame["updated_at"] = self.now
                leaves += int((frame["split_dimension"] == "").sum())
                yield frame

        self.counts["target nodes"] = _copy_big(self.cursor, "targets_targetnode", frames())
        assert self.counts["target nodes"] == n_nodes, (self.counts["target nodes"], n_nodes)
        self.counts["target leaves"] = leaves
        # Version 1 of every node, as approval writes it.
        with _indexes_built_after(self.cursor, "targets_targetnodeamount"):
            self.cursor.execute(
                """
                INSERT INTO targets_targetnodeamount (plan_id, node_id, amount, version_from, version_to)
                SELECT plan_id, id, amount, 1, NULL FROM targets_targetnode WHERE plan_id = %s ORDER BY id
                """,
                [plan.pk],
            )
        return plan
