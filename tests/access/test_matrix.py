"""The access matrix (issue 16): every page and API operation × role × relation × verb.

For each case: nothing out of scope succeeds (a GET or a write on an object out of scope is a 403/404, a 405
for a method the endpoint does not take) and no response leaks a row (the marker of an object out of scope
never appears in the body, CSV and decoded XLSX included; API lists never return its id); a refused write
changes nothing in the database (a fingerprint of every app table before and after). Writes run in a
savepoint rolled back after the case, so every case starts from the same world.

Every URL pattern and every operation of the OpenAPI schema must be classified in `specs.py` (or exempted there
with a reason): a new endpoint fails `test_every_*_is_classified` until it joins the matrix.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections import Counter

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from openpyxl import load_workbook
from rest_framework.test import APIClient

from tests.access import specs
from tests.access.world import MARKED_KINDS as MARKED
from tests.access.world import RELATIONS, ROLES, expected_visible, marker

pytestmark = [pytest.mark.access, pytest.mark.django_db, pytest.mark.xdist_group("access")]

CASES: Counter = Counter()  # (verb, role) -> cases run
CREATED: set[str] = set()  # create endpoints whose payload worked for an object in scope (so it is well formed)
RAN: set[tuple[str, str]] = set()  # ("pages" or "api", role) run in this process
SEEN: set[str] = set()  # kinds whose in-scope marker showed in some response (the leak search finds markers)
REFUSED = (403, 404, 405)


def refused(response) -> bool:
    """A refusal: 403/404 (405 for a method the endpoint does not take), or a page sending the user home or to
    the login page with a message (the import wizard does so for reps: "Only managers ... may import data")."""
    if response.status_code in REFUSED:
        return True
    location = response.get("Location", "") if response.status_code == 302 else ""
    return location == reverse("home") or location.startswith(reverse("login"))


# Tables a refused write must leave alone: every model of the apps but the audit trail (a refusal may be logged).
FINGERPRINT_SKIP = {"crm.auditlog"}


def _walk(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + str(p.pattern), name


def site_patterns() -> list[tuple[str, str | None]]:
    return list(_walk(get_resolver().url_patterns))


def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    methods = ("get", "post", "put", "patch", "delete")
    return [(m, path) for path, ops in schema["paths"].items() for m in ops if m in methods]


def test_every_page_is_classified():
    unclassified = [
        (route, name)
        for route, name in site_patterns()
        if not any(route.startswith(prefix) for prefix in specs.PREFIX_EXEMPT)
        and name not in specs.PAGES
        and name not in specs.PAGE_EXEMPT
    ]
    assert unclassified == [], "URL patterns outside the access matrix: classify them in tests/access/specs.py"
    names = {name for _route, name in site_patterns()}
    assert set(specs.PAGES) - names == set(), "specs for pages that no longer exist"


def test_every_api_operation_is_classified():
    operations = set(api_operations())
    unclassified = sorted(operations - set(specs.API) - set(specs.API_EXEMPT))
    assert unclassified == [], "API operations outside the access matrix: classify them in tests/access/specs.py"
    assert set(specs.API) - operations == set(), "specs for API operations that no longer exist"


# --- reading responses ------------------------------------------------------------------------------------------


def body_text(response) -> str:
    """Everything a response says: its text, the cells of an XLSX (and its raw XML), streamed bodies too."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    kind = response.get("Content-Type", "")
    if content[:2] == b"PK" and ("spreadsheet" in kind or "excel" in kind or "zip" in kind or "octet" in kind):
        texts = []
        book = load_workbook(io.BytesIO(content), read_only=True)
        for sheet in book.worksheets:
            texts.append(sheet.title)
            for row in sheet.iter_rows(values_only=True):
                texts.extend(str(v) for v in row if v is not None)
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            texts.extend(archive.read(n).decode("utf-8", "replace") for n in archive.namelist() if n.endswith(".xml"))
        return "\n".join(texts)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def leaks(world, role: str, relation: str, text: str) -> list[str]:
    """The markers of objects of `relation`'s owner that `role` may not see and that show in `text`."""
    _acting, relations = ROLES[role]
    owner = relations[relation]
    found = []
    SEEN.update(
        kind
        for kind, by_owner in world.objects.items()
        if kind in MARKED and owner in by_owner and expected_visible(kind, role, owner) and marker(kind, owner) in text
    )
    for kind, by_owner in world.objects.items():
        hidden = owner in by_owner and kind in MARKED and not expected_visible(kind, role, owner)
        if hidden and marker(kind, owner) in text:
            found.append(marker(kind, owner))
    return found


