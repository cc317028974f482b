"""Test-only: loaded into a worker with `-I tests.integration.slow_recompute` by test_worker_crash.py.

It makes the real `targets.recompute_plan` slow where a crash hurts most: the figures are computed and
written, then the transaction stays open for SLOW_RECOMPUTE_SECONDS before it commits. Each step is
appended to the file SLOW_RECOMPUTE_LOG ("computed <pid> <written>", "committed <pid> <written>"), so
the test knows which process to kill and when.
"""

import os
import time

from django.db import transaction

from targets.attainment import services as attainment

_real = attainment.attainment_recompute


def _log(line: str) -> None:
    with open(os.environ["SLOW_RECOMPUTE_LOG"], "a") as log:
        log.write(line + "\n")


def slow_attainment_recompute(**kwargs) -> int:
    with transaction.atomic():
        written = _real(**kwargs)
        _log(f"computed {os.getpid()} {written}")
        time.sleep(float(os.environ.get("SLOW_RECOMPUTE_SECONDS", "3")))
    _log(f"committed {os.getpid()} {written}")
    return written


# targets.tasks imports the service when the task runs, so it finds this one.
attainment.attainment_recompute = slow_attainment_recompute
