"""What the access matrix knows about each endpoint: the verbs it serves and which world object fills its path.

Every URL pattern of the site and every operation of the API schema must be listed here or in an exemption
with its reason (`test_matrix.test_every_*_is_classified`): an endpoint nobody classified fails the suite.

A page spec is (verbs, kind, kwargs): `verbs` the matrix's verbs (GET verbs: list, aggregate, export,
embedded, detail; POST verbs: create, update, delete), `kind` the world kind whose object of each relation
fills the path (None: no path parameter), `kwargs(obj, world)` the path parameters for that object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FLOW_BOXES = (
    "start",
    "new",
    "moved_in",
    "increased",
    "decreased",
    "won",
    "lost",
    "pushed_out",
    "moved_out",
    "category_in",
    "category_out",
    "end",
)
GET_VERBS = ("list", "aggregate", "export", "embedded", "detail")
WRITE_VERBS = ("create", "update", "delete")


@dataclass(frozen=True)
class Spec:
    verbs: tuple[str, ...]
    kind: str | None = None
    kwargs: Callable | None = None
    # Query strings each GET is also sent with (a page's views and drill-downs: kanban, xlsx, a flow box...).
    queries: tuple[dict, ...] = ({},)


def pk(obj, world):
    return {"pk": obj.pk}


def node_in_plan(obj, world):
    return {"pk": obj.plan_id, "node_pk": obj.pk}


def plan_pk(obj, world):
    return {"pk": obj.plan_id if hasattr(obj, "plan_id") else obj.pk}


PAGES: dict[str, Spec] = {
    "home": Spec(("aggregate", "embedded")),
    # crm
    "crm:customer_list": Spec(("list",)),
    "crm:customer_create": Spec(("create",)),
    "crm:customer_export_csv": Spec(("export",)),
    "crm:customer_export_xlsx": Spec(("export",)),
    "crm:customer_detail": Spec(("detail", "embedded"), "customer", pk),
    "crm:contact_add": Spec(("create",), "customer", pk),
    "crm:customer_rate": Spec(("update",), "customer", pk),
    "crm:pick_people": Spec(("list",)),
    "crm:pick_customers": Spec(("list",)),
    # pipeline
    "pipeline:mine": Spec(("list", "aggregate"), queries=({}, {"view": "kanban"}, {"status": "all"})),
    "pipeline:team": Spec(("list", "aggregate"), queries=({}, {"view": "kanban"}, {"status": "all"})),
    "pipeline:team_export_csv": Spec(("export",)),
    "pipeline:team_export_xlsx": Spec(("export",)),
    "pipeline:deal_create": Spec(("create",)),
    "pipeline:deal_detail": Spec(("detail", "embedded"), "deal", pk),
    "pipeline:deal_edit": Spec(("detail", "update"), "deal", pk),
    "pipeline:deal_move": Spec(("update",), "deal", pk),
    "pipeline:deal_inline": Spec(("detail", "update"), "deal", pk),
    "pipeline:deal_collection_add": Spec(("create",), "won", pk),
    "pipeline:deal_activity_add": Spec(("create",), "deal", pk),
    "pipeline:activity_new": Spec(("create",)),
    "pipeline:import_start": Spec(("list", "create")),
    "pipeline:import_detail": Spec(("detail",), "import", pk),
    "pipeline:import_mapping": Spec(("detail", "update"), "import", pk),
    "pipeline:import_preview": Spec(("detail", "update"), "import", pk),
    "pipeline:import_progress": Spec(("detail",), "import", pk),
    "pipeline:import_rejected": Spec(("export",), "import", pk),
    # targets: the editor
    "targets:plan_list": Spec(("list", "aggregate"), queries=({}, {"awaiting": "me"})),
    "targets:plan_create": Spec(("create",)),
    "targets:plan_detail": Spec(("detail", "embedded"), "plan", pk, queries=({}, {"show": "incomplete"})),
    "targets:plan_action": Spec(("update",), "plan", lambda o, w: {"pk": o.pk, "action": "submit"}),
    "targets:plan_grid": Spec(("detail", "aggregate"), "plan", pk),
    "targets:grid_cell": Spec(("update",), "node", node_in_plan),
    "targets:node_children": Spec(("embedded",), "node", node_in_plan),
    "targets:node_edit": Spec(("detail", "update"), "node", node_in_plan),
    "targets:node_split": Spec(("detail", "update"), "node", node_in_plan),
    # targets: my targets
    "targets:mine": Spec(("list", "aggregate")),
    "targets:node_commit": Spec(("update",), "node", pk),
    "targets:node_attainment": Spec(("detail", "aggregate"), "node", pk),
    "targets:node_commitments": Spec(("embedded",), "node", pk),
    "targets:node_reconcile": Spec(("update",), "node", pk),
    "targets:node_actions": Spec(("embedded", "create"), "node", pk),
    "targets:adjustment_propose": Spec(("detail", "create"), "node", pk),
    "targets:action_edit": Spec(("detail", "update"), "action", pk),
    "targets:action_status": Spec(("update",), "action", pk),
    "targets:adjustment_inbox": Spec(("list",)),
    "targets:adjustment_detail": Spec(("detail", "embedded"), "adjustment", pk),
    "targets:adjustment_approve": Spec(("update",), "adjustment", pk),
    "targets:adjustment_reject": Spec(("update",), "adjustment", pk),
    "targets:plan_versions": Spec(("detail", "embedded"), "plan", pk),
    "targets:people_changes": Spec(("detail", "update"), "plan", pk),
    "targets:plan_compare": Spec(("embedded",), "plan", pk),
    "targets:plan_export": Spec(("export",), "plan", pk),
    "targets:plan_import": Spec(("detail", "update"), "plan", pk),
    "targets:leaderboard": Spec(("aggregate",)),
    "targets:alert_list": Spec(("list",)),
    "targets:alert_action": Spec(("update",), "alert", lambda o, w: {"pk": o.pk, "action": "acknowledge"}),
    "targets:alert_rules": Spec(("list",)),
    "targets:alert_rule_edit": Spec(("detail", "update"), "rule", pk),
    "targets:alert_rules_defaults": Spec(("update",)),
    "targets:notification_list": Spec(("list",)),
    "targets:notification_read": Spec(("update",), "notification", pk),
    "targets:notification_read_all": Spec(("update",)),
    "targets:notification_settings": Spec(("detail", "update")),
    # coaching: the review
    "coaching:review": Spec(
        ("aggregate", "embedded", "export"), queries=({}, {"by": "rep"}, {"by": "region"}, {"format": "xlsx"})
    ),
    "coaching:flow": Spec(("aggregate",)),
    "coaching:flow_box": Spec(("embedded",), queries=tuple({"box": box} for box in FLOW_BOXES)),
    "coaching:at_risk": Spec(("list",)),
    "coaching:funnel": Spec(("aggregate",)),
    "coaching:drivers": Spec(("aggregate",)),
    "coaching:forecast": Spec(("aggregate", "list")),
    "coaching:forecast_submit": Spec(("create",)),
    "coaching:forecast_team_submit": Spec(("create",)),
    "coaching:meetings": Spec(("list",)),
    "coaching:meeting": Spec(("detail", "embedded"), "meeting", pk),
    "coaching:meeting_edit": Spec(("detail", "update"), "meeting", pk),
    "coaching:meeting_item_create": Spec(("create",), "meeting", pk),
    "coaching:meeting_item_status": Spec(("update",), "item", lambda o, w: {"pk": o.meeting_id, "item_pk": o.pk}),
    "coaching:meeting_hold": Spec(("update",), "meeting", pk),
    "coaching:meeting_print": Spec(("detail", "embedded"), "meeting", pk),
    "coaching:meeting_export": Spec(("export",), "meeting", pk),
    "coaching:coaching_sessions": Spec(("list",)),
    "coaching:coaching_session": Spec(("detail", "embedded"), "session", pk),
    "coaching:coaching_session_edit": Spec(("detail", "update"), "session", pk),
    "coaching:coaching_commitment_add": Spec(("create",), "session", pk),
    "coaching:coaching_follow_up": Spec(
        ("update",), "commitment", lambda o, w: {"pk": o.session_id, "commitment_pk": o.pk}
    ),
    "coaching:coaching_acknowledge": Spec(("update",), "session", pk),
    "coaching:coaching_session_print": Spec(("detail", "embedded"), "session", pk),
    "coaching:project_reviews": Spec(("list",)),
    "coaching:project_review": Spec(("detail", "embedded"), "review", pk),
    "coaching:project_review_edit": Spec(("detail", "update"), "review", pk),
    "coaching:project_entry_save": Spec(
        ("update",), "review", lambda o, w: {"pk": o.pk, "deal_pk": o.entries.get().opportunity_id}
    ),
    "coaching:project_decision_add": Spec(
        ("create",), "review", lambda o, w: {"pk": o.pk, "deal_pk": o.entries.get().opportunity_id}
    ),
    "coaching:project_review_hold": Spec(("update",), "review", pk),
    "coaching:project_review_export": Spec(("export",), "review", pk),
    "coaching:scorecard": Spec(("aggregate",)),
    "coaching:scorecard_config": Spec(("detail", "update")),
    "coaching:scorecard_export": Spec(("export",)),
}

# Pages outside the matrix, each with its reason.
PAGE_EXEMPT = {
    "healthz": "liveness probe: no data, no user",
    "set_language": "i18n: sets a cookie, no data",
    "login": "authentication itself",
    "logout": "authentication itself",
    "password_change": "the user's own password (Django's auth views)",
    "password_change_done": "a static confirmation",
    "password_reset": "anonymous by design (Django's auth views)",
    "password_reset_done": "a static confirmation",
    "password_reset_confirm": "token-checked by Django's auth views",
    "password_reset_complete": "a static confirmation",
    "schema": "the API's description, no data",
    "api-docs": "Swagger UI page, no data",
    "api-not-found": "the JSON 404 of any other path under /api/: no data",
}
# Whole URL prefixes outside the matrix.
PREFIX_EXEMPT = {
    "admin/": "Django admin: staff only, covered by tests/*/test_admin.py",
    "api/": "the API: classified operation by operation from the OpenAPI schema below",
    "static/": "static files",
    "media/": "uploaded files are served by no URL of the app",
}


# --- the API ------------------------------------------------------------------------------------------------
# (method, path) -> (verb, kind). Kind None: a collection or an aggregate (leak-checked per role).
API: dict[tuple[str, str], tuple[str, str | None]] = {}


def _api(path: str, kind: str | None, *ops: tuple[str, str]) -> None:
    for method, verb in ops:
        API[(method, path)] = (verb, kind)


_api("/api/action-plans/", None, ("get", "list"), ("post", "create"))
_api("/api/action-plans/{id}/", "action", ("get", "detail"), ("patch", "update"))
_api("/api/activities/", None, ("get", "list"), ("post", "create"))
_api("/api/alert-rules/", None, ("get", "list"))
_api("/api/alert-rules/{id}/", "rule", ("get", "detail"), ("patch", "update"))
_api("/api/alerts/", None, ("get", "list"))
_api("/api/alerts/{id}/", "alert", ("get", "detail"))
_api("/api/alerts/{id}/acknowledge/", "alert", ("post", "update"))
_api("/api/alerts/{id}/resolve/", "alert", ("post", "update"))
_api("/api/attainment/", None, ("get", "aggregate"))
_api("/api/attainment/by-dimension/", None, ("get", "aggregate"))
_api("/api/attainment/history/", None, ("get", "aggregate"))
_api("/api/collections/", None, ("get", "list"), ("post", "create"))
_api("/api/customers/", None, ("get", "list"), ("post", "create"))
_api("/api/customers/{id}/", "customer", ("get", "detail"), ("put", "update"), ("patch", "update"))
_api("/api/customers/{id}/contacts/", "customer", ("post", "create"))
_api("/api/customers/{id}/rate/", "customer", ("post", "update"))
_api("/api/exchange-rates/", None, ("get", "list"))
_api("/api/exchange-rates/{id}/", "public", ("get", "detail"))
_api("/api/notifications/", None, ("get", "list"))
_api("/api/notifications/{id}/read/", "notification", ("post", "update"))
_api("/api/notifications/read-all/", None, ("post", "update"))
_api("/api/notifications/unread-count/", None, ("get", "aggregate"))
_api("/api/opportunities/", None, ("get", "list"), ("post", "create"))
_api("/api/opportunities/{id}/", "deal", ("get", "detail"), ("patch", "update"))
_api("/api/opportunities/{id}/history/", "deal", ("get", "embedded"))
_api("/api/opportunities/{id}/move-stage/", "deal", ("post", "update"))
_api("/api/opportunities/totals/", None, ("get", "aggregate"))
_api("/api/metrics/", None, ("get", "list"))
_api("/api/metrics/{id}/", "public", ("get", "detail"))
_api("/api/pipelines/", None, ("get", "list"))
_api("/api/pipelines/{id}/", "public", ("get", "detail"))
_api("/api/product-lines/", None, ("get", "list"), ("post", "create"))
_api("/api/product-lines/{id}/", "public", ("get", "detail"), ("put", "update"), ("patch", "update"))
_api("/api/products/", None, ("get", "list"), ("post", "create"))
_api("/api/products/{id}/", "public", ("get", "detail"), ("put", "update"), ("patch", "update"))
_api("/api/regions/", None, ("get", "list"))
_api("/api/regions/{id}/", "public", ("get", "detail"))
_api("/api/review/action-items/", None, ("get", "list"), ("post", "create"))
_api("/api/review/action-items/{id}/", "item", ("get", "detail"), ("patch", "update"))
_api("/api/review/coaching-sessions/", None, ("get", "list"), ("post", "create"))
_api("/api/review/coaching-sessions/{id}/", "session", ("get", "detail"), ("patch", "update"))
_api("/api/review/coaching-sessions/{id}/acknowledge/", "session", ("post", "update"))
_api("/api/review/coaching-sessions/{id}/follow-up/", "session", ("post", "update"))
_api("/api/review/commitments/", None, ("get", "list"), ("post", "create"))
_api("/api/review/commitments/{id}/", "commitment", ("get", "detail"))
_api("/api/review/drivers/", None, ("get", "aggregate"))
_api("/api/review/flow/", None, ("get", "aggregate"))
_api("/api/review/forecasts/", None, ("get", "list"), ("post", "create"))
_api("/api/review/forecasts/{id}/", "forecast", ("get", "detail"))
_api("/api/review/forecasts/accuracy/", None, ("get", "aggregate"))
_api("/api/review/forecasts/prefill/", None, ("get", "aggregate"))
_api("/api/review/forecasts/rollup/", None, ("get", "aggregate"))
_api("/api/review/funnel/", None, ("get", "aggregate"))
_api("/api/review/meetings/", None, ("get", "list"), ("post", "create"))
_api("/api/review/meetings/{id}/", "meeting", ("get", "detail"), ("patch", "update"))
_api("/api/review/meetings/{id}/hold/", "meeting", ("post", "update"))
_api("/api/review/scorecard/", None, ("get", "aggregate"))
_api("/api/review/scorecard/config/", None, ("get", "detail"), ("put", "update"))
_api("/api/review/win-rates/", None, ("get", "aggregate"))
_api("/api/target-adjustments/", None, ("get", "list"), ("post", "create"))
_api("/api/target-adjustments/{id}/", "adjustment", ("get", "detail"))
_api("/api/target-adjustments/{id}/approve/", "adjustment", ("post", "update"))
_api("/api/target-adjustments/{id}/reject/", "adjustment", ("post", "update"))
_api("/api/target-nodes/", None, ("get", "list"))
_api("/api/target-nodes/{id}/", "node", ("get", "detail"), ("patch", "update"))
_api("/api/target-nodes/{id}/children/", "node", ("get", "embedded"))
_api("/api/target-nodes/{id}/commit/", "node", ("post", "update"))
_api("/api/target-nodes/{id}/levels/", "node", ("post", "update"))
_api("/api/target-nodes/{id}/split/", "node", ("post", "update"))
_api("/api/target-nodes/{id}/split-leaves/", "node", ("post", "update"))
_api("/api/target-nodes/{id}/split-leaves-preview/", "node", ("post", "embedded"))
_api("/api/target-nodes/{id}/split-preview/", "node", ("post", "embedded"))
_api("/api/target-plans/", None, ("get", "list"), ("post", "create"))
_api("/api/target-plans/{id}/", "plan", ("get", "detail"))
_api("/api/target-plans/{id}/approve/", "plan", ("post", "update"))
_api("/api/target-plans/{id}/approvers/", "plan", ("get", "embedded"))
_api("/api/target-plans/{id}/diff/", "plan", ("get", "embedded"))
_api("/api/target-plans/{id}/return/", "plan", ("post", "update"))
_api("/api/target-plans/{id}/submit/", "plan", ("post", "update"))
_api("/api/target-plans/{id}/versions/", "plan", ("get", "embedded"))
_api("/api/users/", None, ("get", "list"))
_api("/api/users/{id}/", "user", ("get", "detail"))
_api("/api/users/me/", None, ("get", "detail"))

API_EXEMPT = {
    ("post", "/api/auth/token/"): "authentication itself (username and password in, the caller's own token out)",
}