def fingerprint() -> str:
    digest = hashlib.sha256()
    for model in apps.get_models():
        if model._meta.app_label not in ("crm", "pipeline", "targets", "coaching"):
            continue
        if model._meta.label_lower in FINGERPRINT_SKIP or not model._meta.managed or model._meta.proxy:
            continue
        digest.update(model._meta.label_lower.encode())
        for row in model.objects.order_by("pk").values_list():
            digest.update(repr(row).encode())
    return digest.hexdigest()


_last_state: list[str] = []  # the fingerprint of the state every write starts from (each is rolled back)


def attempt_write(send):
    """Run a write in a savepoint rolled back afterwards: (response, whether the database changed).

    The state before a write is the state after the previous one's rollback: its fingerprint is kept, and taken
    again (after this rollback) only when the state after the write differs from it."""
    if not _last_state:
        _last_state.append(fingerprint())
    with transaction.atomic():
        response = send()
        after = fingerprint()
        transaction.set_rollback(True)
    if after != _last_state[0]:
        _last_state[0] = fingerprint()  # the state before this write (a GET since may have changed it)
    return response, after != _last_state[0]


def clients(world):
    pages, api = {}, {}
    for role, (tag, _relations) in ROLES.items():
        pages[role] = Client()
        pages[role].force_login(world.users[tag])
        api[role] = APIClient()
        api[role].force_authenticate(world.users[tag])
    return pages, api


def objects_of(world, kind, role):
    """(relation, owner, object, expected visible) for each relation whose owner has an object of `kind`."""
    _acting, relations = ROLES[role]
    for relation in RELATIONS:
        owner = relations[relation]
        obj = world.get(kind, owner)
        if obj is not None:
            yield relation, owner, obj, expected_visible(kind, role, owner)


# --- pages ------------------------------------------------------------------------------------------------------


PAGE_CASES_FLOOR, API_CASES_FLOOR = 500, 250  # a role's pages and API each run at least this many cases


