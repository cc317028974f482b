"""The demo company's review meetings and forecast call (run after `seed_demo` and `seed_demo_targets`).

- The East area's weekly review (周例会) held last week by its manager: agenda, minutes, action items with
  their 3定 (some tied to a rep's quarter target or to a deal), two of them done since, the others open and
  carried to this week's meeting, which is planned with its agenda.
- This quarter's forecast call: every rep submits commit and best case from his deals (with his own
  judgment), and the East manager submits the area's number upward with a note.
- `coaching_sessions_and_project_reviews`: 1:1 coaching sessions (辅导) of the East manager with his reps
  (commitments, one followed up, one session acknowledged) and a held project analysis meeting (项目分析会) on
  East's big-account projects, through `coaching.session_services` and `coaching.project_services`.

Everything goes through `coaching.services`; only the timestamps of last week's records are dated back to
last week (the services date what they write now). Idempotent: once the East area has a meeting, nothing
is loaded again.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from coaching import selectors
from coaching.models import ActionItem, ActionItemStatus, ForecastSubmission, Meeting
from coaching.services import (
    action_item_create,
    action_item_set_status,
    forecast_submit,
    forecast_team_submit,
    meeting_create,
    meeting_hold,
    meeting_update,
)
from crm.models import CompanySettings, Region, Role, User
from pipeline.models import Opportunity
from salesmgmt.lib import periods
from salesmgmt.lib.money import quantize
from targets.models import PlanStatus, TargetNode

AGENDA = """1. 目标达成与时间进度 Attainment against time progress, rep by rep
2. 本周赢单、丢单与推迟 Deals won, lost and pushed this week
3. 重点商机推进 Key deals: next steps and help needed
4. 上周行动项跟进 Last week's action items
5. 本季度预测 This quarter's forecast (commit / best case)"""

MINUTES = """{lead} 本周签约进度领先，一笔大单已进入签约阶段。
{behind} 进度落后于时间进度，漏斗覆盖不足：本周新增商机目标 5 个，经理陪同拜访两家重点客户。
江苏区域五轴设备报价偏高，与总部申请特价；服务续约作为存量客户的切入点。
预测：区域 commit 维持不变，best case 待两笔大单的技术评审结果。

{lead} is ahead of pace; a large deal reached contract signing.
{behind} is behind time progress with thin coverage: 5 new opportunities this week, and the manager joins two
key-account visits. Five-axis quotes in Jiangsu are above the competition: special price requested from HQ.
Maintenance renewals are the way back into existing customers. Forecast: commit unchanged; best case waits
on the technical review of two large deals."""


