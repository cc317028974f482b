"""Query-string filters and ordering of the customer list."""

from crm.models import Tier
from pipeline.services import opportunity_move_stage
from tests.conftest import ids, results
from tests.factories import CustomerFactory


def test_customer_filters(org, deals, api):
    manager = api(org.manager)
    key = CustomerFactory(owner=org.rep, region=org.sh, tier=Tier.KEY, name="Zenith Steel")
    existing = deals["rep"]
    opportunity_move_stage(opportunity=existing, stage=org.stages[4], evidence="PO", actor=org.rep)

    assert ids(manager.get(f"/api/customers/?region={org.sh.pk}")) == {
        key.pk,
        deals["rep"].customer_id,
        deals["rep_sh2"].customer_id,
    }
    assert ids(manager.get(f"/api/customers/?owner={org.rep_js.pk}")) == {deals["rep_js"].customer_id}
    assert ids(manager.get("/api/customers/?tier=KA")) == {key.pk}
    assert ids(manager.get("/api/customers/?segment=existing")) == {existing.customer_id}
    assert existing.customer_id not in ids(manager.get("/api/customers/?segment=new"))
    assert ids(manager.get("/api/customers/?search=zenith")) == {key.pk}
    names = [row["name"] for row in results(manager.get("/api/customers/?ordering=-name"))]
    assert names == sorted(names, reverse=True)
