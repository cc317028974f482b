"""The weekly digest job run twice at the same moment (PostgreSQL): each person gets one mail.

Each run is a thread with its own database connection (hence `transaction=True`). Both are held at the claim of
each person until the other arrives there too (a `threading.Barrier`), so both have built the same person's
digest and both try to claim it: the unique (user, week) key lets one through.
"""

import threading

import pytest
from django.core import mail
from django.db import connection

from coaching import digest as digest_module
from coaching.digest import digests_send
from coaching.models import DigestSent
from tests.coaching.digest.conftest import TODAY, WEEK

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs several connections to one database: SQLite's test database is one connection",
    ),
    pytest.mark.django_db(transaction=True),
]

WAIT = 30  # seconds: only ever reached when something is wrong


class Run(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = digests_send(today=TODAY)
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            connection.close()


def test_two_concurrent_runs_send_each_digest_once(world, monkeypatch):
    barrier = threading.Barrier(2, timeout=WAIT)
    real = digest_module.digest_claim

    def claim_together(**kwargs):
        barrier.wait()  # both runs are about to claim the same person's digest
        return real(**kwargs)

    monkeypatch.setattr(digest_module, "digest_claim", claim_together)
    runs = [Run(), Run()]
    for run in runs:
        run.start()
    for run in runs:
        run.join(WAIT)
        assert not run.is_alive(), "a run did not finish"
        if run.error is not None:
            raise run.error
    # (The fixture's recomputes, committed here, also e-mailed alerts and milestones: only digests count.)
    addresses = [address for m in mail.outbox if WEEK in m.subject for address in m.to]
    assert len(addresses) == len(set(addresses)) == 6
    assert sum(run.result.sent for run in runs) == 6
    # Each person: one run sent, the other found it claimed; and the director, with nothing to say, twice.
    assert sum(run.result.skipped for run in runs) == 6 + 2
    assert DigestSent.objects.filter(week=WEEK, sent_at__isnull=False).count() == 6