@pytest.mark.parametrize("role", list(ROLES))
def test_pages(world, frozen, role):
    RAN.add(("pages", role))
    before = sum(n for (_verb, r), n in CASES.items() if r == role)
    page_clients, _api = clients(world)
    client = page_clients[role]
    failures: list[str] = []
    for name, spec in specs.PAGES.items():
        get_verbs = [v for v in spec.verbs if v in specs.GET_VERBS]
        write_verbs = [v for v in spec.verbs if v in specs.WRITE_VERBS]
        if spec.kind is None:
            url = reverse(name)
            if get_verbs:
                for headers, query in [(h, q) for q in spec.queries for h in ({}, {"HX-Request": "true"})]:
                    response = client.get(url, query, headers=headers)
                    if response.status_code >= 500:
                        failures.append(f"{role} GET {url} {headers}: {response.status_code}")
                        continue
                    text = body_text(response)
                    for relation in RELATIONS:
                        for verb in get_verbs:
                            CASES[(verb, role)] += 1
                        if found := leaks(world, role, relation, text):
                            failures.append(f"{role} GET {url} {headers} leaks {relation}: {found}")
                for relation in RELATIONS:  # filters naming someone else's team, rep, customer, plan or target
                    response = client.get(url, {**spec.queries[-1], **filters_of(world, role, relation)})
                    for verb in get_verbs:
                        CASES[(verb, role)] += 1
                    if response.status_code >= 500:
                        failures.append(f"{role} GET {url} filtered on {relation}: {response.status_code}")
                    elif found := leaks_any(world, role, body_text(response)):
                        failures.append(f"{role} GET {url} filtered on {relation} leaks {found}")
            for verb, relation, data, visible in page_create_payloads(world, name, role):
                response, changed = attempt_write(lambda: client.post(url, data))  # noqa: B023
                CASES[(verb, role)] += 1
                if visible and changed:
                    CREATED.add(name)
                if not visible and changed:
                    failures.append(f"{role} POST {url} ({relation}, out of scope) wrote: {response.status_code}")
                if response.status_code >= 500:
                    failures.append(f"{role} POST {url} ({relation}): {response.status_code}")
            continue
        for relation, _owner, obj, visible in objects_of(world, spec.kind, role):
            url = reverse(name, kwargs=spec.kwargs(obj, world))
            for query in spec.queries if get_verbs else ():
                response = client.get(url, query)
                for verb in get_verbs:
                    CASES[(verb, role)] += 1
                status = response.status_code
                if status >= 500:
                    failures.append(f"{role} GET {url} ({relation}): {status}")
                elif not visible and not refused(response):
                    failures.append(f"{role} GET {url} ({relation}, out of scope): {status}")
                elif visible and status in (403, 404) and "detail" in get_verbs and spec.kind not in SEE_NOT_OPEN:
                    failures.append(f"{role} GET {url} ({relation}, in scope): {status}")
                if status < 400 and (found := leaks_any(world, role, body_text(response))):
                    failures.append(f"{role} GET {url} ({relation}) leaks {found}")
            for verb in write_verbs:
                response, changed = attempt_write(lambda: client.post(url, {}))  # noqa: B023
                CASES[(verb, role)] += 1
                status = response.status_code
                if status >= 500:
                    failures.append(f"{role} POST {url} ({relation}): {status}")
                elif not visible and (not refused(response) or changed):
                    failures.append(f"{role} POST {url} ({relation}, out of scope): {status}, changed={changed}")
    assert failures == [], "\n".join(failures)
    assert sum(n for (_verb, r), n in CASES.items() if r == role) - before >= PAGE_CASES_FLOOR


# Kinds a user may see (in lists, as a link) yet a page may still refuse to open for his role: e.g. a rep's
# own target is his, but the editor's node page is for planners.
SEE_NOT_OPEN = {"node", "rule", "plan", "alert", "notification", "item", "commitment", "won", "import"}


def filters_of(world, role: str, relation: str) -> dict[str, int]:
    """Query parameters naming the relation's owner's things, as the pages' and the API's filters spell them."""
    owner = ROLES[role][1][relation]
    user = world.users[owner]
    params = {"team": user.region_id, "region": user.region_id, "customer_region": user.region_id}
    params.update({"rep": user.pk, "owner": user.pk, "user": user.pk})
    for param, kind in (("customer", "customer"), ("plan", "plan"), ("node", "node"), ("opportunity", "deal")):
        if (obj := world.get(kind, owner)) is not None:
            params[param] = obj.pk
    if "plan" not in params:
        params["plan"] = world.company_plan.pk
    return params


def leaks_any(world, role: str, text: str) -> list[str]:
    return [found for relation in RELATIONS for found in leaks(world, role, relation, text)]


def page_create_payloads(world, name, role):
    """POSTs of a create page naming an object of each relation (a deal for someone's customer...)."""
    if name not in PAGE_CREATES:
        return
    kind, build = PAGE_CREATES[name]
    for relation, _owner, obj, visible in objects_of(world, kind, role):
        yield "create", relation, build(obj), visible