def coaching_sessions_and_project_reviews(*, manager: User, reps: list[User], today: date, team: Region) -> None:
    """The demo's 1:1 coaching sessions (辅导) between `manager` and two of `reps` and a held project analysis
    meeting (项目分析会) on the team's big-account projects, through `coaching.session_services` and
    `coaching.project_services`:

    - the first rep, two weeks ago, on his quarter target gap: two commitments; followed up three days ago in a
      session on his biggest deal (one commitment done, the other kept open) with a new commitment;
    - the second rep, last week, on a skill (discovery questions): one commitment, acknowledged by the rep;
    - the team's project review of last Thursday on its three biggest projects: the customer's buying step, next
      steps and risks, a decision and an action item each, held (frozen).

    Idempotent on its own: sessions are added only when the manager has none, the project review only when the
    team has none."""
    from coaching.models import BuyingStep, CoachingFocus, CoachingSession, ProjectDecisionKind, ProjectReview
    from coaching.project_selectors import big_deals
    from coaching.project_services import (
        project_decision_add,
        project_entry_save,
        project_review_create,
        project_review_hold,
    )
    from coaching.session_services import (
        NewCommitment,
        coaching_session_acknowledge,
        coaching_session_create,
        commitment_follow_up,
    )

    if len(reps) >= 2 and not CoachingSession.objects.filter(manager=manager).exists():
        first, second = reps[0], reps[1]
        node = (
            TargetNode.objects.filter(
                plan__status=PlanStatus.APPROVED,
                rep=first,
                period_kind=periods.QUARTER,
                period_start__lte=today,
                period_end__gte=today,
            )
            .order_by("pk")
            .first()
        )
        gap = coaching_session_create(
            actor=manager,
            rep=first,
            date=today - timedelta(days=14),
            focus_kind=CoachingFocus.TARGET,
            focus="本季度目标缺口 / The quarter's target gap",
            observations="Pipeline is thin for the last month of the quarter; too few first visits to new accounts.",
            node=node,
            commitments=[
                NewCommitment("每周新增三次客户拜访 / Three new-account visits a week", today - timedelta(days=7)),
                NewCommitment(
                    "补充两个方案呈现阶段的商机 / Two more deals at proposal stage", today + timedelta(days=14)
                ),
            ],
        )
        deal = Opportunity.objects.open().filter(owner=first).order_by("-amount_company", "pk").first()
        follow = coaching_session_create(
            actor=manager,
            rep=first,
            date=today - timedelta(days=3),
            focus_kind=CoachingFocus.DEAL if deal else CoachingFocus.SKILL,
            focus=f"{deal.name}" if deal else "Negotiation",
            observations="The technical review is scheduled; the purchasing contact is not yet engaged.",
            opportunity=deal,
            commitments=[NewCommitment("约见采购负责人 / Meet the head of purchasing", today + timedelta(days=7))],
        )
        visits, proposals = gap.commitments.order_by("due_date", "id")
        commitment_follow_up(
            actor=manager, session=follow, commitment=visits, status=ActionItemStatus.DONE, note="Done: 4 a week."
        )
        commitment_follow_up(
            actor=manager, session=follow, commitment=proposals, status=ActionItemStatus.OPEN, note="One so far."
        )
        skill = coaching_session_create(
            actor=manager,
            rep=second,
            date=today - timedelta(days=7),
            focus_kind=CoachingFocus.SKILL,
            focus="需求挖掘提问 / Discovery questions",
            observations="Jumps to the quote before the customer's need and budget are confirmed.",
            commitments=[NewCommitment("每次拜访先确认预算与决策人 / Confirm budget and decider first", today)],
        )
        coaching_session_acknowledge(actor=second, session=skill)

    if not ProjectReview.objects.filter(region=team).exists():
        projects = list(big_deals(manager, team)[:3])
        if projects:
            day = today - timedelta(days=today.weekday() + 4)  # last week's Thursday
            review = project_review_create(
                actor=manager, team=team, date=day, title="华东大项目分析会 / East key projects"
            )
            steps = [BuyingStep.EVALUATION, BuyingStep.NEGOTIATION, BuyingStep.NEED]
            for deal, step in zip(projects, steps, strict=False):
                project_entry_save(
                    actor=manager,
                    review=review,
                    opportunity=deal,
                    buying_step=step,
                    next_steps="Technical review with the customer's engineers; quote after the site visit.",
                    risks="A competitor offers a lower price; the budget is approved only for half of it.",
                )
                project_decision_add(
                    actor=manager,
                    review=review,
                    opportunity=deal,
                    kind=ProjectDecisionKind.DECISION,
                    what="Hold the price; offer a longer warranty instead of a discount.",
                )
                project_decision_add(
                    actor=manager,
                    review=review,
                    opportunity=deal,
                    kind=ProjectDecisionKind.ACTION,
                    what="Bring the solution engineer to the next visit.",
                    owner=deal.owner,
                    due_date=today + timedelta(days=7),
                )
            project_review_hold(actor=manager, review=review)


def demo_scorecard(*, today: date) -> None:
    """The reps' scorecard (过程量 + 结果量) of the current quarter, once: signed revenue against target (60 points,
    capped at 120 %), visits (25 points, 24 a quarter) and deals created (15 points, 10 a quarter)."""
    from coaching.scorecard import config_for
    from coaching.scorecard_services import scorecard_config_save
    from crm.models import Role
    from targets.models import Metric

    quarter = periods.period_of(today, periods.QUARTER, CompanySettings.load().fiscal_year_start_month)
    if config_for(Role.REP, quarter.key) is not None:
        return
    metrics = {m.code: m for m in Metric.objects.filter(code__in=("won_revenue", "visits", "deals_created"))}
    director = User.objects.filter(role=Role.DIRECTOR, is_active=True).order_by("pk").first()
    if len(metrics) < 3 or director is None:
        return
    scorecard_config_save(
        role=Role.REP,
        period_key=quarter.key,
        items=[
            {"metric": metrics["won_revenue"], "weight": "60", "cap": "1.20"},
            {"metric": metrics["visits"], "weight": "25", "cap": "1.00", "target": "24"},
            {"metric": metrics["deals_created"], "weight": "15", "cap": "1.00", "target": "10"},
        ],
        actor=director,
    )


