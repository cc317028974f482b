"""Target demo data on top of the built-in demo company (`seed_demo`). Idempotent.

- This fiscal year's signed revenue for the whole company (director): last year's results plus 15 %, split
  by area, by province, by rep, by quarter and by month through the services, each by last year's results
  (seasonality, mix and each rep's share kept), with owners and deadlines complete, submitted by the director and
  approved by someone above him in the chain (another director, else the admin: nobody approves what he
  submitted); an approved reallocation in the North (version 2: proposed by its manager, approved by the
  director) and a pending one in the East for the director's inbox;
  a few action plans (行动计划) under the reps' targets.
- Next fiscal year's signed revenue for the East area (mgr_east), still a draft: Shanghai split to its reps who
  have made their bottom-up commitments (自下而上), Jiangsu split by product line with one part
  nobody is responsible for yet (so the editor shows an incomplete leaf).
"""

from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from crm.models import Customer, Region, Tier, User
from pipeline.models import Opportunity
from salesmgmt.lib import periods
from targets.models import Dimension, PlanStatus, SplitMethod, TargetNode, TargetPlan
from targets.planning.approval_chain import plan_approvers
from targets.planning.rules import fiscal_start
from targets.services import (
    action_plan_create,
    adjustment_approve,
    adjustment_propose,
    metric_ensure_defaults,
    node_commit,
    plan_approve,
    plan_create,
    plan_submit,
    target_split,
    target_split_leaves,
)

GROWTH = Decimal("1.15")  # the company plans 15% over last year
AREA_GROWTH = Decimal("1.12")  # the East manager's draft for next year: 12 % over the last twelve months
FALLBACK_TOTAL = Decimal("12000000")
FALLBACK_AREA_TOTAL = Decimal("9000000")


def _thousands(amount: Decimal) -> Decimal:
    return (amount / 1000).to_integral_value() * 1000