PAGE_CREATES = {
    "pipeline:deal_create": (
        "customer",
        lambda c: {
            "name": "X",
            "customer": c.pk,
            "amount": "10",
            "currency": "CNY",
            "expected_close_date": "2026-07-01",
        },
    ),
    "pipeline:activity_new": (
        "deal",
        lambda d: {"opportunity": d.pk, "customer": d.customer_id, "kind": "call", "date": "2026-06-15"},
    ),
}


# --- the API ----------------------------------------------------------------------------------------------------

# The kind of the rows of an API list (their ids must all be in scope).
API_LIST_KIND = {
    "/api/customers/": "customer",
    "/api/activities/": "activity",
    "/api/collections/": "collection",
    "/api/action-plans/": "action",
    "/api/alerts/": "alert",
    "/api/target-nodes/": "node",
    "/api/target-adjustments/": "adjustment",
    "/api/review/action-items/": "item",
    "/api/review/coaching-sessions/": "session",
    "/api/review/commitments/": "commitment",
    "/api/review/forecasts/": "forecast",
    "/api/review/meetings/": "meeting",
    "/api/users/": "user",
}


def api_rows(payload) -> list:
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        return payload["results"]
    return payload if isinstance(payload, list) else []


@pytest.mark.parametrize("role", list(ROLES))
def test_api(world, frozen, role):
    RAN.add(("api", role))
    before = sum(n for (_verb, r), n in CASES.items() if r == role)
    _pages, api_clients = clients(world)
    client = api_clients[role]
    failures: list[str] = []
    for (method, path), (verb, kind) in specs.API.items():
        if kind is None and method == "get":
            response = client.get(path, {"page_size": 200})
            if response.status_code >= 500:
                failures.append(f"{role} GET {path}: {response.status_code}")
                continue
            text = body_text(response)
            ids = set()
            if path in API_LIST_KIND and response.status_code == 200:
                ids = {row.get("id") for row in api_rows(response.json()) if isinstance(row, dict)}
            for relation in RELATIONS:
                filtered = client.get(path, {"page_size": 200, **filters_of(world, role, relation)})
                CASES[(verb, role)] += 2
                if filtered.status_code >= 500:
                    failures.append(f"{role} GET {path} filtered on {relation}: {filtered.status_code}")
                elif found := leaks_any(world, role, body_text(filtered)):
                    failures.append(f"{role} GET {path} filtered on {relation} leaks {found}")
                if found := leaks(world, role, relation, text):
                    failures.append(f"{role} GET {path} leaks {relation}: {found}")
                if path in API_LIST_KIND:
                    kind_of_rows = API_LIST_KIND[path]
                    owner = ROLES[role][1][relation]
                    obj = world.get(kind_of_rows, owner)
                    if obj is not None and not expected_visible(kind_of_rows, role, owner) and obj.pk in ids:
                        failures.append(f"{role} GET {path} lists {kind_of_rows} of {relation} (id {obj.pk})")
            continue
        if kind is None:
            for relation, data, visible in api_create_payloads(world, path, role):
                response, changed = attempt_write(lambda: client.post(path, data, format="json"))  # noqa: B023
                CASES[(verb, role)] += 1
                if visible and changed:
                    CREATED.add(path)
                if response.status_code >= 500:
                    failures.append(f"{role} POST {path} ({relation}): {response.status_code}")
                elif not visible and (response.status_code < 400 or changed):
                    failures.append(f"{role} POST {path} ({relation}, out of scope): {response.status_code} {changed}")
            continue
        if kind == "public":
            continue  # catalogue rows everyone reads (regions, products, pipelines): tests/crm/api cover their writes
        for relation, _owner, obj, visible in objects_of(world, kind, role):
            url = path.replace("{id}", str(obj.pk))
            send = getattr(client, method)
            if method == "get":
                response = send(url)
                changed = False
            else:
                response, changed = attempt_write(lambda: send(url, {}, format="json"))  # noqa: B023
            CASES[(verb, role)] += 1
            status = response.status_code
            if status >= 500:
                failures.append(f"{role} {method.upper()} {url} ({relation}): {status}")
            elif not visible and (not refused(response) or changed):
                failures.append(
                    f"{role} {method.upper()} {url} ({relation}, out of scope): {status}, changed={changed}"
                )
            elif visible and method == "get" and verb == "detail" and status != 200:
                failures.append(f"{role} GET {url} ({relation}, in scope): {status}")
            if method == "get" and status < 400 and (found := leaks_any(world, role, body_text(response))):
                failures.append(f"{role} GET {url} ({relation}) leaks {found}")
    assert failures == [], "\n".join(failures)
    assert sum(n for (_verb, r), n in CASES.items() if r == role) - before >= API_CASES_FLOOR


