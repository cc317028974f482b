"""factory_boy factories. Regions go through the service so their materialised paths are right."""

from datetime import date
from decimal import Decimal

import factory

from crm.models import Currency, Customer, Product, ProductLine, Region, RegionKind, Role, Tier, User
from crm.services import region_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    role = Role.REP
    password = factory.django.Password("pw-test-123")


def make_region(name, code, parent=None, kind=RegionKind.TEAM, manager=None) -> Region:
    return region_create(name=name, code=code, kind=kind, parent=parent, manager=manager)


class ProductLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductLine
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"PL{n}")
    name = factory.Sequence(lambda n: f"Line {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("code",)

    line = factory.SubFactory(ProductLineFactory)
    code = factory.Sequence(lambda n: f"P{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    list_price = Decimal("1000")
    unit_cost = Decimal("600")


class CurrencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Currency
        django_get_or_create = ("code",)

    code = "CNY"
    name = "Renminbi"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    owner = factory.SubFactory(UserFactory)
    region = factory.LazyAttribute(lambda o: o.owner.region)
    tier = Tier.B


def make_deal(*, owner, customer=None, amount="1000", stage=None, close=date(2026, 6, 30), **kwargs):
    """A deal created through the service (history, conversion and region as in production)."""
    from pipeline.services import opportunity_create

    customer = customer or CustomerFactory(owner=owner, region=owner.region)
    return opportunity_create(
        name=kwargs.pop("name", f"Deal for {customer.name}"),
        customer=customer,
        owner=owner,
        amount=Decimal(amount),
        expected_close_date=close,
        stage=stage,
        actor=kwargs.pop("actor", owner),
        **kwargs,
    )


def deal_edit_data(deal, **changes) -> dict:
    """The deal page's edit form as it posts `deal` unchanged, with `changes` on top."""
    data = {
        "version": deal.version,
        "name": deal.name,
        "customer": deal.customer_id,
        "owner": deal.owner_id,
        "amount": str(deal.amount),
        "currency": deal.currency_id,
        "expected_close_date": deal.expected_close_date.isoformat(),
        "probability": deal.probability,
        "probability_reason": deal.probability_reason,
        "forecast_category": deal.forecast_category,
        "next_step": deal.next_step,
        "next_step_date": "",
        "star_rating": "",
    }
    return {**data, **changes}
