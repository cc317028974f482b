"""STAND-IN for the review (issue 13, built in another branch): only the fixed interface the meeting and the
forecast call use. The lead replaces this file with the real one at merge; nothing else belongs here.

`build_review(user, *, region, week)` -> `Review`; `Review.to_snapshot()` (JSON-safe) and
`Review.from_snapshot(data)`; the template `coaching/review/_body.html` renders a `Review`.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from crm.models import Region, User
from targets.attainment.selectors import attainment_of
from targets.models import PlanStatus
from targets.planning.selectors import nodes_visible_to

HEADLINE_KEYS = (
    "metric",
    "metric_name",
    "target",
    "actual",
    "attainment_pct",
    "time_progress_pct",
    "gap",
    "weighted_pipeline",
    "coverage",
    "forecast_run_rate",
)
ROW_KEYS = (
    "key",
    "name",
    "target",
    "actual",
    "attainment_pct",
    "time_progress_pct",
    "gap",
    "pipeline",
    "coverage",
    "win_rate",
    "activities",
    "alerts",
)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class Review:
    region: dict
    week: date
    headline: list[dict]
    rows: list[dict]

    def to_snapshot(self) -> dict:
        return {
            "region": dict(self.region),
            "week": self.week.isoformat(),
            "headline": [{k: row.get(k) for k in HEADLINE_KEYS} for row in self.headline],
            "rows": [{k: row.get(k) for k in ROW_KEYS} for row in self.rows],
        }

    @classmethod
    def from_snapshot(cls, data: dict) -> Review:
        return cls(
            region=dict(data["region"]),
            week=date.fromisoformat(data["week"]),
            headline=[dict(row) for row in data["headline"]],
            rows=[dict(row) for row in data["rows"]],
        )


def build_review(user: User, *, region: Region, week: date) -> Review:
    nodes = list(
        nodes_visible_to(user)
        .filter(
            plan__status=PlanStatus.APPROVED,
            plan__period_start__lte=week,
            plan__period_end__gte=week,
            region=region,
            rep__isnull=True,
            product_line__isnull=True,
            product__isnull=True,
            segment="",
        )
        .select_related("plan__metric")
        .order_by("plan__metric__code", "depth")
    )
    figures = attainment_of(nodes)
    headline = []
    seen = set()
    for node in nodes:
        if node.plan.metric_id in seen or node.period_key != node.plan.period_key:
            continue
        seen.add(node.plan.metric_id)
        att = figures.get(node.pk)
        headline.append(
            {
                "metric": node.plan.metric.code,
                "metric_name": node.plan.metric.name,
                "target": _text(node.amount),
                "actual": _text(att and att.actual),
                "attainment_pct": _text(att and att.attainment_pct),
                "time_progress_pct": _text(att and att.time_progress_pct),
                "gap": _text(att and att.derived.gap),
                "weighted_pipeline": _text(att and getattr(att.snapshot, "weighted_pipeline", None)),
                "coverage": _text(att and att.derived.coverage),
                "forecast_run_rate": _text(att and att.derived.run_rate_forecast),
            }
        )
    return Review(region={"id": region.pk, "name": region.name}, week=week, headline=headline, rows=[])
