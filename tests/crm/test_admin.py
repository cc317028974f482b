"""Django admin of the organisation: customers save through the services (checked, audited); the company
currency every amount was converted into is not editable."""

from django.urls import reverse

from crm.models import AuditLog, CompanySettings, Customer
from tests.factories import CustomerFactory


def test_a_customer_changed_in_admin_is_saved_through_the_service_and_audited(org, client_for):
    customer = CustomerFactory(owner=org.rep, region=org.sh, name="Acme")
    data = {
        "name": "Acme Ltd",
        "region": org.sh.pk,
        "owner": org.rep_same_team.pk,
        "industry": "",
        "tier": customer.tier,
        "notes": "",
        "contacts-TOTAL_FORMS": "0",
        "contacts-INITIAL_FORMS": "0",
        "contacts-MIN_NUM_FORMS": "0",
        "contacts-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    url = reverse("admin:crm_customer_change", args=[customer.pk])
    response = client_for(org.admin).post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    customer = Customer.objects.get(pk=customer.pk)
    assert (customer.name, customer.owner) == ("Acme Ltd", org.rep_same_team)
    audit = AuditLog.objects.get(action="customer.update", object_id=str(customer.pk))
    assert audit.actor == org.admin
    assert audit.changes["owner"] == [str(org.rep), str(org.rep_same_team)]


def test_the_company_currency_is_read_only_in_admin(org, client_for):
    url = reverse("admin:crm_companysettings_change", args=[org.company.pk])
    data = {"fiscal_year_start_month": 1, "currency": "USD", "closed_period": "quarter", "_save": "Save"}
    assert client_for(org.admin).post(url, data).status_code == 302
    company = CompanySettings.load()
    assert (company.currency, company.closed_period) == ("CNY", "quarter")