class Command(BaseCommand):
    help = "Load demo target plans, adjustments, action plans and commitments (run seed_demo first; idempotent)."

    def handle(self, *args, **options):
        if not Region.objects.filter(code="HQ").exists():
            raise CommandError("Load the demo company first: manage.py seed_demo")
        self.users = {u.username: u for u in User.objects.filter(is_active=True)}
        missing = {"director", "mgr_east", "mgr_north", "rep_sh1", "rep_sh2", "rep_bj1", "rep_bj2"} - set(self.users)
        if missing:
            raise CommandError(f"These demo users are missing: {', '.join(sorted(missing))}. Run seed_demo.")
        self.metric = {m.code: m for m in metric_ensure_defaults()}["won_revenue"]
        # The plans of the fiscal year of today and of the next one: the demo stays current whenever it runs.
        self.company_year = periods.fiscal_year_of(timezone.localdate(), fiscal_start())
        self.area_year = self.company_year + 1
        created = []
        with transaction.atomic():
            if not self._plan_exists(f"FY{self.company_year}", None):
                self._company_plan()
                created.append(f"FY{self.company_year}")
            east = Region.objects.get(code="EAST")
            if not self._plan_exists(f"FY{self.area_year}", east):
                self._area_plan(east)
                created.append(f"FY{self.area_year} {east.code}")
        if created:
            weeks = self._attainment_history()
            self.stdout.write(
                self.style.SUCCESS(f"Demo targets loaded: {', '.join(created)} ({weeks} weekly attainment snapshots).")
            )
        else:
            self.stdout.write("Demo targets already loaded; nothing changed.")

    def _attainment_history(self) -> int:
        """A snapshot of every approved plan each week from its start to today, so trends show at once;
        then the alerts of today. Returns how many weekly rebuilds ran."""
        from targets.alerts.evaluation import evaluate_alerts
        from targets.attainment.services import attainment_recompute

        today = timezone.localdate()
        runs = 0
        for plan in TargetPlan.objects.filter(status=PlanStatus.APPROVED, period_start__lte=today):
            day = today
            while day >= plan.period_start:
                attainment_recompute(plan=plan, as_of=day)
                runs += 1
                day -= timedelta(days=7)
        evaluate_alerts()
        return runs

    def _plan_exists(self, period_key, region) -> bool:
        return TargetPlan.objects.filter(metric=self.metric, period_key=period_key, region=region).exists()

    def _user(self, username):
        return self.users[username]

    # --- FY2026: the company plan, approved ---------------------------------------------------

    def _company_plan(self):
        director = self._user("director")
        start_month = fiscal_start()
        last_year = periods.year(self.company_year - 1, start_month)
        won = Opportunity.objects.won().filter(closed_on__range=(last_year.start, last_year.end))
        actual = won.aggregate(total=Sum("amount_company"))["total"] or 0
        total = (Decimal(actual) * GROWTH / 100000).to_integral_value(ROUND_CEILING) * 100000 or FALLBACK_TOTAL
        plan = plan_create(
            metric=self.metric,
            period_key=f"FY{self.company_year}",
            total=total,
            owner=director,
            name=f"FY{self.company_year} 签约额 Signed revenue",
            actor=director,
        )
        root = plan.nodes.get(parent__isnull=True)
        # Area -> province -> rep, each by last year's results (seasonality and mix kept).
        areas = target_split(node=root, dimension=Dimension.REGION, method=SplitMethod.HISTORY, actor=director)
        for area in areas.children:
            manager = area.owner  # the area's manager splits what he was given
            provinces = target_split(
                node=area, dimension=Dimension.REGION, method=SplitMethod.HISTORY, actor=manager
            ).children
            for province in provinces:
                target_split(node=province, dimension=Dimension.REP, method=SplitMethod.HISTORY, actor=manager)
        # Every rep's year into quarters, and each quarter into months, by his own last year (the Chinese New
        # Year dip and the year-end peak kept); a rep with too thin a history follows his team's curve.
        for dimension in (Dimension.QUARTER, Dimension.MONTH):
            target_split_leaves(node=root, dimension=dimension, method=SplitMethod.HISTORY, actor=director)
        try:
            plan = plan_submit(plan=plan, actor=director)
        except ValidationError as exc:  # nobody above the director: no second director, no admin
            raise CommandError(" ".join(exc.messages)) from exc
        plan = plan_approve(plan=plan, actor=plan_approvers(plan)[0])

        # Version 2: a key account moved from one Beijing rep to the other, approved by the director.
        bj1, bj2 = self._rep_year(plan, "rep_bj1"), self._rep_year(plan, "rep_bj2")
        moved = _thousands(bj1.amount * Decimal("0.10"))
        adjustment = adjustment_propose(
            plan=plan,
            kind="reallocation",
            reason=f"大客户转移 Key account {self._key_account('rep_bj1')} moved from {bj1.rep} to {bj2.rep}.",
            changes=[{"node": bj1, "amount": bj1.amount - moved}, {"node": bj2, "amount": bj2.amount + moved}],
            actor=self._user("mgr_north"),
        )
        adjustment_approve(adjustment=adjustment, note="Agreed in the quarterly review.", actor=director)

        # Pending: the East manager shifts part of Shanghai's target between his two reps.
        sh1, sh2 = self._rep_year(plan, "rep_sh1"), self._rep_year(plan, "rep_sh2")
        shift = _thousands(sh2.amount * Decimal("0.08"))
        adjustment_propose(
            plan=plan,
            kind="reallocation",
            reason=f"季度目标动态调整: {sh2.rep} is on leave for two months; {sh1.rep} covers her accounts.",
            changes=[{"node": sh1, "amount": sh1.amount + shift}, {"node": sh2, "amount": sh2.amount - shift}],
            actor=self._user("mgr_east"),
        )
        self._action_plans(plan)

    def _key_account(self, username) -> str:
        """The name (before its English part) of the rep's biggest key account, for the demo's texts."""
        customer = (
            Customer.objects.filter(owner=self._user(username), tier=Tier.KEY).order_by("pk").values("name").first()
        )
        return customer["name"].split(" ")[0] if customer else "华信集团"

    def _rep_year(self, plan, username) -> TargetNode:
        return TargetNode.objects.get(plan=plan, rep=self._user(username), period_kind=periods.YEAR)

    def _action_plans(self, plan):
        """A few 行动计划 under the reps' quarter targets: the quarter in progress, else the last one."""
        today = timezone.localdate()
        mgr_east = self._user("mgr_east")
        items = [
            (
                "rep_sh1",
                "rep_sh1",
                "拜访前五大客户，推介新款五轴加工中心 Visit the top 5 accounts with the 5-axis offer",
                10,
                "",
            ),
            (
                "rep_sh1",
                "mgr_east",
                f"与区域经理联合拜访 Joint visit with the area manager: {self._key_account('rep_sh1')}",
                25,
                "Manager's time",
            ),
            (
                "rep_sh2",
                "rep_sh2",
                "重建漏斗：新增15个商机 Rebuild the pipeline: 15 new opportunities",
                40,
                "Marketing leads",
            ),
            (
                "rep_js1",
                "rep_js1",
                "存量客户维保续约促销 Maintenance renewals for existing customers",
                20,
                "Service team",
            ),
            ("rep_bj2", "rep_bj2", "大客户交接会 Hand-over meeting for the transferred key account", 5, ""),
        ]
        for rep, owner, activity, offset, resources in items:
            if rep not in self.users or owner not in self.users:
                continue
            quarters = TargetNode.objects.filter(plan=plan, rep=self._user(rep), period_kind=periods.QUARTER).order_by(
                "period_start"
            )
            node = next((q for q in quarters if q.period_start <= today <= q.period_end), quarters.last())
            # Around today when the quarter is in progress, so some are overdue and some still ahead.
            base = today - timedelta(days=12) if node.period_start <= today <= node.period_end else node.period_start
            due = max(node.period_start, min(base + timedelta(days=offset), node.period_end))
            actor = mgr_east if owner == "mgr_east" else self._user(owner)
            action_plan_create(
                node=node, activity=activity, owner=self._user(owner), due_date=due, resources=resources, actor=actor
            )

    # --- FY2027: the East area's own plan, still a draft --------------------------------------

    def _area_plan(self, east):
        manager = self._user("mgr_east")
        today = timezone.localdate()
        last_twelve = Opportunity.objects.won().filter(
            region__path__startswith=east.path, closed_on__gt=today - timedelta(days=365), closed_on__lte=today
        )
        actual = last_twelve.aggregate(total=Sum("amount_company"))["total"] or 0
        total = (Decimal(actual) * AREA_GROWTH / 100000).to_integral_value(ROUND_CEILING) * 100000
        plan = plan_create(
            metric=self.metric,
            period_key=f"FY{self.area_year}",
            total=total or FALLBACK_AREA_TOTAL,
            region=east,
            owner=manager,
            name=f"FY{self.area_year} 华东签约额 East signed revenue",
            actor=manager,
        )
        root = plan.nodes.get(parent__isnull=True)
        provinces = {
            n.region.code: n
            for n in target_split(
                node=root, dimension=Dimension.REGION, method=SplitMethod.HISTORY, actor=manager
            ).children
        }
        shanghai = target_split(node=provinces["SH"], dimension=Dimension.REP, method=SplitMethod.EQUAL, actor=manager)
        # Bottom-up: one rep aims higher than handed down, the other lower; the manager sees the gap.
        for node, factor in zip(shanghai.children, (Decimal("1.10"), Decimal("0.85")), strict=False):
            node_commit(node=node, amount=_thousands(node.amount * factor), actor=node.owner)
        jiangsu = target_split(
            node=provinces["JS"], dimension=Dimension.PRODUCT_LINE, method=SplitMethod.HISTORY, actor=manager
        )
        # Nobody is responsible for services in Jiangsu yet: the split suggests the parent's owner, and
        # the demo takes it away so the plan shows a leaf without 定责任 (and cannot be approved yet).
        services_leaf = jiangsu.children.filter(product_line__code="SV").first()
        if services_leaf is not None:
            TargetNode.objects.filter(pk=services_leaf.pk).update(owner=None)
