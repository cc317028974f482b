"""Test-only: loaded into a worker with `-I tests.integration.slow_recompute` by test_worker_crash.py.

It makes the real `targets.recompute_plan` slow where a crash hurts most: the figures are computed and
written, then the transaction stays open for SLOW_RECOMPUTE_SECONDS before it commits. Each step is
appended to the file SLOW_RECOMPUTE_LOG ("computed <pid> <written>", "committed <pid> <written>"), so
the test knows which process to kill and when.

The alert evaluation (`targets.evaluate_alerts`) likewise, when SLOW_ALERTS_SECONDS is set: its transaction
stays open that long ("evaluated <pid> <changed>"), and after its commit the task waits as long again before
it returns, and so before its message is acknowledged ("evaluation-committed <pid> <changed>").
"""

import os
import time

from django.db import transaction

from targets.alerts import evaluation
from targets.attainment import services as attainment

_real = attainment.attainment_recompute
_real_evaluate = evaluation.evaluate_alerts


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


def slow_evaluate_alerts(*args, **kwargs) -> int:
    pause = float(os.environ.get("SLOW_ALERTS_SECONDS", "0"))
    with transaction.atomic():
        changed = _real_evaluate(*args, **kwargs)
        _log(f"evaluated {os.getpid()} {changed}")
        time.sleep(pause)
    _log(f"evaluation-committed {os.getpid()} {changed}")
    time.sleep(pause)  # committed, not yet acknowledged
    return changed


# targets.tasks imports the evaluation when the task runs, so it finds this one.
evaluation.evaluate_alerts = slow_evaluate_alerts
