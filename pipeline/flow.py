"""The pipeline flow (管道变化) of a period between two dates, and the deals at risk.

The open pipeline of a period at an instant t
    The deals the user may see (the credited team, `Opportunity.region`, as `deals_visible`; narrowed to a
    region's subtree when one is chosen) that at t existed (created before t), were open (their stage at t is
    neither won nor lost), had an expected close date at t inside [period_start, period_end] and were owned at t
    by someone in the scope. Each is valued at its amount in the company currency at t and grouped by its
    forecast category at t.

The state of a deal at t
    Read from `OpportunityHistory` (one row per change: old -> new as text, written by `pipeline.services`):
    the value of a field at t is the `old_value` of its first change at or after t, else its current value
    (`stage` rows carry `old_stage`; `owner` rows the user ids; `amount` rows the amount in the deal's own
    currency; `expected_close_date` rows ISO dates, '' for none; `forecast_category` rows the category, written
    by a stage move too). A deal exists from `created_at` (its creation is a `stage` row with an empty old value).
    Its company-currency value at t is the stored `amount_company` when neither its amount, its currency nor its
    close date changed since t, else its amount at t converted at the rate of its close date at t (the rule
    `pipeline.services` converts by), half up to the cent. An amount or close-date change of a foreign-currency
    deal can so move its value by the exchange rate: that shows as an amount change.

    The scope at t: while the deal's owner at t is its owner now, the deal is in scope when the user sees it now
    (its credited team); under an earlier owner, when that owner is one of the people of the scope (the user,
    and the active members of the teams his scope covers, as they are now: `crm.scopes.visible_users`). Team
    moves of people are not in the history: a rep who changed team counts, for his own deals, where his deals
    count today.

The window is [date_from 00:00, date_to + 1 day 00:00) in the current time zone: t0 is the start of date_from,
t1 the end of date_to; a change at t0 is in the window. Every deal moves along one chain, so the flow balances
to the cent: start + new + moved in + amount increased − amount decreased − won − lost − pushed out − moved to
another owner = end, overall and per forecast category (with moved into / out of a category, which net to zero).

- In the pipeline at t0 and at t1: its value change (t1 − t0) is an amount increase or decrease, charged to its
  category at t0; when its category changed, it moves out of the t0 category into the t1 category at its t1 value.
- In at t0, out at t1: first its value change (to its value at t1, the amount it left at), then its exit at that
  value, both in its t0 category. The exit is, in this order: won, lost (its stage at t1), pushed out (its close
  date at t1 is outside the period, or none), moved to another owner (its owner at t1 is out of scope).
- Out at t0, in at t1: new (created in the window), at its t1 value; or moved in / pulled in (it existed: its
  close date or owner moved it into the period's pipeline, or it was reopened) at its t0 value, then its value
  change; both in its t1 category.
- Out at both, but won or lost in the window with a close day in the period, in scope at t1 and open (or not yet
  created) at t0: new or moved in, then won or lost, at its t1 value (moved in: at its t0 value, then the value
  change), in its t0 category (a new deal: its t1 category, closed or omitted).
- Deals that passed through the period's pipeline inside the window and left it again by t1 (pulled in and
  pushed out within the week) are not shown: the flow compares the two instants.

The figures come from a handful of queries whatever the number of deals: the deals untouched since t0 (no
tracked change at or after t0: their state is their current one) are added up in one grouped query; the others
(found through the history's indexes, see `_changed_since`) have their history since t0 read once, ranked per
deal and field by a window function to find each field's first change at or after t0 and t1, and are
classified and added up in SQL, in one query; one more query lists each box's biggest deals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Round
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from crm.models import CompanySettings, DataScope, ExchangeRate, Region, User
from crm.scopes import region_subtree, scope_q, visible_users
from pipeline.models import OPEN, Activity, ForecastCategory, Opportunity, OpportunityHistory, Stage
from pipeline.selectors import stuck_in_stage
from salesmgmt.lib import periods
from salesmgmt.lib.money import ZERO

# The history fields the flow reads. A change of any of them at or after t0 makes a deal "touched".
FLOW_FIELDS = ("stage", "amount", "currency", "expected_close_date", "owner", "forecast_category")

START, END = "start", "end"
NEW, MOVED_IN, INCREASED = "new", "moved_in", "increased"
DECREASED, WON, LOST, PUSHED_OUT, MOVED_OUT = "decreased", "won", "lost", "pushed_out", "moved_out"
CATEGORY_IN, CATEGORY_OUT = "category_in", "category_out"
INFLOWS = (NEW, MOVED_IN, INCREASED)
OUTFLOWS = (DECREASED, WON, LOST, PUSHED_OUT, MOVED_OUT)
BUCKETS = (*INFLOWS, *OUTFLOWS)
# Every box a page may drill into: the two ends, the buckets and the category moves.
BOXES = (START, *BUCKETS, CATEGORY_IN, CATEGORY_OUT, END)

LABELS: dict[str, Promise] = {
    START: _("Open pipeline at the start"),
    NEW: _("New"),
    MOVED_IN: _("Moved in (pulled in)"),
    INCREASED: _("Amount increased"),
    DECREASED: _("Amount decreased"),
    WON: _("Won"),
    LOST: _("Lost"),
    PUSHED_OUT: _("Pushed out (slipped)"),
    MOVED_OUT: _("Moved to another owner"),
    CATEGORY_IN: _("Moved into the category"),
    CATEGORY_OUT: _("Moved out of the category"),
    END: _("Open pipeline at the end"),
}

# The order categories are shown in: the forecast's own order, closed and omitted last.
CATEGORY_ORDER = (
    ForecastCategory.COMMIT,
    ForecastCategory.BEST_CASE,
    ForecastCategory.PIPELINE,
    ForecastCategory.OMITTED,
    ForecastCategory.CLOSED,
)

# How many deals each box of a `Flow` carries (its biggest); `flow_deals` lists a whole box page by page.
DEALS_PER_BOX = 50


def _category_label(value: str) -> str:
    return str(dict(ForecastCategory.choices).get(value, value))


def window_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The instants of a window of days: the start of `date_from` and the end of `date_to` (local time)."""
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(date_from, time.min, tzinfo=tz),
        datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz),
    )