def api_create_payloads(world, path, role):
    """POSTs creating a row under an object of each relation: (relation, data, whether that object is in scope)."""
    if path not in API_CREATES:
        return
    kind, build = API_CREATES[path]
    for relation, _owner, obj, visible in objects_of(world, kind, role):
        yield relation, build(obj), visible


API_CREATES = {
    "/api/activities/": (
        "deal",
        lambda d: {"opportunity": d.pk, "customer": d.customer_id, "kind": "call", "date": "2026-06-15"},
    ),
    "/api/collections/": ("won", lambda d: {"opportunity": d.pk, "received_on": "2026-06-15", "amount": "1.00"}),
    "/api/opportunities/": (
        "customer",
        lambda c: {"name": "X", "customer": c.pk, "amount": "10.00", "expected_close_date": "2026-07-01"},
    ),
    "/api/action-plans/": ("node", lambda n: {"node": n.pk, "activity": "X", "due_date": "2026-09-01"}),
    "/api/review/action-items/": (
        "meeting",
        lambda m: {"meeting": m.pk, "what": "X", "owner": m.created_by_id, "due_date": "2026-06-30"},
    ),
    "/api/review/commitments/": ("session", lambda s: {"session": s.pk, "what": "X", "due_date": "2026-06-30"}),
    "/api/review/coaching-sessions/": (
        "user",
        lambda u: {"rep": u.pk, "date": "2026-06-15", "focus_kind": "skill", "focus": "X"},
    ),
    "/api/target-adjustments/": (
        "plan",
        lambda p: {
            "plan": p.pk,
            "kind": "total_change",
            "reason": "X",
            "changes": [{"node": p.nodes.get().pk, "amount": "1100"}],
        },
    ),
}


def test_zz_summary(world, request):
    """The number of cases run (this module's tests run in order, on one worker: `xdist_group`)."""
    total = sum(CASES.values())
    by_verb = Counter()
    by_role = Counter()
    for (verb, role), n in CASES.items():
        by_verb[verb] += n
        by_role[role] += n
    print(f"\naccess matrix: {total} cases; by verb {dict(sorted(by_verb.items()))}; by role {dict(by_role)}")
    every = {(kind, role) for kind in ("pages", "api") for role in ROLES}
    if every - RAN:
        partly = f"the matrix ran only partly in this process ({sorted(RAN)})"
        if getattr(request.config.option, "loadgroup", False):
            # `--dist loadgroup` (make test) must keep the module on one worker: pytest 9.2 broke that silently
            # (pytest-xdist issue 1386), and the summary then checked half the matrix, or skipped.
            pytest.fail(f"{partly}: its xdist_group did not hold")
        # Plain `-n`: each role's tests assert their own floors.
        pytest.skip(f"{partly}; run the module alone, or with --dist loadgroup, for the total")
    assert total > 3000
    # The search is not blind: every marked kind showed, where in scope, in some page, export or API answer.
    creates = {*PAGE_CREATES, *API_CREATES}
    assert not creates - CREATED, f"create payloads never accepted in scope: {sorted(creates - CREATED)}"
    assert not MARKED - SEEN, f"markers never found in scope: {sorted(MARKED - SEEN)}"
