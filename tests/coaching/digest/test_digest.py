"""The weekly digest: what it says equals independent computations on the fixture data (targets and pace, deals
to act on, commitments, items, a manager's team), it goes out once per person and ISO week however often the
job runs, opted-out people get nothing, and it is written in the recipient's language."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from coaching import digest as digest_module
from coaching.digest import (
    CLAIM_LEASE,
    build_digest,
    digest_send,
    digests_send,
    render_digest,
    week_key,
)
from coaching.models import ActionItem, ActionItemStatus, Commitment, DigestSent
from coaching.tasks import send_weekly_digest, send_weekly_digests
from pipeline.models import Opportunity
from salesmgmt.celery import app
from salesmgmt.models import OutboxTask
from targets.alerts.milestones import evaluate_milestones
from targets.alerts.notifications import notification_preferences_update
from targets.models import PREFERENCE_WEEKLY_DIGEST, NotificationPreference
from tests.coaching.digest.conftest import TODAY, WEEK


def shown(numerator, denominator) -> Decimal:
    """A percentage as screens show it, computed here without the app: one decimal, half up."""
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def mails_to(address):
    return [m for m in mail.outbox if m.to == [address]]


# --- content ---------------------------------------------------------------------------------------


def test_week_key_is_the_iso_week():
    assert week_key(TODAY) == WEEK
    assert week_key(TODAY + timedelta(days=6)) == WEEK  # Sunday: the same week
    assert week_key(TODAY + timedelta(days=7)) == "2026-W26"


def test_targets_and_pace_equal_an_independent_computation(world):
    org = world.org
    assert not org.company.count_working_days  # calendar days below
    digest = build_digest(org.rep, today=TODAY)
    got = {
        row.node.period_key: (row.attainment.attainment_pct, row.attainment.time_progress_pct, row.behind)
        for row in digest.targets
    }
    # The rep's targets are company-wide (no coordinate of their own): every deal won in the period counts.
    won = [(d.closed_on, d.amount_company) for d in Opportunity.objects.filter(stage__is_won=True)]

    def won_between(start, end):
        return sum((amount for day, amount in won if start <= day <= end), Decimal(0))

    june_won = won_between(date(2026, 6, 1), date(2026, 6, 30))
    q2_won = won_between(date(2026, 4, 1), date(2026, 6, 30))
    june = (shown(june_won, 1000000), shown(15, 30))  # 15 of June's 30 days
    q2 = (shown(q2_won, 3000000), shown(30 + 31 + 15, 91))  # 76 of the quarter's 91 days
    assert got == {
        "FY2026-M06": (*june, june[0] < june[1]),
        "FY2026-Q2": (*q2, q2[0] < q2[1]),
    }  # April and May are over and the year is no month or quarter: none is in the digest
    assert got["FY2026-M06"] == (Decimal("65.0"), Decimal("50.0"), False)  # 600,000 + the teammate's 50,000
    assert got["FY2026-Q2"] == (Decimal("28.3"), Decimal("83.5"), True)


def test_deals_to_act_on_equal_a_plain_replay(world):
    org = world.org
    now = timezone.now()
    expected = set()
    for deal in Opportunity.objects.select_related("stage"):
        if deal.owner_id != org.rep.pk or deal.stage.is_won or deal.stage.is_lost:
            continue
        late = deal.expected_close_date is not None and deal.expected_close_date < TODAY
        due = deal.next_step_date is not None and deal.next_step_date <= TODAY
        days = deal.stage.expected_days
        stuck = days is not None and deal.stage_entered_at < now - timedelta(days=days)
        if late or due or stuck:
            expected.add((deal.name, late, due, stuck))
    digest = build_digest(org.rep, today=TODAY)
    got = {(d.name, d.close_date_passed, d.next_step_due, d.stuck) for d in digest.deals}
    assert got == expected
    assert {name for name, *_ in got} == {"Late close", "Step due today", "Stuck"}
    assert digest.deals_total == 3


def test_commitments_and_items_are_the_open_ones_of_the_person(world):
    org = world.org
    done = Commitment.objects.get(what="Role-play objections")
    Commitment.objects.filter(pk=done.pk).update(status=ActionItemStatus.DONE)
    digest = build_digest(org.rep, today=TODAY)
    expected_commitments = [
        c.pk
        for c in sorted(Commitment.objects.all(), key=lambda c: (c.due_date, c.pk))
        if c.rep_id == org.rep.pk and c.status == ActionItemStatus.OPEN
    ]
    assert [c.pk for c in digest.commitments] == expected_commitments != []
    expected_items = [
        i.pk for i in ActionItem.objects.all() if i.owner_id == org.rep.pk and i.status == ActionItemStatus.OPEN
    ]
    assert [i.pk for i in digest.items] == expected_items == [world.items.rep.pk]
    assert digest.team is None and digest.team_rows == []  # a rep has no team summary


def test_a_manager_gets_his_team_summary(world):
    org = world.org
    digest = build_digest(org.manager, today=TODAY)
    assert digest.team == org.east
    rows = {row.person.username: row for row in digest.team_rows}
    assert set(rows) == {"rep", "rep_sh2", "rep_js"}  # East's reps, sub-teams included; not the North's
    rep, mate, js = rows["rep"], rows["rep_sh2"], rows["rep_js"]
    # rep: June ahead of time, Q2 behind; 3 deals to act on; 1 item; 2 open commitments.
    assert (rep.targets, rep.behind_pace, rep.deals_to_act, rep.open_items, rep.open_commitments) == (2, 1, 3, 1, 2)
    # rep_sh2: nothing collected yet (June and Q2 behind); one late deal; one item.
    assert (mate.targets, mate.behind_pace, mate.deals_to_act, mate.open_items, mate.open_commitments) == (
        2,
        2,
        1,
        1,
        0,
    )
    assert (js.targets, js.behind_pace, js.deals_to_act, js.open_items) == (2, 2, 0, 0)


def test_building_a_digest_costs_the_same_queries_for_a_bigger_team(world, django_assert_max_num_queries):
    from crm.models import Role
    from tests.factories import UserFactory, make_deal

    with django_assert_max_num_queries(40) as before:
        build_digest(world.org.manager, today=TODAY)
    for n in range(4):
        rep = UserFactory(username=f"extra{n}", role=Role.REP, region=world.org.js)
        make_deal(owner=rep, amount="1000", stage=world.org.stages[0], close=TODAY - timedelta(days=3))
    with django_assert_max_num_queries(len(before.captured_queries)):
        digest = build_digest(world.org.manager, today=TODAY)
    assert len(digest.team_rows) == 7


def test_good_news_of_the_week_are_the_milestones_of_the_persons_targets(world, frozen):
    org = world.org
    assert build_digest(org.rep, today=TODAY).good_news == []
    evaluate_milestones(today=TODAY)  # June: 650,000 of 1,000,000 reached 50 %; nothing else reached a level
    digest = build_digest(org.rep, today=TODAY)
    assert [(m.node.period_key, level, figure) for m, level, figure in digest.good_news] == [
        ("FY2026-M06", "50 %", shown(650000, 1000000))
    ]
    assert build_digest(org.manager, today=TODAY).good_news == []  # his team's news are not his own
    text = render_digest(digest).body
    assert "50 %" in text and "65.0 %" in text
    frozen.shift(timedelta(days=8))  # a week later it is no longer news
    assert build_digest(org.rep).good_news == []


# --- the mail ------------------------------------------------------------------------------------


def test_the_mail_has_text_and_html_with_the_figures(world):
    message = render_digest(build_digest(world.org.rep, today=TODAY))
    assert message.to == ["rep@example.com"]
    assert WEEK in message.subject
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html"
    for text in (message.body, html):
        assert "65.0 %" in text and "50.0 %" in text  # June: attainment vs time progress
        assert "Late close" in text and "Stuck" in text and "Step due today" in text
        assert "Step later" not in text and "Fresh" not in text and "Teammate late" not in text
        assert "Ask for the order in every meeting" in text and "Call back Acme" in text
        assert "/targets/notifications/settings/" in text


def test_the_mail_is_in_the_site_language_or_the_users(world, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    chinese = render_digest(build_digest(world.org.rep, today=TODAY))
    assert "商机在阶段停留过久" in chinese.body and "Deal stuck in stage" not in chinese.body
    settings.LANGUAGE_CODE = "en"
    english = render_digest(build_digest(world.org.rep, today=TODAY))
    assert "Deal stuck in stage" in english.body
    # A user's own language (when users get one: `language_of`) wins over the site's.
    rep = world.org.rep
    rep.language = "zh-hans"
    assert "商机在阶段停留过久" in render_digest(build_digest(rep, today=TODAY)).body


# --- once per person and week ---------------------------------------------------------------------


def test_sent_once_per_person_and_week_when_the_job_runs_twice(world):
    first = digests_send(today=TODAY)
    sent_to = sorted(address for m in mail.outbox for address in m.to)
    # Everyone with something to say: the reps with targets, deals, items; the managers with a team; not the
    # North's rep? He has a late deal, so he gets one too. The director has nothing of his own and no team
    # he manages: no mail.
    assert sent_to == sorted(
        [
            "rep@example.com",
            "rep_sh2@example.com",
            "rep_js@example.com",
            "rep_other@example.com",
            "manager@example.com",
            "manager_north@example.com",
        ]
    )
    assert first.sent == 6
    second = digests_send(today=TODAY)
    assert second.sent == 0 and len(mail.outbox) == 6
    assert set(DigestSent.objects.values_list("week", flat=True)) == {WEEK}
    assert not DigestSent.objects.filter(sent_at__isnull=True).exists()


def test_the_scheduled_job_fans_out_per_person_and_sends_once_when_run_twice(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queued = send_weekly_digests()  # the beat task: one task per person, run after commit (eager here)
    assert queued == 7  # everyone active with an address, the director included (his digest is empty)
    assert len(mail.outbox) == 6
    with django_capture_on_commit_callbacks(execute=True):
        again = send_weekly_digests()  # the catch-up run, or the job delivered twice
    assert again == 1  # only the director, who had nothing to say, is still "owed" one
    assert len(mail.outbox) == 6
    assert not OutboxTask.objects.filter(name="coaching.send_weekly_digest").exists()  # every task ran


def test_a_queued_task_run_twice_sends_once(world):
    assert send_weekly_digest(world.org.rep.pk, TODAY.isoformat()) is True
    assert send_weekly_digest(world.org.rep.pk, TODAY.isoformat()) is False  # a redelivery
    assert len(mails_to("rep@example.com")) == 1


def test_next_week_sends_again(world, frozen):
    digests_send(today=TODAY)
    frozen.shift(timedelta(days=7))
    digests_send()
    assert len(mails_to("rep@example.com")) == 2
    assert set(DigestSent.objects.filter(user=world.org.rep).values_list("week", flat=True)) == {WEEK, "2026-W26"}


def test_opted_out_people_get_nothing(world):
    org = world.org
    notification_preferences_update(user=org.rep, choices={PREFERENCE_WEEKLY_DIGEST: (False, False)}, actor=org.rep)
    digests_send(today=TODAY)
    assert mails_to("rep@example.com") == []
    assert mails_to("rep_sh2@example.com") != []
    assert not DigestSent.objects.filter(user=org.rep).exists()
    # Opting in again: the digest of the week goes out.
    NotificationPreference.objects.filter(user=org.rep, kind=PREFERENCE_WEEKLY_DIGEST).update(email=True)
    digests_send(today=TODAY)
    assert len(mails_to("rep@example.com")) == 1


def test_the_settings_page_offers_the_digest_opt_out(world, client_for):
    org = world.org
    client = client_for(org.rep)
    page = client.get("/targets/notifications/settings/")
    assert 'data-testid="pref-weekly_digest"' in page.content.decode()
    assert 'data-testid="pref-milestones"' in page.content.decode()
    data = {f"in_app_{k}": "on" for k in ("pace_gap", "coverage", "milestones")}
    response = client.post("/targets/notifications/settings/", data)
    assert response.status_code == 302
    pref = NotificationPreference.objects.get(user=org.rep, kind=PREFERENCE_WEEKLY_DIGEST)
    assert pref.email is False
    digests_send(today=TODAY)
    assert mails_to("rep@example.com") == []


def test_a_claim_left_by_a_crashed_run_is_taken_over_after_the_lease(world, frozen):
    org = world.org
    # A run claimed the rep's digest and died before sending.
    DigestSent.objects.create(user=org.rep, week=WEEK, claim="dead", claimed_at=timezone.now())
    digests_send(today=TODAY)
    assert mails_to("rep@example.com") == []  # another run may still be sending it
    frozen.shift(CLAIM_LEASE + timedelta(minutes=1))
    digests_send(today=TODAY)
    assert len(mails_to("rep@example.com")) == 1
    row = DigestSent.objects.get(user=org.rep, week=WEEK)
    assert row.sent_at is not None and row.claim != "dead"
    frozen.shift(CLAIM_LEASE + timedelta(minutes=1))
    digests_send(today=TODAY)
    assert len(mails_to("rep@example.com")) == 1  # sent is sent, lease or not


def test_a_failed_send_releases_the_claim_and_the_next_run_sends_it(world, monkeypatch):
    real = digest_module.EmailMultiAlternatives.send

    def flaky(message, *args, **kwargs):
        if message.to == ["rep@example.com"]:
            raise ConnectionError("SMTP down")
        return real(message, *args, **kwargs)

    monkeypatch.setattr(digest_module.EmailMultiAlternatives, "send", flaky)
    run = digests_send(today=TODAY)
    assert (run.sent, run.failed) == (5, 1)  # the others went out
    assert not DigestSent.objects.filter(user=world.org.rep).exists()
    with pytest.raises(ConnectionError):
        digest_send(user=world.org.rep, today=TODAY)
    monkeypatch.setattr(digest_module.EmailMultiAlternatives, "send", real)
    run = digests_send(today=TODAY)
    assert (run.sent, run.failed) == (1, 0)
    assert len(mails_to("rep@example.com")) == 1


def test_inactive_people_and_people_without_an_address_get_nothing(world):
    org = world.org
    org.rep.is_active = False
    org.rep.save(update_fields=["is_active"])
    org.rep_same_team.email = ""
    org.rep_same_team.save(update_fields=["email"])
    digests_send(today=TODAY)
    assert mails_to("rep@example.com") == []
    assert not DigestSent.objects.filter(user__in=[org.rep, org.rep_same_team]).exists()


# --- the command and the schedule -------------------------------------------------------------------


def test_the_command_dry_run_sends_and_records_nothing(world, capsys):
    call_command("send_weekly_digest", "--dry-run", "--user", "rep")
    out = capsys.readouterr().out
    assert "rep@example.com" in out and "Late close" in out
    assert mail.outbox == [] and not DigestSent.objects.exists()


def test_the_command_sends_to_one_user(world, capsys):
    call_command("send_weekly_digest", "--user", "rep")
    assert [m.to for m in mail.outbox] == [["rep@example.com"]]
    call_command("send_weekly_digest", "--user", "rep")
    assert len(mail.outbox) == 1


def test_the_command_refuses_an_unknown_user(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("send_weekly_digest", "--user", "nobody")


def test_the_job_is_scheduled_monday_seven_in_shanghai():
    entry = settings.CELERY_BEAT_SCHEDULE["coaching-weekly-digest"]
    assert entry["task"] == "coaching.send_weekly_digests" and entry["task"] in app.tasks
    assert entry["schedule"] == crontab(day_of_week="mon", hour=7, minute=0)
    assert settings.CELERY_TIMEZONE == "Asia/Shanghai"