DEFAULT_WINDOW_DAYS = 7


def flow_window(
    *,
    today: date,
    date_from: date | None = None,
    date_to: date | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> dict[str, date]:
    """The window and period of a flow with the defaults filled in: the window ends today and starts a week
    before its end; the period is the current fiscal quarter. An inverted pair falls back to its default."""
    quarter = CompanySettings.load().period_of(today, periods.QUARTER)
    date_to = date_to or today
    date_from = date_from or date_to - timedelta(days=DEFAULT_WINDOW_DAYS)
    if date_from > date_to:
        date_from = date_to - timedelta(days=DEFAULT_WINDOW_DAYS)
    period_start = period_start or quarter.start
    period_end = period_end or quarter.end
    if period_start > period_end:
        period_start, period_end = quarter.start, quarter.end
    return {"date_from": date_from, "date_to": date_to, "period_start": period_start, "period_end": period_end}


def cents_to_money(cents: int | None) -> Decimal:
    return Decimal(int(cents or 0)).scaleb(-2)


# --- what the flow returns -------------------------------------------------------------------------


@dataclass
class DealChange:
    """One deal of a box and what changed between t0 and t1 (old -> new; old is None for a new deal)."""

    deal_id: int
    name: str
    customer: str
    editable: bool  # the user sees the deal now (not so once it moved to an owner out of the scope)
    entry: str | None  # NEW / MOVED_IN / None
    exit: str | None  # WON / LOST / PUSHED_OUT / MOVED_OUT / None
    value: tuple[Decimal | None, Decimal]  # company currency at t0 (None: not yet created) and at t1
    stage: tuple[str | None, str]
    close_date: tuple[date | None, date | None]
    owner: tuple[str | None, str]
    category: tuple[str | None, str]
    in_start: bool
    in_end: bool
    flow_category: str  # the category the deal's buckets are charged to
    version: int = 0

    @property
    def delta(self) -> Decimal:
        old, new = self.value
        return ZERO if old is None or self.entry == NEW else new - old

    @property
    def entry_label(self) -> str:
        return str(LABELS[self.entry]) if self.entry else ""

    @property
    def exit_label(self) -> str:
        return str(LABELS[self.exit]) if self.exit else ""

    @property
    def category_labels(self) -> tuple[str | None, str]:
        old, new = self.category
        return (None if old is None else _category_label(old), _category_label(new))

    def changed(self) -> list[tuple[str, Any, Any]]:
        """The fields that differ between t0 and t1, as (field, old, new)."""
        pairs = {
            "stage": self.stage,
            "amount": self.value,
            "close_date": self.close_date,
            "owner": self.owner,
            "category": self.category,
        }
        return [(name, old, new) for name, (old, new) in pairs.items() if old != new]


@dataclass
class Box:
    """A box of the flow: its total and deal count, per category too, and its biggest deals."""

    key: str
    total: Decimal = ZERO
    count: int = 0
    by_category: dict[str, Decimal] = field(default_factory=dict)
    count_by_category: dict[str, int] = field(default_factory=dict)
    deals: list[DealChange] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(LABELS[self.key])

    @property
    def sign(self) -> int:
        """+1 for what adds to the pipeline (and the two ends), −1 for what takes away."""
        return -1 if self.key in (*OUTFLOWS, CATEGORY_OUT) else 1

    def add(self, category: str, cents: int, count: int) -> None:
        amount = cents_to_money(cents)
        self.total += amount
        self.count += count
        self.by_category[category] = self.by_category.get(category, ZERO) + amount
        self.count_by_category[category] = self.count_by_category.get(category, 0) + count


@dataclass
class Flow:
    period_start: date
    period_end: date
    date_from: date
    date_to: date
    region: Region | None
    boxes: dict[str, Box]

    @property
    def start(self) -> Box:
        return self.boxes[START]

    @property
    def end(self) -> Box:
        return self.boxes[END]

    @property
    def buckets(self) -> list[Box]:
        return [self.boxes[k] for k in BUCKETS]

    @property
    def categories(self) -> list[str]:
        """The categories any box has money or deals in, in the forecast's order."""
        seen = {c for box in self.boxes.values() for c in box.count_by_category}
        return [c for c in CATEGORY_ORDER if c in seen] + sorted(seen - set(CATEGORY_ORDER))

    def computed_end(self, category: str | None = None) -> Decimal:
        """start + inflows − outflows (+ category moves for one category): equals `end` to the cent."""

        def of(box: Box) -> Decimal:
            return box.total if category is None else box.by_category.get(category, ZERO)

        total = of(self.start) + sum((of(self.boxes[k]) for k in INFLOWS), ZERO)
        total -= sum((of(self.boxes[k]) for k in OUTFLOWS), ZERO)
        if category is not None:
            total += of(self.boxes[CATEGORY_IN]) - of(self.boxes[CATEGORY_OUT])
        return total


# --- scope ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowScope:
    """Who the flow is for: the deals seen now (`visible`, the door of `deals_visible`), and the people whose
    deals count under an earlier owner (`owners`; None: everyone, a company-wide view)."""

    visible: Q
    owners: QuerySet[User] | None
    everything: bool

    @classmethod
    def of(cls, user: User, region: Region | None = None) -> FlowScope:
        visible = scope_q(user, owner="owner", region="region", team_only=True)
        owners = visible_users(user)
        everything = user.effective_scope == DataScope.ALL and region is None
        if region is not None:
            subtree = region_subtree(region)
            visible &= Q(region__in=subtree)
            owners = owners.filter(region__in=subtree)
        return cls(visible=visible, owners=None if everything else owners, everything=everything)

    def deals(self) -> QuerySet[Opportunity]:
        return Opportunity.objects.filter(self.visible)

    def visible_expression(self) -> ExpressionWrapper | Value:
        if self.everything:
            return Value(True, output_field=BooleanField())
        return ExpressionWrapper(self.visible, output_field=BooleanField())


# --- SQL -----------------------------------------------------------------------------------------


def _changed_since(t0: datetime) -> Q:
    """The deal has a tracked change at or after t0. An EXISTS, so the planner picks per scope: a team's few
    deals each probe the history's (opportunity, field, changed_at) index; the whole company's deals are
    matched against the window's rows read through its (field, changed_at) index."""
    return Q(
        Exists(OpportunityHistory.objects.filter(opportunity=OuterRef("pk"), field__in=FLOW_FIELDS, changed_at__gte=t0))
    )


def _candidates(scope: FlowScope, t0: datetime) -> Q:
    """The deals the flow reads one by one: touched since t0, and either seen now or, since t0, taken from an
    owner of the scope (they left it: the user saw them then)."""
    touched = _changed_since(t0)
    if scope.owners is None:
        return touched & scope.visible
    owner_ids = scope.owners.annotate(pk_text=Cast("pk", CharField())).values("pk_text")
    # Read first (one small query: the window's reassignments): a subquery in the OR would hide from the
    # planner how few deals a team has, and it would read the whole window's history to find them.
    taken = set(
        OpportunityHistory.objects.filter(field="owner", changed_at__gte=t0, old_value__in=Subquery(owner_ids))
        .order_by()
        .values_list("opportunity_id", flat=True)
    )
    return touched & (scope.visible | Q(pk__in=sorted(taken))) if taken else touched & scope.visible


# The deal's own columns, under names of their own (the derived table's columns are these and the history's).
_DEAL_COLUMNS: tuple[str, ...] = ("o_id", "o_owner", "o_created", "o_stage", "o_amount", "o_currency", "o_ecd")
_DEAL_COLUMNS += ("o_cat", "o_ac", "o_version", "o_vis")
# The state's parts read from the history: (column suffix, history field, history column).
_HISTORY_PARTS = (
    ("stage", "stage", "hs"),
    ("amount", "amount", "hv"),
    ("currency", "currency", "hv"),
    ("ecd", "expected_close_date", "hv"),
    ("owner", "owner", "hv"),
    ("cat", "forecast_category", "hv"),
)


def _inner(scope: FlowScope, where: Q, t0: datetime, t1: datetime) -> tuple[str, list[Any]]:
    """The CTEs `c` (the candidate deals with their current columns) and `s` (the same with, per instant, the
    `old_value` of each field's first change at or after it: NULL for none). The history since t0 of the
    candidates is read once and ranked per deal and field (a window function), not looked up field by field."""
    deals = (
        Opportunity.objects.filter(where)
        .order_by()
        .annotate(
            o_id=F("pk"),
            o_owner=F("owner_id"),
            o_created=F("created_at"),
            o_stage=F("stage_id"),
            o_amount=F("amount"),
            o_currency=F("currency_id"),
            o_ecd=F("expected_close_date"),
            o_cat=F("forecast_category"),
            o_ac=F("amount_company"),
            o_version=F("version"),
            o_vis=scope.visible_expression(),
        )
        .values(*_DEAL_COLUMNS)
    )
    deals_sql, deals_params = deals.query.sql_with_params()
    ops = connection.ops
    at0, at1 = ops.adapt_datetimefield_value(t0), ops.adapt_datetimefield_value(t1)
    table = OpportunityHistory._meta.db_table
    fields = ", ".join(f"'{name}'" for name in FLOW_FIELDS)
    columns = []
    column_params: list[Any] = []
    for suffix, name, value in _HISTORY_PARTS:
        columns.append(f"MAX(CASE WHEN hf = '{name}' AND r0 = 1 THEN {value} END) AS h0_{suffix}")
    for suffix, name, value in _HISTORY_PARTS:
        columns.append(f"MAX(CASE WHEN hf = '{name}' AND ht >= %s AND r1 = 1 THEN {value} END) AS h1_{suffix}")
        column_params.append(at1)
    mat = _materialized()
    sql = (
        f"c AS {mat}({deals_sql}), "
        "h AS (SELECT x.opportunity_id AS hid, x.field AS hf, x.old_value AS hv, x.old_stage_id AS hs, "
        "x.changed_at AS ht, "
        "ROW_NUMBER() OVER (PARTITION BY x.opportunity_id, x.field ORDER BY x.changed_at, x.id) AS r0, "
        "ROW_NUMBER() OVER (PARTITION BY x.opportunity_id, x.field, CASE WHEN x.changed_at >= %s THEN 1 ELSE 0 END "
        "ORDER BY x.changed_at, x.id) AS r1 "
        f"FROM {table} x WHERE x.field IN ({fields}) AND x.changed_at >= %s "
        "AND x.opportunity_id IN (SELECT c.o_id FROM c)), "
        f"hh AS (SELECT hid, {', '.join(columns)} FROM h GROUP BY hid), "
        f"s AS {mat}(SELECT c.*, hh.* FROM c LEFT JOIN hh ON hh.hid = c.o_id)"
    )
    return sql, [*deals_params, at1, at0, *column_params]


class _Sql:
    """Builds the classifying query: text and parameters in step."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, text: str, *params: Any) -> _Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    def text(self) -> str:
        return "".join(self.parts)


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _materialized() -> str:
    # Each deal's history lookups run once: PostgreSQL would otherwise inline the CTE and run them again for
    # every expression that reads them.
    return "MATERIALIZED " if _pg() else ""


def _date(expr: str) -> str:
    # SQLite keeps dates as ISO text (as the history does); PostgreSQL casts.
    return f"CAST(NULLIF({expr}, '') AS DATE)" if _pg() else f"NULLIF({expr}, '')"


def _cents(expr: str) -> str:
    return f"CAST(ROUND(({expr}) * 100) AS BIGINT)"


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(int(i)) for i in ids) or "-1"  # never NULL: `x NOT IN (NULL)` is never true


@dataclass(frozen=True)
class _Stages:
    won: list[int]
    lost: list[int]
    names: dict[int, str]

    @classmethod
    def load(cls) -> _Stages:
        won, lost, names = [], [], {}
        for stage in Stage.objects.all():
            names[stage.pk] = stage.display_name
            if stage.is_won:
                won.append(stage.pk)
            if stage.is_lost:
                lost.append(stage.pk)
        return cls(won=won, lost=lost, names=names)


def _classified(
    scope: FlowScope,
    where: Q,
    *,
    t0: datetime,
    t1: datetime,
    period: tuple[date, date],
    stages: _Stages,
    company_currency: str,
) -> _Sql:
    """SELECT id, entry, exit, sgn, fcat, c0, c1, v0, v1, p0, p1, and the states at t0 and t1, of the candidate
    deals (see the module's rules)."""
    ops = connection.ops
    inner_sql, inner_params = _inner(scope, where, t0, t1)
    rate_table = ExchangeRate._meta.db_table
    q = _Sql()
    # 1. the state at each instant
    states = []
    state_params: list[Any] = []
    for i, t in enumerate((t0, t1)):
        states.append(
            f"CASE WHEN s.o_created < %s THEN 1 ELSE 0 END AS ex{i}, "
            f"COALESCE(s.h{i}_stage, s.o_stage) AS stage{i}, "
            f"COALESCE(CAST(NULLIF(s.h{i}_amount, '') AS NUMERIC), s.o_amount) AS amount{i}, "
            f"COALESCE(s.h{i}_currency, s.o_currency) AS currency{i}, "
            f"CASE WHEN s.h{i}_ecd IS NULL THEN s.o_ecd ELSE {_date(f's.h{i}_ecd')} END AS ecd{i}, "
            f"COALESCE(CAST(NULLIF(s.h{i}_owner, '') AS INTEGER), s.o_owner) AS owner{i}, "
            f"COALESCE(s.h{i}_cat, s.o_cat) AS c{i}, "
            f"CASE WHEN s.h{i}_amount IS NULL AND s.h{i}_currency IS NULL AND s.h{i}_ecd IS NULL "
            f"THEN 1 ELSE 0 END AS keep{i}"
        )
        state_params.append(ops.adapt_datetimefield_value(t))
    q.add(
        "WITH "
        + inner_sql
        + ", st AS (SELECT s.o_id, s.o_owner, s.o_ac, s.o_vis, s.o_version, "
        + ", ".join(states)
        + " FROM s), ",
        *inner_params,
        *state_params,
    )
    # 2. flags and values at each instant
    closed = _ids([*stages.won, *stages.lost])
    owners_sql, owners_params = "", ()
    if scope.owners is not None:
        owners_sql, owners_params = scope.owners.order_by().values("pk").query.sql_with_params()
    flags = []
    flag_params: list[Any] = []
    start, end = ops.adapt_datefield_value(period[0]), ops.adapt_datefield_value(period[1])
    for i in (0, 1):
        rate = (
            f"(SELECT r.rate FROM {rate_table} r WHERE r.currency_id = st.currency{i} AND r.valid_from <= st.ecd{i} "
            "ORDER BY r.valid_from DESC LIMIT 1)"
        )
        converted = (
            f"CASE WHEN st.currency{i} = %s THEN {_cents(f'st.amount{i}')} "
            f"ELSE COALESCE({_cents(f'st.amount{i} * {rate}')}, {_cents('st.o_ac')}) END"
        )
        if scope.owners is None:
            in_scope = "1 = 1"
        else:
            in_scope = (
                f"(st.owner{i} = st.o_owner AND st.o_vis) "
                f"OR (st.owner{i} <> st.o_owner AND st.owner{i} IN ({owners_sql}))"
            )
        flags.append(
            f"CASE WHEN st.keep{i} = 1 THEN {_cents('st.o_ac')} ELSE {converted} END AS v{i}, "
            f"CASE WHEN st.stage{i} IN ({_ids(stages.won)}) THEN 1 ELSE 0 END AS won{i}, "
            f"CASE WHEN st.stage{i} IN ({_ids(stages.lost)}) THEN 1 ELSE 0 END AS lost{i}, "
            f"CASE WHEN st.ecd{i} >= %s AND st.ecd{i} <= %s THEN 1 ELSE 0 END AS inper{i}, "
            f"CASE WHEN {in_scope} THEN 1 ELSE 0 END AS scope{i}, "
            f"CASE WHEN st.ex{i} = 1 AND st.stage{i} NOT IN ({closed}) AND st.ecd{i} >= %s AND st.ecd{i} <= %s "
            f"AND ({in_scope}) THEN 1 ELSE 0 END AS p{i}"
        )
        flag_params += [company_currency, start, end, *owners_params, start, end, *owners_params]
    q.add(
        "fl AS (SELECT st.*, " + ", ".join(flags) + " FROM st), ",
        *flag_params,
    )
    # 3. the chain each deal moves along
    through = (
        "fl.p0 = 0 AND fl.p1 = 0 AND (fl.won1 = 1 OR fl.lost1 = 1) AND fl.inper1 = 1 AND fl.scope1 = 1 "
        "AND (fl.ex0 = 0 OR (fl.won0 = 0 AND fl.lost0 = 0)) AND fl.ex1 = 1"
    )
    entry = (
        f"CASE WHEN fl.p0 = 0 AND (fl.p1 = 1 OR ({through})) "
        f"THEN CASE WHEN fl.ex0 = 1 THEN '{MOVED_IN}' ELSE '{NEW}' END END"
    )
    exit_ = (
        f"CASE WHEN (fl.p0 = 1 AND fl.p1 = 0) OR ({through}) THEN "
        f"CASE WHEN fl.won1 = 1 THEN '{WON}' WHEN fl.lost1 = 1 THEN '{LOST}' "
        f"WHEN fl.inper1 = 0 THEN '{PUSHED_OUT}' ELSE '{MOVED_OUT}' END END"
    )
    q.add(
        f"cl AS (SELECT fl.*, {entry} AS entry, {exit_} AS exit_to, "
        # the value before the chain: a new deal enters at its t1 value
        "CASE WHEN fl.ex0 = 1 THEN fl.v0 ELSE fl.v1 END AS vin "
        "FROM fl), "
        "fc AS (SELECT cl.*, "
        f"CASE WHEN cl.entry = '{NEW}' OR (cl.entry = '{MOVED_IN}' AND cl.exit_to IS NULL) THEN cl.c1 ELSE cl.c0 END "
        "AS fcat, "
        "CASE WHEN cl.v1 > cl.vin THEN 1 WHEN cl.v1 < cl.vin THEN -1 ELSE 0 END AS sgn "
        "FROM cl WHERE cl.p0 = 1 OR cl.p1 = 1 OR cl.entry IS NOT NULL) "
    )
    return q


def _company_currency() -> str:
    return CompanySettings.load().currency


# --- the flow ------------------------------------------------------------------------------------


def _untouched_by_category(scope: FlowScope, t0: datetime, period: tuple[date, date]) -> list[dict[str, Any]]:
    """The deals in the period's pipeline now that nothing changed since t0: in it at t0 and at t1 alike."""
    rows = (
        scope.deals()
        .filter(OPEN, expected_close_date__range=period, created_at__lt=t0)
        .exclude(_changed_since(t0))
        .order_by()
        .values("forecast_category")
        .annotate(n=Count("pk"), cents=Sum(Cast(Round(F("amount_company") * 100), BigIntegerField())))
    )
    return [dict(row) for row in rows]


def pipeline_flow(
    user: User,
    *,
    period_start: date,
    period_end: date,
    date_from: date,
    date_to: date,
    region: Region | None = None,
    deals_per_box: int = DEALS_PER_BOX,
) -> Flow:
    """The flow of the period's open pipeline from the start of `date_from` to the end of `date_to`, for what
    `user` may see (narrowed to `region`'s subtree). Each box carries its `deals_per_box` biggest deals."""
    t0, t1 = window_bounds(date_from, date_to)
    period = (period_start, period_end)
    scope = FlowScope.of(user, region)
    stages = _Stages.load()
    currency = _company_currency()
    boxes = {key: Box(key) for key in BOXES}
    for row in _untouched_by_category(scope, t0, period):
        for key in (START, END):
            boxes[key].add(row["forecast_category"], row["cents"] or 0, row["n"])

    candidates = _candidates(scope, t0)
    q = _classified(
        scope,
        candidates,
        t0=t0,
        t1=t1,
        period=period,
        stages=stages,
        company_currency=currency,
    )
    q.add(
        "SELECT p0, p1, entry, exit_to, fcat, c0, c1, sgn, COUNT(*), SUM(v0), SUM(v1), SUM(vin) FROM fc "
        "GROUP BY p0, p1, entry, exit_to, fcat, c0, c1, sgn"
    )
    with connection.cursor() as cursor:
        cursor.execute(q.text(), q.params)
        rows = cursor.fetchall()
    for p0, p1, entry, exit_to, fcat, c0, c1, sgn, n, v0, v1, vin in rows:
        v0, v1, vin = int(v0 or 0), int(v1 or 0), int(vin or 0)
        if p0:
            boxes[START].add(c0, v0, n)
        if p1:
            boxes[END].add(c1, v1, n)
        if entry:
            boxes[entry].add(fcat, vin, n)
        if sgn > 0:
            boxes[INCREASED].add(fcat, v1 - vin, n)
        elif sgn < 0:
            boxes[DECREASED].add(fcat, vin - v1, n)
        if exit_to:
            boxes[exit_to].add(fcat, v1, n)
        if p0 and p1 and c0 != c1:
            boxes[CATEGORY_OUT].add(c0, v1, n)
            boxes[CATEGORY_IN].add(c1, v1, n)
    flow = Flow(
        period_start=period_start,
        period_end=period_end,
        date_from=date_from,
        date_to=date_to,
        region=region,
        boxes=boxes,
    )
    if deals_per_box:
        for change, keys in _box_deals(scope, candidates, t0, t1, period, stages, currency, limit=deals_per_box):
            for key in keys:
                boxes[key].deals.append(change)
    return flow


def _box_condition(box: str, category: str | None) -> tuple[str, list[Any]]:
    """SQL condition (over `fc`) of the deals of one box, optionally of one category."""
    cat = "fcat"
    if box == START:
        cond, cat = "p0 = 1", "c0"
    elif box == END:
        cond, cat = "p1 = 1", "c1"
    elif box in (NEW, MOVED_IN):
        cond = f"entry = '{box}'"
    elif box == INCREASED:
        cond = "sgn > 0"
    elif box == DECREASED:
        cond = "sgn < 0"
    elif box in (WON, LOST, PUSHED_OUT, MOVED_OUT):
        cond = f"exit_to = '{box}'"
    elif box == CATEGORY_OUT:
        cond, cat = "p0 = 1 AND p1 = 1 AND c0 <> c1", "c0"
    elif box == CATEGORY_IN:
        cond, cat = "p0 = 1 AND p1 = 1 AND c0 <> c1", "c1"
    else:
        raise ValueError(f"no such box: {box}")
    if category is None:
        return cond, []
    return f"{cond} AND {cat} = %s", [category]


_ROW_COLUMNS = (
    "o_id, o_vis, o_version, entry, exit_to, fcat, c0, c1, v0, v1, vin, p0, p1, ex0, stage0, stage1, ecd0, ecd1, "
    "owner0, owner1"
)


def _changes(rows: list[tuple], stages: _Stages) -> list[DealChange]:
    """DealChange objects of rows of `_ROW_COLUMNS`, with names from two small queries (deals, owners)."""
    ids = [r[0] for r in rows]
    deals = {d["pk"]: d for d in Opportunity.objects.filter(pk__in=ids).values("pk", "name", "customer__name")}
    owner_ids = {int(r[k]) for r in rows for k in (18, 19) if r[k] is not None}
    owners = {u.pk: str(u) for u in User.objects.filter(pk__in=owner_ids)}
    out = []
    for r in rows:
        (pk, vis, version, entry, exit_to, fcat, c0, c1, v0, v1, vin, p0, p1, ex0, s0, s1, e0, e1, o0, o1) = r
        existed = bool(ex0)
        deal = deals.get(pk, {"name": "", "customer__name": ""})
        out.append(
            DealChange(
                deal_id=pk,
                name=deal["name"],
                customer=deal["customer__name"] or "",
                editable=bool(vis),
                entry=entry,
                exit=exit_to,
                value=(cents_to_money(v0) if existed else None, cents_to_money(v1)),
                stage=(stages.names.get(s0, "") if existed else None, stages.names.get(s1, "")),
                close_date=(_as_date(e0) if existed else None, _as_date(e1)),
                owner=(owners.get(int(o0), "") if existed else None, owners.get(int(o1), "")),
                category=(c0 if existed else None, c1),
                in_start=bool(p0),
                in_end=bool(p1),
                flow_category=fcat,
                version=int(version),
            )
        )
    return out


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _box_deals(
    scope: FlowScope,
    candidates: Q,
    t0: datetime,
    t1: datetime,
    period: tuple[date, date],
    stages: _Stages,
    currency: str,
    *,
    limit: int,
) -> list[tuple[DealChange, list[str]]]:
    """The `limit` biggest deals of every box but the two ends, from one query (a window per box)."""
    q = _classified(
        scope,
        candidates,
        t0=t0,
        t1=t1,
        period=period,
        stages=stages,
        company_currency=currency,
    )
    size = "CASE WHEN v1 > vin THEN v1 ELSE vin END DESC, o_id"
    windows = {
        "entry": "entry",
        "exit": "exit_to",
        "delta": "sgn",
        "cat": "CASE WHEN p0 = 1 AND p1 = 1 AND c0 <> c1 THEN 1 ELSE 0 END",
    }
    ranks = ", ".join(
        f"ROW_NUMBER() OVER (PARTITION BY {expr} ORDER BY {size}) AS rn_{k}" for k, expr in windows.items()
    )
    q.add(
        f", rk AS (SELECT fc.*, {ranks} FROM fc) SELECT {_ROW_COLUMNS}, rn_entry, rn_exit, rn_delta, rn_cat FROM rk "
        "WHERE (entry IS NOT NULL AND rn_entry <= %s) OR (exit_to IS NOT NULL AND rn_exit <= %s) "
        "OR (sgn <> 0 AND rn_delta <= %s) OR (p0 = 1 AND p1 = 1 AND c0 <> c1 AND rn_cat <= %s) "
        f"ORDER BY {size}",
        limit,
        limit,
        limit,
        limit,
    )
    with connection.cursor() as cursor:
        cursor.execute(q.text(), q.params)
        rows = cursor.fetchall()
    changes = _changes([r[:20] for r in rows], stages)
    out = []
    for change, r in zip(changes, rows, strict=True):
        rn_entry, rn_exit, rn_delta, rn_cat = r[20:]
        keys = []
        if change.entry and rn_entry <= limit:
            keys.append(change.entry)
        if change.delta and rn_delta <= limit:
            keys.append(INCREASED if change.delta > 0 else DECREASED)
        if change.exit and rn_exit <= limit:
            keys.append(change.exit)
        if change.in_start and change.in_end and change.category[0] != change.category[1] and rn_cat <= limit:
            keys += [CATEGORY_OUT, CATEGORY_IN]
        out.append((change, keys))
    return out


def flow_deals(
    user: User,
    *,
    box: str,
    period_start: date,
    period_end: date,
    date_from: date,
    date_to: date,
    region: Region | None = None,
    category: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DealChange]:
    """One box's deals (optionally of one forecast category), biggest first, `limit` from `offset`: the
    drill-down of a flow's box. The two ends include the deals untouched since t0."""
    if box not in BOXES:
        raise ValueError(f"no such box: {box}")
    t0, t1 = window_bounds(date_from, date_to)
    period = (period_start, period_end)
    scope = FlowScope.of(user, region)
    where = _candidates(scope, t0)
    if box in (START, END):
        where |= Q(scope.visible, OPEN, expected_close_date__range=period)
    stages = _Stages.load()
    q = _classified(scope, where, t0=t0, t1=t1, period=period, stages=stages, company_currency=_company_currency())
    cond, params = _box_condition(box, category)
    value = {START: "v0", END: "v1"}.get(box, "CASE WHEN v1 > vin THEN v1 ELSE vin END")
    q.add(
        f"SELECT {_ROW_COLUMNS} FROM fc WHERE {cond} ORDER BY {value} DESC, o_id LIMIT %s OFFSET %s",
        *params,
        limit,
        offset,
    )
    with connection.cursor() as cursor:
        cursor.execute(q.text(), q.params)
        rows = cursor.fetchall()
    return _changes(rows, stages)


# --- at-risk deals -------------------------------------------------------------------------------

STUCK, OVERDUE, IDLE, MOVED_BACK = "stuck", "overdue", "idle", "moved_back"
RISK_LABELS: dict[str, Promise] = {
    STUCK: _("Stuck beyond the stage's expected days"),
    OVERDUE: _("Close date passed"),
    IDLE: _("No activity"),
    MOVED_BACK: _("Big deal moved back a stage"),
}
IDLE_DAYS = 21
MOVED_BACK_DAYS = 14
BIG_DEAL_AMOUNT = Decimal("100000")


def at_risk_deals(
    user: User,
    *,
    today: date,
    region: Region | None = None,
    idle_days: int = IDLE_DAYS,
    moved_back_days: int = MOVED_BACK_DAYS,
    big_deal_amount: Decimal = BIG_DEAL_AMOUNT,
) -> QuerySet[Opportunity]:
    """The open deals the user sees (narrowed to `region`'s subtree) that are at risk, each annotated with one
    flag per reason (`risk_stuck`, `risk_overdue`, `risk_idle`, `risk_moved_back`; `risk_reasons(deal)` names
    them): stuck in their stage beyond its expected days (since `stage_entered_at`), close date before `today`,
    no activity on the deal in the last `idle_days` days (and older than that), or worth `big_deal_amount` or
    more and moved back a stage in the last `moved_back_days` days. Soonest close date first. One query."""
    now = datetime.combine(today + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone())
    stuck = stuck_in_stage(now)
    idle_since = today - timedelta(days=idle_days)
    recent_activity = Activity.objects.filter(opportunity=OuterRef("pk"), date__gt=idle_since)
    idle = Q(created_at__lt=now - timedelta(days=idle_days)) & ~Q(Exists(recent_activity))
    backwards = OpportunityHistory.objects.filter(
        opportunity=OuterRef("pk"),
        field="stage",
        changed_at__gte=now - timedelta(days=moved_back_days),
        new_stage__order__lt=F("old_stage__order"),
    )
    moved_back = Q(Exists(backwards), amount_company__gte=big_deal_amount)
    overdue = Q(expected_close_date__lt=today)
    qs = Opportunity.objects.visible_to(user).filter(OPEN)
    if region is not None:
        qs = qs.filter(region__in=region_subtree(region))
    flags: dict[str, Q] = {
        "risk_stuck": stuck,
        "risk_overdue": overdue,
        "risk_idle": idle,
        "risk_moved_back": moved_back,
    }
    return (
        qs.annotate(**{name: ExpressionWrapper(cond, output_field=BooleanField()) for name, cond in flags.items()})
        .filter(stuck | overdue | idle | moved_back)
        .select_related("stage", "customer", "owner", "region", "pipeline")
        .order_by("expected_close_date", "id")
    )


def risk_reasons(deal: Opportunity) -> list[str]:
    """The reason keys of a deal from `at_risk_deals` (its annotations)."""
    return [key for key in (STUCK, OVERDUE, IDLE, MOVED_BACK) if getattr(deal, f"risk_{key}", False)]


def risk_counts(deals: QuerySet[Opportunity]) -> dict[str, int]:
    """How many deals of `at_risk_deals` have each reason (and `all`), in one aggregate query."""
    row = deals.order_by().aggregate(
        all=Count("pk"), **{key: Count("pk", filter=Q(**{f"risk_{key}": True})) for key in RISK_LABELS}
    )
    return {key: int(value or 0) for key, value in row.items()}
