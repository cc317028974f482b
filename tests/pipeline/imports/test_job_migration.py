"""The wizard's jobs moved from `crm` to `pipeline` (issue 11): a job recorded before the move is read after it
through `pipeline.models.ImportJob`, and a permission given on imports still grants them."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from pipeline.models import ImportJob, ImportStatus

BEFORE_THE_MOVE = [("crm", "0002_company_settings_closed_period"), ("pipeline", "0002_deals_credited_to_owner_team")]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    executor.loader.build_graph()
    return executor


@pytest.fixture
def before_the_move(transactional_db):
    """The apps as they were before the move, on a database migrated back to then; migrated forward after."""
    executor = _migrate(BEFORE_THE_MOVE)
    yield executor.loader.project_state(BEFORE_THE_MOVE).apps
    _migrate(None)


def test_a_job_recorded_before_the_move_is_kept_with_its_permissions(before_the_move):
    OldUser = before_the_move.get_model("crm", "User")
    OldJob = before_the_move.get_model("crm", "ImportJob")
    OldPermission = before_the_move.get_model("auth", "Permission")
    OldGroup = before_the_move.get_model("auth", "Group")
    owner = OldUser.objects.create(username="importer")
    old = OldJob.objects.create(
        kind="won_deals",
        status="done",
        file="imports/2026/12/deals.csv",
        original_name="deals.csv",
        mapping={"Deal": "external_id"},
        total_rows=4,
        processed_rows=4,
        created_by=owner,
    )
    importers = OldGroup.objects.create(name="importers")
    importers.permissions.add(OldPermission.objects.get(content_type__app_label="crm", codename="view_importjob"))

    _migrate(None)

    job = ImportJob.objects.get(pk=old.pk)
    assert (job.status, job.original_name, job.mapping, job.progress_percent) == (
        ImportStatus.DONE,
        "deals.csv",
        {"Deal": "external_id"},
        100,
    )
    assert job.created_by.username == "importer" and list(job.created_by.imports.all()) == [job]
    assert [(p.content_type.app_label, p.codename) for p in Group.objects.get(name="importers").permissions.all()] == [
        ("pipeline", "view_importjob")
    ]
    assert (
        ImportJob.objects.create(
            kind="customers", file="imports/x.csv", original_name="x.csv", created_by=job.created_by
        ).pk
        > old.pk
    )
