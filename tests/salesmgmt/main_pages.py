"""The pages of the main flows, as the demo's users see them (the CSP tests load each and look at what it runs)."""

from html.parser import HTMLParser

from django.urls import reverse

from coaching.models import Meeting
from crm.models import User
from targets.models import AttainmentSnapshot, PlanStatus, TargetNode, TargetPlan

REP, MANAGER = "rep_sh1", "mgr_east"


def main_pages() -> list[tuple[str | None, str, bool]]:
    """(username or None for anonymous, URL, has a chart) for each page, read from the demo's data."""
    rep, manager = User.objects.get(username=REP), User.objects.get(username=MANAGER)
    snapshot = (
        AttainmentSnapshot.objects.filter(node__rep=rep, node__plan__status=PlanStatus.APPROVED)
        .order_by("node__period_start", "node_id")
        .first()
    )
    team_node = (
        TargetNode.objects.filter(plan__status=PlanStatus.APPROVED, rep=None, children__rep=rep)
        .order_by("period_start", "pk")
        .first()
    )
    plan = TargetPlan.objects.filter(status=PlanStatus.APPROVED).order_by("pk").first()
    meeting = Meeting.objects.filter(region=manager.region).order_by("-pk").first()
    assert snapshot and team_node and plan and meeting
    tracked = snapshot.node
    return [
        (None, reverse("login"), False),
        (None, reverse("password_reset"), False),
        (REP, reverse("home"), False),
        (REP, reverse("targets:mine"), False),
        (REP, reverse("targets:node_attainment", args=[tracked.pk]), True),
        (REP, reverse("pipeline:mine"), False),
        (REP, reverse("coaching:forecast"), False),
        (MANAGER, reverse("home"), False),
        (MANAGER, reverse("coaching:review"), True),
        (MANAGER, reverse("targets:mine"), False),
        (MANAGER, reverse("targets:adjustment_propose", args=[team_node.pk]), False),
        (MANAGER, reverse("targets:plan_detail", args=[plan.pk]), False),
        (MANAGER, reverse("targets:plan_grid", args=[plan.pk]), False),
        (MANAGER, reverse("pipeline:team"), False),
        (MANAGER, reverse("coaching:forecast"), False),  # no accuracy chart: the demo has no past calls
        (MANAGER, reverse("coaching:flow"), True),
        (MANAGER, reverse("coaching:funnel"), True),
        (MANAGER, reverse("coaching:drivers"), True),
        (MANAGER, reverse("coaching:meeting", args=[meeting.pk]), True),
    ]


class ScriptAudit(HTMLParser):
    """What a page would run besides its script files: inline <script>s, on* handler attributes, htmx's hx-on
    attributes (evaluated code), javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.inline: list[str] = []
        self.script_tags = 0

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "script":
            self.script_tags += 1
            if not found.get("src"):
                self.inline.append(self.get_starttag_text() or tag)
        for name, value in attrs:
            if name.startswith("on") or name.startswith("hx-on") or name.startswith("data-hx-on"):
                self.inline.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.inline.append(f"<{tag} {name}={value!r}>")


def inline_code(html: str) -> list[str]:
    audit = ScriptAudit()
    audit.feed(html)
    return audit.inline
