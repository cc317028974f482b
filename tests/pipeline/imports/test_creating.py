"""What an import creates with "create missing" is written in bulk (`pipeline.importing.creating`): the regions
of a Region -> State -> City file with the paths, parents and depths `region_create` would give them, an audit
row for every created record as the one-at-a-time services write, and a number of queries that does not grow
with the number of records."""

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import AuditLog, Customer, Product, ProductLine, Region, RegionKind
from pipeline import importing
from pipeline.importing import ImportOptions, import_validate
from pipeline.importing.creating import create_missing
from pipeline.models import ImportKind, ImportStatus, Opportunity
from tests.conftest import csv_bytes

HEADER = ["Row ID", "Order Date", "Customer Name", "City", "State", "Region", "Category", "Sub-Category"]
HEADER += ["Product Name", "Sales"]


def _row(n, region, state, city, customer="Acme", product="Chair", category="Furniture", sub="Chairs"):
    return [f"C-{n}", "11/25/2016", customer, city, state, region, category, sub, product, "10.005"]


def _commit(org, rows, actor):
    """Through the wizard's steps: upload, check with "create missing" and a default owner, commit."""
    job = importing.import_job_create(
        kind=ImportKind.WON_DEALS, data=csv_bytes([HEADER, *rows]), filename="orders.csv", actor=actor
    )
    options = {"create_missing": True, "default_owner_id": org.rep.pk}
    plan = importing.import_job_validate(job=job, mapping=job.mapping, options=options, actor=actor)
    assert not plan.errors, plan.errors
    done = importing.import_job_commit(job_id=job.pk)
    assert done is not None and done.status == ImportStatus.DONE, done and done.result
    return done


def test_created_regions_have_the_paths_parents_and_depths_of_the_tree(org):
    before = set(Region.objects.values_list("pk", flat=True))
    rows = [
        _row(1, "West", "California", "Los Angeles", customer="LA Co"),
        _row(2, "West", "California", "San Francisco", customer="SF Co"),
        _row(3, "West", "Oregon", "Portland", customer="Portland Co"),
        _row(4, "East", "New York", "New York City", customer="NY Co"),  # East: his own area, matched; below, new
        _row(5, "North", "Hebei", "Baoding", customer="Baoding Co"),  # not the company's North: a new one under East
    ]
    _commit(org, rows, org.manager)

    created = {r.pk: r for r in Region.objects.exclude(pk__in=before)}
    names = sorted(r.name for r in created.values())
    assert names == sorted(
        ["West", "California", "Los Angeles", "San Francisco", "Oregon", "Portland", "New York", "New York City"]
        + ["North", "Hebei", "Baoding"]
    )
    everything = {r.pk: r for r in Region.objects.all()}
    for region in created.values():
        parent = everything[region.parent_id]
        assert region.path == f"{parent.path}{region.pk}/"
        assert region.depth == parent.depth + 1
        assert region.path.startswith(org.east.path)  # inside the importer's subtree
        assert region.kind == (RegionKind.AREA if parent.depth == 0 else RegionKind.TEAM)

    def at(*names):
        region = org.east
        for name in names:
            region = Region.objects.get(parent=region, name=name)
        return region

    assert at("West", "California", "Los Angeles").depth == org.east.depth + 3
    assert at("New York", "New York City").parent == at("New York")
    assert at("North", "Hebei", "Baoding").path.startswith(org.east.path)
    assert list(Region.objects.filter(parent=org.north)) == [org.bj]
    # The subtree queries (a materialised path prefix) find the new regions and what sits in them.
    la = at("West", "California", "Los Angeles")
    assert Region.objects.filter(path__startswith=at("West").path).count() == 6
    in_la = Customer.objects.visible_to(org.manager).filter(region__path__startswith=la.path)
    assert list(in_la.values_list("name", flat=True)) == ["LA Co"]
    assert Opportunity.objects.visible_to(org.manager).count() == len(rows)


def test_every_created_record_has_its_audit_row(org):
    before = {m: set(m.objects.values_list("pk", flat=True)) for m in (Region, ProductLine, Product, Customer)}
    rows = [
        _row(1, "West", "California", "Los Angeles", customer="Claire Gute", product="Bookcase", sub="Bookcases"),
        _row(2, "West", "Oregon", "Portland", customer="Brosina Hoffman", product="Stapler", category="Office"),
    ]
    job = _commit(org, rows, org.manager)
    expected = {
        Region: "region.create",
        ProductLine: "product_line.create",
        Product: "product.create",
        Customer: "customer.create",
    }
    for model, action in expected.items():
        created = model.objects.exclude(pk__in=before[model])
        assert created.exists()
        audits = AuditLog.objects.filter(content_type=ContentType.objects.get_for_model(model), action=action)
        by_object = {a.object_id: a for a in audits}
        for obj in created:
            entry = by_object[str(obj.pk)]  # one row per created record, as region_create etc. write
            changes = {"name": [None, obj.name]}
            if model is Customer:
                changes["import_job"] = job.pk  # the customers an import creates name it, as before
            assert (entry.actor, entry.changes) == (org.manager, changes)
        assert audits.filter(object_id__in=[str(obj.pk) for obj in created]).count() == created.count()
    assert job.result["created"] == {
        "regions": 5,
        "product_lines": 4,
        "products": 2,
        "customers": 2,
        "opportunities": 2,
    }


def _creating_queries(org, n: int, prefix: str) -> int:
    """The queries of `create_missing` for a file of n deals, each with its own new customer, product, city and
    sub-category (under three new states of a new region, and one new category)."""
    rows = [
        _row(
            i,
            f"{prefix} West",
            f"{prefix} state {i % 3}",
            f"{prefix} city {i}",
            f"{prefix} customer {i}",
            f"{prefix} {i}",
        )
        for i in range(n)
    ]
    rows = [[f"{prefix}-{i}", *r[1:6], f"{prefix} category", f"{prefix} sub {i}", *r[8:]] for i, r in enumerate(rows)]
    table = importing.read_upload(csv_bytes([HEADER, *rows]), "orders.csv")
    mapping = importing.guess_mapping(table.headers, ImportKind.WON_DEALS)
    options = ImportOptions(create_missing=True, default_owner_id=org.rep.pk)
    plan = import_validate(table=table, kind=ImportKind.WON_DEALS, mapping=mapping, options=options, actor=org.manager)
    assert not plan.errors and plan.will_create["products"] == n
    ContentType.objects.clear_cache()  # each run looks its content types up: the same work
    with CaptureQueriesContext(connection) as queries:
        created = create_missing(plan=plan, actor=org.manager)
    assert created == {"regions": 1 + 3 + n, "product_lines": 1 + n, "products": n, "users": 0, "customers": n}
    assert Product.objects.filter(name__startswith=prefix).count() == n
    return len(queries)


def test_creating_more_records_takes_no_more_queries(org):
    few = _creating_queries(org, 3, "A")
    many = _creating_queries(org, 60, "B")  # 20 times the products, customers, cities and lines
    assert many == few, (few, many)
    # A few per kind and tree level (3 levels of regions, 2 of lines, products, customers), savepoints included;
    # one at a time (before bulk creation) it took several per record.
    assert many <= 40
