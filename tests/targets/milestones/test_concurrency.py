"""Two evaluations of the same figures at the same moment (PostgreSQL): one milestone, one notification each.

Each evaluation is a thread with its own connection and transaction (as `evaluate_alerts` runs); both are
held just before inserting the milestones until the other arrives there too, so both found the same new
milestone: the unique (node, version, level) key makes the second insert wait for the first and skip it.
"""

import threading
from datetime import date

import pytest
from django.db import connection, transaction
from django.db.models import Manager

from targets.alerts.milestones import evaluate_milestones
from targets.attainment.services import attainment_recompute
from targets.models import Notification, TargetMilestone
from tests.factories import make_deal
from tests.targets.milestones.conftest import TODAY, won

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs several connections to one database with row locks: SQLite's test database is one connection",
    ),
    pytest.mark.django_db(transaction=True),
]

WAIT = 30


class Evaluation(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.result = None
        self.error = None

    def run(self):
        try:
            with transaction.atomic():
                self.result = evaluate_milestones(today=TODAY)
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            connection.close()


def test_two_concurrent_evaluations_record_and_tell_once(org, plan, monkeypatch):
    make_deal(owner=org.rep, amount="1200000", stage=won(org), close=date(2027, 3, 1))
    attainment_recompute(plan=plan, as_of=TODAY)
    # Creating the deal already ran its recompute and evaluation (committed at once here, and a new deal is a
    # process fact): start from figures whose milestones nobody has recorded yet.
    Notification.objects.filter(milestone__isnull=False).delete()
    TargetMilestone.objects.all().delete()
    barrier = threading.Barrier(2, timeout=WAIT)
    real = Manager.bulk_create

    def insert_together(self, objs, *args, **kwargs):
        if self.model is TargetMilestone:
            barrier.wait()  # both found the same milestones new
        return real(self, objs, *args, **kwargs)

    monkeypatch.setattr(Manager, "bulk_create", insert_together)
    runs = [Evaluation(), Evaluation()]
    for run in runs:
        run.start()
    for run in runs:
        run.join(WAIT)
        assert not run.is_alive(), "an evaluation did not finish"
        if run.error is not None:
            raise run.error
    # The clock is frozen: both evaluations carry one timestamp, so each may count the rows as its own; what
    # matters is in the tables: three milestones, and each person told once (the notifications' unique key).
    assert max(run.result for run in runs) == 3
    assert TargetMilestone.objects.count() == 3
    assert sorted(Notification.objects.filter(milestone__isnull=False).values_list("recipient_id", flat=True)) == (
        sorted([org.rep.pk, org.manager.pk])
    )
