"""The bulk services (`region_bulk_create`, `product_line_bulk_create`, `product_bulk_create`) leave what the
one-at-a-time services leave: materialised paths and depths from the parent, the same checks and audit rows,
and nothing at all when one record is bad."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError

from crm.models import AuditLog, Product, ProductLine, Region, RegionKind
from crm.scopes import visible_regions
from crm.services import product_bulk_create, product_line_bulk_create, region_bulk_create
from tests.factories import ProductFactory, ProductLineFactory


def _walked_path(region: Region) -> str:
    """The path by walking the parents in the database, independently of how it was stored."""
    ids = []
    node: Region | None = region
    while node is not None:
        ids.append(node.pk)
        node = Region.objects.filter(pk=node.parent_id).first() if node.parent_id else None
    return "/" + "".join(f"{pk}/" for pk in reversed(ids))


def test_a_tree_of_regions_gets_its_paths_depths_and_audit_rows(org):
    # Listed children first: the service orders the levels itself.
    west = Region(name="West", code="WEST", kind=RegionKind.AREA, parent=org.north)
    california = Region(name="California", code="CA", parent=west)
    oregon = Region(name="Oregon", code="OR", parent=west)
    la = Region(name="Los Angeles", code="LA", parent=california)
    top = Region(name="Elsewhere", code="ELSEWHERE", kind=RegionKind.COMPANY)  # a second root
    created = region_bulk_create(regions=[la, oregon, california, west, top], actor=org.director)

    assert [r.pk is not None for r in created] == [True] * 5
    for region in created:
        stored = Region.objects.get(pk=region.pk)
        assert stored.path == _walked_path(stored) == region.path
        assert stored.depth == stored.path.count("/") - 2 == region.depth
    assert Region.objects.get(pk=la.pk).parent_id == california.pk
    assert (Region.objects.get(pk=west.pk).depth, Region.objects.get(pk=la.pk).depth) == (2, 4)
    assert Region.objects.get(pk=top.pk).path == f"/{top.pk}/"
    # The subtree queries see them: North's manager's scope takes in the whole new tree.
    assert {la.pk, oregon.pk, california.pk, west.pk} <= set(
        visible_regions(org.manager_north).values_list("pk", flat=True)
    )

    region_type = ContentType.objects.get_for_model(Region)
    audits = AuditLog.objects.filter(action="region.create", content_type=region_type)
    by_object = {a.object_id: a for a in audits}
    for region in created:
        entry = by_object[str(region.pk)]
        assert (entry.actor, entry.changes) == (org.director, {"name": [None, region.name]})


def test_a_code_taken_in_the_database_or_twice_in_the_batch_writes_nothing(org):
    before = Region.objects.count()
    with pytest.raises(ValidationError) as taken:
        region_bulk_create(regions=[Region(name="Again", code="NORTH", parent=org.hq)])
    assert "NORTH" in str(taken.value) and "already exists" in str(taken.value)
    twice = [Region(name="A", code="DUP", parent=org.hq), Region(name="B", code="DUP", parent=org.hq)]
    with pytest.raises(ValidationError, match="DUP"):
        region_bulk_create(regions=twice)
    with pytest.raises(ValidationError):
        region_bulk_create(regions=[Region(name="x" * 121, code="LONG", parent=org.hq)])
    assert Region.objects.count() == before
    assert not AuditLog.objects.filter(action="region.create", changes__name__1__in=["Again", "A", "B"]).exists()


def test_lines_with_sub_lines_and_their_products(org):
    existing = ProductLineFactory(code="HW", name="Hardware")
    furniture = ProductLine(name=" Furniture ", code="FUR")
    chairs = ProductLine(name="Chairs", code="FUR-CH", parent=furniture)
    racks = ProductLine(name="Racks", code="HW-RK", parent=existing)
    product_line_bulk_create(lines=[chairs, racks, furniture], actor=org.admin)
    assert furniture.name == "Furniture"  # stripped, as product_line_create does
    assert ProductLine.objects.get(pk=chairs.pk).parent == ProductLine.objects.get(name="Furniture")
    assert ProductLine.objects.get(pk=racks.pk).parent == existing

    products = [Product(line=chairs, name=f"Chair {n}", code=f"CH-{n}") for n in range(3)]
    product_bulk_create(products=products, actor=org.admin)
    assert set(Product.objects.filter(line=chairs).values_list("name", flat=True)) == {"Chair 0", "Chair 1", "Chair 2"}
    product_type = ContentType.objects.get_for_model(Product)
    audits = AuditLog.objects.filter(action="product.create", content_type=product_type, actor=org.admin)
    assert sorted(audits.values_list("object_id", flat=True)) == sorted(str(p.pk) for p in products)
    line_audits = AuditLog.objects.filter(action="product_line.create", actor=org.admin)
    assert {a.changes["name"][1] for a in line_audits} == {"Furniture", "Chairs", "Racks"}


def test_a_product_name_or_code_already_taken_writes_nothing(org):
    line = ProductLineFactory(code="HW", name="Hardware")
    ProductFactory(line=line, name="Server X1", code="SRV")
    before = (Product.objects.count(), AuditLog.objects.count())
    for bad in (Product(line=line, name="Server X1", code="NEW"), Product(line=line, name="New", code="SRV")):
        with pytest.raises(ValidationError, match="already exists"):
            product_bulk_create(products=[Product(line=line, name="Fine", code="FINE"), bad])
    with pytest.raises(ValidationError):
        product_bulk_create(products=[Product(line=line, name="Cheap", code="CHEAP", list_price=-1)])
    assert (Product.objects.count(), AuditLog.objects.count()) == before
