"""One world per module (built once, rolled back at the end), at a frozen moment in June 2026."""

import pytest
import time_machine
from django.db import transaction
from django.test import override_settings

from tests.access.world import NOW, build_world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("access-media")
    with (
        time_machine.travel(NOW, tick=False),
        override_settings(MEDIA_ROOT=str(media)),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture
def frozen(world):
    """The tests' own clock: the world's moment (time_machine does not carry a module's travel into tests)."""
    with time_machine.travel(NOW, tick=False):
        yield
