"""The access matrix's world: a company with two areas, each with teams, a director, a manager per team and
reps, and for every kind of object one object per owner, each named with a marker ("LEAK-<kind>-<tag>") that
must never show in a response to someone outside the object's scope.

Owners are tagged with three letters (no tag is the prefix of another, so no marker is a prefix of another):

    HQ (company)            dir  director
      East (area)           mea  area manager
        Shanghai (team)     msh  team manager; rsh, rs2 reps
        Jiangsu (team)      mjs  team manager; rjs rep
      North (area)          mno  area manager
        Beijing (team)      mbj  team manager; rbj rep
    (no region)             adm  admin

The acting roles and what each relation means for them are in `ROLES`; which roles see which owner's object,
derived from the README's *Data scopes* by hand (never from `crm.scopes`), in `expected_visible`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.files.base import ContentFile

from crm.models import CompanySettings, Role
from crm.services import contact_create, customer_create, ensure_company_currency
from tests.factories import UserFactory, make_deal, make_region

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TODAY = NOW.date()
MONDAY = TODAY - timedelta(days=TODAY.weekday())

# Owners of objects (every kind has at most one object per owner).
OWNERS = ("dir", "msh", "rsh", "rs2", "rjs", "rbj")

RELATIONS = ("own", "subordinate", "peer", "other_region")

# role -> (acting user's tag, relation -> owner tag). A rep has no subordinate: his "subordinate" relation is a
# teammate (same team, same manager), which he must not see either.
ROLES: dict[str, tuple[str, dict[str, str]]] = {
    "admin": ("adm", {"own": "dir", "subordinate": "rsh", "peer": "rjs", "other_region": "rbj"}),
    "director": ("dir", {"own": "dir", "subordinate": "msh", "peer": "rjs", "other_region": "rbj"}),
    "manager": ("msh", {"own": "msh", "subordinate": "rsh", "peer": "rjs", "other_region": "rbj"}),
    "rep": ("rsh", {"own": "rsh", "subordinate": "rs2", "peer": "rjs", "other_region": "rbj"}),
}

# Who sees the rows of an owner, by the default scopes (rep: self; manager: his team's tree; director, admin: all).
SCOPE_OWNERS = {
    "admin": set(OWNERS),
    "director": set(OWNERS),
    "manager": {"msh", "rsh", "rs2"},
    "rep": {"rsh"},
}

# Kinds only their owner sees (an import job is its uploader's, a notification its recipient's).
PRIVATE_KINDS = {"import", "notification"}
# Kinds reps never see (a team's meetings and project reviews, plan adjustments).
MANAGERS_ONLY_KINDS = {"meeting", "review", "adjustment", "plan"}


def expected_visible(kind: str, role: str, owner: str) -> bool:
    """Whether `role` may see the `kind` object of `owner` (read the scope rules, not the code)."""
    acting, _relations = ROLES[role]
    if kind in PRIVATE_KINDS:
        return owner == acting
    if kind in MANAGERS_ONLY_KINDS and role == "rep":
        return False
    if kind == "rule":
        return role in ("admin", "director")  # alert rules: the company's settings
    if kind == "session" and role == "rep":
        return owner == acting  # a rep sees the sessions where he is the coached rep
    return owner in SCOPE_OWNERS[role]


def marker(kind: str, owner: str) -> str:
    return f"LEAK-{kind}-{owner}"


@dataclass
class World:
    users: dict[str, object]
    regions: dict[str, object]
    # kind -> owner tag -> object
    objects: dict[str, dict[str, object]] = field(default_factory=dict)
    company_plan: object = None
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, kind: str, owner: str, obj) -> None:
        self.objects.setdefault(kind, {})[owner] = obj

    def get(self, kind: str, owner: str):
        return self.objects.get(kind, {}).get(owner)

    def markers(self) -> dict[str, tuple[str, str]]:
        """Every marker placed in the world -> (kind, owner)."""
        return {
            marker(kind, owner): (kind, owner)
            for kind, by_owner in self.objects.items()
            if kind in MARKED_KINDS
            for owner in by_owner
        }


# The kinds whose objects carry a marker in a text field shown on pages and exports.
MARKED_KINDS = {
    "customer",
    "contact",
    "deal",
    "won",
    "xdeal",
    "xact",
    "activity",
    "collection",
    "plan",
    "action",
    "adjustment",
    "meeting",
    "item",
    "session",
    "commitment",
    "review",
    "forecast",
    "import",
}


def build_world() -> World:  # noqa: PLR0915 (one object of each kind per owner, in the order they depend)
    from coaching.models import (
        ActionItem,
        CoachingSession,
        Commitment,
        ForecastLevel,
        ForecastSubmission,
        Meeting,
        ProjectReview,
        ProjectReviewEntry,
    )
    from pipeline.models import Activity, ImportJob
    from pipeline.services import collection_create, pipeline_ensure_default
    from targets.models import (
        ActionPlan,
        AdjustmentRequest,
        Alert,
        AlertRule,
        Notification,
        NotificationTopic,
        TargetNode,
        TargetPlan,
    )
    from targets.services import metric_ensure_defaults, plan_create, target_split

    CompanySettings.load()
    ensure_company_currency()
    pipeline = pipeline_ensure_default()
    stages = list(pipeline.stages.order_by("order"))
    won_stage = next(s for s in stages if s.is_won)
    metrics = {m.code: m for m in metric_ensure_defaults()}

    hq = make_region("HQ", "HQ", kind="company")
    east = make_region("East", "EAST", parent=hq, kind="area")
    north = make_region("North", "NORTH", parent=hq, kind="area")
    sh = make_region("Shanghai", "SH", parent=east, kind="province")
    js = make_region("Jiangsu", "JS", parent=east, kind="province")
    bj = make_region("Beijing", "BJ", parent=north, kind="province")
    regions = {"HQ": hq, "EAST": east, "NORTH": north, "SH": sh, "JS": js, "BJ": bj}

    def user(tag, role, region, **kw):
        return UserFactory(username=f"u_{tag}", first_name=tag, role=role, region=region, **kw)

    users = {
        "adm": user("adm", Role.ADMIN, None, is_staff=True, is_superuser=True),
        "dir": user("dir", Role.DIRECTOR, hq),
        "mea": user("mea", Role.MANAGER, east),
        "msh": user("msh", Role.MANAGER, sh),
        "rsh": user("rsh", Role.REP, sh),
        "rs2": user("rs2", Role.REP, sh),
        "mjs": user("mjs", Role.MANAGER, js),
        "rjs": user("rjs", Role.REP, js),
        "mno": user("mno", Role.MANAGER, north),
        "mbj": user("mbj", Role.MANAGER, bj),
        "rbj": user("rbj", Role.REP, bj),
    }
    for region, tag in ((east, "mea"), (sh, "msh"), (js, "mjs"), (north, "mno"), (bj, "mbj")):
        region.manager = users[tag]
        region.save(update_fields=["manager"])
    manager_of = {"rsh": "msh", "rs2": "msh", "rjs": "mjs", "rbj": "mbj", "msh": "mea", "dir": "dir"}

    world = World(users=users, regions=regions)
    director = users["dir"]

    # --- crm and pipeline -------------------------------------------------------------------------------
    for tag in OWNERS:
        owner = users[tag]
        region = owner.region
        customer = customer_create(name=marker("customer", tag), region=region, owner=owner, actor=owner)
        world.add("customer", tag, customer)
        world.add("contact", tag, contact_create(customer=customer, name=marker("contact", tag), actor=owner))
        deal = make_deal(
            owner=owner,
            customer=customer,
            name=marker("deal", tag),
            amount="1000",
            close=date(2026, 6, 30),
            stage=stages[0],
            forecast_category="commit",
            next_step=f"call {tag}",
        )
        world.add("deal", tag, deal)
        won = make_deal(
            owner=owner,
            customer=customer,
            name=marker("won", tag),
            amount="5000",
            close=date(2026, 6, 5),
            stage=won_stage,
        )
        world.add("won", tag, won)
        world.add(
            "collection",
            tag,
            collection_create(
                opportunity=won,
                received_on=date(2026, 6, 10),
                amount=Decimal("100"),
                note=marker("collection", tag),
                actor=owner,
            ),
        )
        world.add(
            "activity",
            tag,
            Activity.objects.create(
                customer=customer,
                opportunity=deal,
                owner=owner,
                kind="visit",
                date=TODAY,
                notes=marker("activity", tag),
            ),
        )
        job = ImportJob(kind="customers", original_name=f"{marker('import', tag)}.csv", created_by=owner)
        job.file.save(f"access-{tag}.csv", ContentFile(b"name,region,owner\r\n"), save=False)
        job.save()
        world.add("import", tag, job)

    # Embedded rows: another region's rep sells to the Shanghai rep's customer (a deal and a visit of his own). The
    # customer's page, API row and exports are the Shanghai rep's to see; those rows are not.
    shared = world.get("customer", "rsh")
    cross = make_deal(owner=users["rbj"], customer=shared, name=marker("xdeal", "rbj"), amount="700", stage=stages[0])
    world.add("xdeal", "rbj", cross)
    world.add(
        "xact",
        "rbj",
        Activity.objects.create(
            customer=shared, opportunity=cross, owner=users["rbj"], kind="call", date=TODAY, notes=marker("xact", "rbj")
        ),
    )

    # --- targets ------------------------------------------------------------------------------------------
    plan = plan_create(
        metric=metrics["won_revenue"], period_key="FY2026", total=Decimal("1200000"), owner=director, actor=director
    )
    plan.name = "Company plan"
    plan.save(update_fields=["name"])
    world.company_plan = plan
    root = plan.nodes.get(parent=None)
    areas = {
        n.region_id: n for n in target_split(node=root, dimension="region", method="equal", actor=director).children
    }
    teams = {
        n.region_id: n
        for n in target_split(node=areas[east.pk], dimension="region", method="equal", actor=director).children
    }
    teams.update(
        {
            n.region_id: n
            for n in target_split(node=areas[north.pk], dimension="region", method="equal", actor=director).children
        }
    )
    nodes = {"dir": root, "msh": teams[sh.pk]}
    for team, tags in ((sh, ("rsh", "rs2")), (js, ("rjs",)), (bj, ("rbj",))):
        parent = teams[team.pk]
        result = target_split(
            node=parent, dimension="rep", method="equal", members=[users[t] for t in tags], actor=director
        )
        for child in result.children:
            nodes[next(t for t in tags if users[t].pk == child.rep_id)] = child
    TargetNode.objects.filter(pk=teams[sh.pk].pk).update(owner=users["msh"])
    for tag, node in nodes.items():
        world.add("node", tag, TargetNode.objects.get(pk=node.pk))
    TargetPlan.objects.filter(pk=plan.pk).update(status="approved")

    # One plan per team, named with its marker (the collections metric: one plan per metric, period and region).
    for tag, region, owner in (("msh", sh, "msh"), ("rjs", js, "mjs"), ("rbj", bj, "mbj")):
        team_plan = plan_create(
            metric=metrics["collections"],
            period_key="FY2026",
            total=Decimal("1000"),
            region=region,
            owner=users[owner],
            name=marker("plan", tag),
            actor=director,
        )
        TargetPlan.objects.filter(pk=team_plan.pk).update(status="approved")
        world.add("plan", tag, TargetPlan.objects.get(pk=team_plan.pk))
        world.add(
            "adjustment",
            tag,
            AdjustmentRequest.objects.create(
                plan=team_plan,
                kind="reallocation",
                reason=marker("adjustment", tag),
                changes=[],
                proposer=users[owner],
                based_on_version=1,
            ),
        )
    rule = AlertRule.objects.create(kind="pace_gap", severity="warning")
    for tag in OWNERS:
        world.add("rule", tag, rule)  # one rule, the company's: only directors and admins see or change it
        world.add("user", tag, users[tag])
    for tag in OWNERS:
        node = world.get("node", tag)
        world.add(
            "action",
            tag,
            ActionPlan.objects.create(
                node=node,
                activity=marker("action", tag),
                owner=users[tag],
                due_date=date(2026, 9, 30),
                created_by=director,
            ),
        )
        alert = Alert.objects.create(
            rule=rule,
            severity="warning",
            owner=users[tag],
            owner_manager=users[manager_of[tag]],
            node=node,
            subject_key=f"node:{node.pk}",
            period_key="FY2026",
            params={},
        )
        world.add("alert", tag, alert)
        world.add(
            "notification",
            tag,
            Notification.objects.create(recipient=users[tag], topic=NotificationTopic.ALERT, alert=alert),
        )

    # --- coaching -------------------------------------------------------------------------------------------
    for tag in OWNERS:
        owner = users[tag]
        team = owner.region
        world.add(
            "forecast",
            tag,
            ForecastSubmission.objects.create(
                level=ForecastLevel.REP if owner.role == Role.REP else ForecastLevel.TEAM,
                owner=owner,
                region=team,
                period_key="FY2026-M06",
                period_start=date(2026, 6, 1),
                period_end=date(2026, 6, 30),
                week=MONDAY,
                commit=Decimal("1000"),
                best_case=Decimal("2000"),
                won=Decimal("0"),
                deals_commit=Decimal("1000"),
                deals_best_case=Decimal("1000"),
                note=marker("forecast", tag),
                submitted_by=owner,
                submitted_at=NOW,
            ),
        )
    # Meetings and project reviews are a team's: one per team, tagged by a member of it.
    for tag, team, host in (("msh", sh, "msh"), ("rjs", js, "mjs"), ("rbj", bj, "mbj"), ("dir", hq, "dir")):
        meeting = Meeting.objects.create(
            region=team, week=MONDAY, title=marker("meeting", tag), agenda="", created_by=users[host]
        )
        world.add("meeting", tag, meeting)
        review = ProjectReview.objects.create(
            region=team, date=TODAY, title=marker("review", tag), created_by=users[host]
        )
        world.add("review", tag, review)
        ProjectReviewEntry.objects.create(review=review, opportunity=world.get("deal", tag))
    for tag in OWNERS:
        team_tag = {"rs2": "msh", "rsh": "msh"}.get(tag, tag)
        meeting = world.get("meeting", team_tag)
        world.add(
            "item",
            tag,
            ActionItem.objects.create(
                region=meeting.region,
                meeting=meeting,
                what=marker("item", tag),
                owner=users[tag],
                due_date=date(2026, 6, 30),
                created_by=meeting.created_by,
            ),
        )
    # 1:1 sessions are the coached rep's (and his coach's): one per rep.
    for tag in ("rsh", "rs2", "rjs", "rbj"):
        rep = users[tag]
        session = CoachingSession.objects.create(
            manager=users[manager_of[tag]],
            rep=rep,
            region=rep.region,
            date=TODAY,
            focus_kind="skill",
            focus=marker("session", tag),
            created_by=users[manager_of[tag]],
        )
        world.add("session", tag, session)
        world.add(
            "commitment",
            tag,
            Commitment.objects.create(
                session=session, rep=rep, what=marker("commitment", tag), due_date=date(2026, 6, 30)
            ),
        )
    return world