def _at(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


class Command(BaseCommand):
    help = "Load the demo's review meetings, action items and forecasts (after seed_demo_targets; idempotent)."

    def handle(self, *args, **options):
        east = Region.objects.filter(code="EAST").select_related("manager").first()
        if east is None or east.manager is None:
            raise CommandError("Load the demo company first: manage.py seed_demo")
        if not TargetNode.objects.filter(plan__status=PlanStatus.APPROVED, region__path__startswith=east.path).exists():
            raise CommandError("Load the demo targets first: manage.py seed_demo_targets")
        self.today = timezone.localdate()
        self.manager = east.manager
        self.reps = list(selectors.team_reps(east).order_by("region__path", "username"))
        if Meeting.objects.filter(region=east).exists():
            with transaction.atomic():  # a demo loaded before the coaching sessions existed gets them now
                coaching_sessions_and_project_reviews(manager=self.manager, reps=self.reps, today=self.today, team=east)
                demo_scorecard(today=self.today)
            self.stdout.write("Demo meetings and forecasts already loaded; nothing else changed.")
            return
        start_month = CompanySettings.load().fiscal_year_start_month
        self.quarter = periods.period_of(self.today, periods.QUARTER, start_month)
        this_week = selectors.week_of(self.today)
        last_week = this_week - timedelta(days=7)
        with transaction.atomic():
            self.lead, self.behind = self._standing()
            # Last week's forecasts, made before the meeting; this week's since, a little firmer.
            forecasts = self._forecasts(east, last_week, keep=(85, 95, 100, 90))
            held = self._last_week(east, last_week)
            self._this_week(east, this_week)
            forecasts += self._forecasts(east, this_week, keep=(80, 90, 100, 95))
            coaching_sessions_and_project_reviews(manager=self.manager, reps=self.reps, today=self.today, team=east)
            demo_scorecard(today=self.today)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo coaching loaded: the East review of {held.week} held with {held.new_items.count()} action "
                f"items, this week's planned, {forecasts} forecasts."
            )
        )

    def _quarter_node(self, rep: User) -> TargetNode | None:
        return (
            TargetNode.objects.filter(
                plan__status=PlanStatus.APPROVED,
                rep=rep,
                period_kind=periods.QUARTER,
                period_start__lte=self.today,
                period_end__gte=self.today,
            )
            .order_by("pk")
            .first()
        )

    def _biggest_open_deal(self, rep: User) -> Opportunity | None:
        return Opportunity.objects.open().filter(owner=rep).order_by("-amount_company", "pk").first()

    def _standing(self) -> tuple[User, User]:
        """The rep furthest ahead and the one furthest behind this quarter (won vs quarter target)."""
        ratios = {}
        for rep in self.reps:  # a handful of reps: the demo's four
            node = self._quarter_node(rep)
            won = selectors.prefill(rep, self.quarter).won
            ratios[rep] = won / node.amount if node is not None and node.amount else Decimal(0)
        ranked = sorted(self.reps, key=lambda r: (ratios[r], r.username))
        return ranked[-1], ranked[0]

    def _last_week(self, east: Region, week: date) -> Meeting:
        meeting = meeting_create(
            actor=self.manager,
            team=east,
            week=week,
            title=f"华东大区周例会 East weekly review {week.isoformat()}",
            agenda=AGENDA,
        )
        lead, behind = self.lead, self.behind
        items = []
        specs = [
            # owner, what, due (days after the meeting's Monday), tied to a target / a deal
            (behind, "新增5个商机，补足漏斗覆盖 Add 5 opportunities to restore coverage", 4, "target", True),
            (self.manager, f"陪同{behind.first_name}拜访两家重点客户 Joint visits to two key accounts", 6, "", False),
            (lead, "推动签约并确认预付款时间 Close the contract and fix the deposit date", 3, "deal", True),
            (self.reps[-1], "提交五轴设备特价申请 Special-price request for the 5-axis quote", 2, "deal", False),
            (self.reps[1], "整理存量客户维保到期清单 List the maintenance contracts due for renewal", 9, "", False),
        ]
        for owner, what, due, link, _done in specs:
            items.append(
                action_item_create(
                    actor=self.manager,
                    meeting=meeting,
                    what=what,
                    owner=owner,
                    due_date=week + timedelta(days=due),
                    node=self._quarter_node(owner) if link == "target" else None,
                    opportunity=self._biggest_open_deal(owner) if link == "deal" else None,
                )
            )
        meeting = meeting_update(
            actor=self.manager,
            meeting=meeting,
            minutes=MINUTES.format(lead=lead, behind=behind),
        )
        meeting = meeting_hold(actor=self.manager, meeting=meeting)
        held_on = week + timedelta(days=min(1, (self.today - week).days))  # Tuesday, or as late as possible
        Meeting.objects.filter(pk=meeting.pk).update(created_at=_at(week, 9), held_at=_at(held_on, 11))
        ActionItem.objects.filter(meeting=meeting).update(created_at=_at(held_on, 11))
        # Done since, between meetings, by their owners; the others stay open and carry forward.
        for item, (owner, _what, due, _link, done) in zip(items, specs, strict=True):
            if done:
                action_item_set_status(actor=owner, item=item, status=ActionItemStatus.DONE, notes="已完成 Done")
                closed_on = min(week + timedelta(days=due), self.today)
                ActionItem.objects.filter(pk=item.pk).update(closed_at=_at(closed_on, 17))
        meeting.refresh_from_db()
        return meeting

    def _this_week(self, east: Region, week: date) -> Meeting:
        return meeting_create(
            actor=self.manager,
            team=east,
            week=week,
            title=f"华东大区周例会 East weekly review {week.isoformat()}",
            agenda=AGENDA,
        )

    def _forecasts(self, east: Region, week: date, keep: tuple[int, ...]) -> int:
        """The forecast call of `week` for its month and quarter (those not over yet): every rep's forecast from
        his deals, with his own judgment on what is still open (`keep`: the share of his open commit he keeps,
        by rep), then the East manager's number for the area, a little under the reps' sum, with his note.
        The services date what they write today: rows of an earlier week are dated back to it."""
        start_month = CompanySettings.load().fiscal_year_start_month
        made = []
        for kind in (periods.MONTH, periods.QUARTER):
            period = periods.period_of(week, kind, start_month)
            if period.end < self.today:
                continue  # over: its forecasts are closed
            reps = User.objects.filter(role=Role.REP, is_active=True).order_by("username")
            for i, rep in enumerate(reps):
                figures = selectors.prefill(rep, period)
                commit = quantize(figures.won + (figures.commit - figures.won) * Decimal(keep[i % len(keep)]) / 100)
                best_case = max(commit, quantize(figures.best_case * Decimal("1.05")))
                note = "签约阶段的单子本期落地 The deals in contract signing land in the period"
                made.append(forecast_submit(actor=rep, period=period, commit=commit, best_case=best_case, note=note))
            roll = selectors.rollup(self.manager, east, period, selectors.week_of(self.today))
            made.append(
                forecast_team_submit(
                    actor=self.manager,
                    team=east,
                    period=period,
                    commit=quantize(roll.commit * Decimal("0.95")),
                    best_case=roll.best_case,
                    note=f"经理判断：{self.behind.first_name}的两笔大单存在推迟风险，commit 下调 5 % "
                    f"Manager's judgment: two of {self.behind.last_name}'s large deals may slip; commit 5 % under "
                    "the reps' sum.",
                )
            )
        if week != selectors.week_of(self.today):
            ForecastSubmission.objects.filter(pk__in=[f.pk for f in made]).update(week=week, submitted_at=_at(week, 9))
        return len(made)
