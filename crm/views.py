"""Customer screens: list with filters, create, detail with contacts and 5-star rating, export.

Thin views: the form validates, the service writes, the selector reads. Every customer is
fetched from `Customer.objects.visible_to(request.user)`, so anything else is a 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import selectors, services
from crm.forms import ContactForm, CustomerFilterForm, CustomerForm, RatingForm, add_service_errors
from crm.models import Customer, Region, Role
from salesmgmt.views import filter_form, is_partial, page_query, tabular_response

PAGE_SIZE = 25


def _filters(request) -> tuple[CustomerFilterForm, dict]:
    return filter_form(CustomerFilterForm, request)


@login_required
@require_GET
def customer_list(request):
    form, filters = _filters(request)
    qs = selectors.customer_list(request.user, filters)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "query": page_query(request)}
    template = "crm/_customer_results.html" if is_partial(request, "customer-results") else "crm/customer_list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_GET
def customer_export(request, fmt):
    _form, filters = _filters(request)
    qs = selectors.customer_list(request.user, filters)
    return tabular_response(fmt, "customers", selectors.customer_export_header(), selectors.customer_export_rows(qs))


@login_required
def customer_create(request):
    form = CustomerForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_create(**form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Customer “%(name)s” created.") % {"name": customer.name})
            return redirect("crm:customer_detail", pk=customer.pk)
    return render(request, "crm/customer_form.html", {"form": form})


def _visible_customer(request, pk):
    return get_object_or_404(selectors.customers_visible(request.user), pk=pk)


def _render_detail(request, customer, *, contact_form=None, rating_form=None, status=200):
    ratings = selectors.customer_ratings(customer)
    context = {
        "customer": customer,
        "deals": selectors.customer_deals(request.user, customer),
        "activities": selectors.customer_activities(request.user, customer)[:50],
        "contacts": customer.contacts.all(),
        "ratings": ratings,
        "latest_rating": ratings[0] if ratings else None,
        "contact_form": contact_form or ContactForm(),
        "rating_form": rating_form or RatingForm(),
    }
    return render(request, "crm/customer_detail.html", context, status=status)


@login_required
@require_GET
def customer_detail(request, pk):
    return _render_detail(request, _visible_customer(request, pk))


@login_required
@require_POST
def contact_add(request, pk):
    customer = _visible_customer(request, pk)
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            services.contact_create(customer=customer, **form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Contact added."))
            return redirect("crm:customer_detail", pk=customer.pk)
    return _render_detail(request, customer, contact_form=form)


@login_required
@require_POST
def customer_rate(request, pk):
    customer = _visible_customer(request, pk)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            services.customer_rate(customer=customer, **form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Rating saved."))
            return redirect("crm:customer_detail", pk=customer.pk)
    return _render_detail(request, customer, rating_form=form)


# --- search pickers: the matches a SearchSelect lists (crm.forms) ----------------------------------


def _pick_options(request, rows, *, detail, empty_text):
    """The first PICK_LIMIT `rows` as options (label, and `detail` to tell namesakes apart); a note when more
    match, so the user types more rather than scrolls."""
    rows = list(rows[: selectors.PICK_LIMIT + 1])
    context = {
        "options": [{"pk": row.pk, "label": str(row), "detail": detail(row)} for row in rows[: selectors.PICK_LIMIT]],
        "more": len(rows) > selectors.PICK_LIMIT,
        "empty_text": empty_text,
    }
    return render(request, "crm/_pick_options.html", context)


@login_required
@require_GET
def pick_people(request):
    """People of the user's scope matching `q`, narrowed as the asking field narrows them (`role`s, `within` a
    region's subtree): the list offers what the form accepts, never anyone outside the scope."""
    roles = [role for role in request.GET.getlist("role") if role in Role.values]
    within_id = request.GET.get("within", "")
    within = Region.objects.filter(pk=within_id).first() if within_id.isdigit() else None
    people = selectors.pickable_people(request.user, roles=roles, within=within)
    return _pick_options(
        request,
        selectors.people_matching(people, request.GET.get("q", "")),
        detail=lambda person: " · ".join(filter(None, [person.username, person.region and person.region.name])),
        empty_text=_("Nobody you may choose matches."),
    )


@login_required
@require_GET
def pick_customers(request):
    """Customers the user may see matching `q`."""
    return _pick_options(
        request,
        selectors.customers_matching(Customer.objects.visible_to(request.user), request.GET.get("q", "")),
        detail=lambda customer: customer.region.name,
        empty_text=_("No customer you may see matches."),
    )
