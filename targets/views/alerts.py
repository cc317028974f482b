"""Alert screens (the list, acknowledge/resolve, the rules) and the notification centre (list, mark read,
settings). Thin: a form checks the input, a service acts, htmx swaps the one row that changed and the nav
bell's unread count with it."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from salesmgmt.views import error_text, filter_form, is_partial, page_query, safe_next_url, vary_on_htmx
from targets.alerts import notifications as notification_services
from targets.alerts import selectors as alert_selectors
from targets.alerts import services as alert_services
from targets.alerts.messages import ALERT_RELATED, alert_link, alert_message
from targets.alerts.rules import ensure_default_rules
from targets.forms.alerts import AlertFilterForm, AlertRuleForm, NotificationSettingsForm
from targets.models import AlertKind, AlertRule, AlertState, Notification

ALERTS_PAGE_SIZE = 25
NOTIFICATIONS_PAGE_SIZE = 25
ALERT_ACTIONS = {"acknowledge": alert_services.alert_acknowledge, "resolve": alert_services.alert_resolve}


def _decorate_alerts(alerts, user):
    for alert in alerts:
        alert.message = alert_message(alert)
        alert.link = alert_link(alert, user)
    return alerts


def _decorate_notifications(notifications):
    for notification in notifications:
        notification.message = alert_selectors.notification_message(notification)
        notification.target = alert_selectors.notification_link(notification)
    return notifications


def _with_bell(request, context: dict) -> dict:
    """A fragment that changed the unread count also replaces the nav bell (htmx out-of-band swap)."""
    context["unread_count"] = alert_selectors.unread_count(request.user)
    return context


# --- alerts ---------------------------------------------------------------------------------------


@login_required
@require_GET
def alert_list(request):
    form, _data = filter_form(AlertFilterForm, request)
    filters = form.filters()
    qs = alert_selectors.alerts_filtered(request.user, **filters)
    counts = alert_selectors.alert_state_counts(
        alert_selectors.alerts_filtered(request.user, **{**filters, "states": ()})
    )
    page = Paginator(qs, ALERTS_PAGE_SIZE).get_page(request.GET.get("page"))
    _decorate_alerts(page.object_list, request.user)
    context = {
        "form": form,
        "page": page,
        "alerts": page.object_list,
        "counts": [(state, label, counts[state]) for state, label in AlertState.choices],
        "query": page_query(request),
        "may_edit_rules": _may_edit_rules(request.user),
    }
    if is_partial(request, "alert-results"):
        return vary_on_htmx(render(request, "targets/alerts/_results.html", context))
    return vary_on_htmx(render(request, "targets/alerts/alert_list.html", context))


@login_required
@require_POST
def alert_action(request, pk, action):
    """Acknowledge or resolve one alert; the row shows the new state, or the service's refusal."""
    if action not in ALERT_ACTIONS:
        raise Http404(_("No such action."))
    visible = alert_selectors.alerts_visible_to(request.user).select_related(*ALERT_RELATED)
    alert = get_object_or_404(visible, pk=pk)
    error = ""
    try:
        ALERT_ACTIONS[action](alert=alert, actor=request.user)
    except ValidationError as exc:
        error = error_text(exc)
    if request.htmx:
        alert = visible.get(pk=pk)
        _decorate_alerts([alert], request.user)
        context = _with_bell(request, {"alert": alert, "error": error, "oob": True})
        return render(request, "targets/alerts/_alert_row.html", context)
    if error:
        messages.error(request, error)
    elif action == "acknowledge":
        messages.success(request, _("Alert acknowledged."))
    else:
        messages.success(request, _("Alert resolved."))
    return redirect(safe_next_url(request, reverse("targets:alert_list")))


# --- rules ----------------------------------------------------------------------------------------


def _may_edit_rules(user) -> bool:
    return user.is_director_or_above


def rules_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not _may_edit_rules(request.user):
            raise PermissionDenied(_("Only a director or an admin changes alert rules."))
        return view(request, *args, **kwargs)

    return wrapper


def _rule_form(rule, data=None):
    initial = {"threshold": rule.threshold, "severity": rule.severity, "active": rule.active}
    return AlertRuleForm(data, initial=initial, prefix=f"rule-{rule.pk}")


def _rules_context(rules) -> dict:
    general = {rule.kind for rule in rules if rule.metric_id is None}
    return {"rules": rules, "missing": [label for kind, label in AlertKind.choices if kind not in general]}


@rules_required
@require_GET
def alert_rules(request):
    rules = list(AlertRule.objects.select_related("metric").order_by("kind", "metric_id", "id"))
    for rule in rules:
        rule.form = _rule_form(rule)
    return render(request, "targets/alerts/rules.html", _rules_context(rules))


@rules_required
@require_POST
def alert_rules_defaults(request):
    """Create the general rule of every kind that has none (with the default threshold and severity)."""
    ensure_default_rules()
    messages.success(request, _("The default alert rules are in place."))
    return redirect("targets:alert_rules")


@rules_required
@require_POST
def alert_rule_edit(request, pk):
    rule = get_object_or_404(AlertRule.objects.select_related("metric"), pk=pk)
    form = _rule_form(rule, request.POST)
    saved = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            alert_services.alert_rule_update(
                rule=rule,
                actor=request.user,
                threshold=data["threshold"],
                severity=data["severity"],
                active=data["active"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            saved = True
            rule.refresh_from_db()
            form = _rule_form(rule)
    rule.form = form
    if request.htmx:
        return render(request, "targets/alerts/_rule_row.html", {"rule": rule, "saved": saved})
    if saved:
        messages.success(request, _("Alert rule saved."))
        return redirect("targets:alert_rules")
    rules = list(AlertRule.objects.select_related("metric").order_by("kind", "metric_id", "id"))
    for other in rules:
        other.form = form if other.pk == rule.pk else _rule_form(other)
    return render(request, "targets/alerts/rules.html", _rules_context(rules), status=400)


# --- notifications --------------------------------------------------------------------------------


@login_required
@require_GET
def notification_list(request):
    qs = alert_selectors.notifications_of(request.user)
    page = Paginator(qs, NOTIFICATIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    _decorate_notifications(page.object_list)
    context = {"page": page, "notifications": page.object_list, "query": ""}
    if is_partial(request, "notification-results"):
        return vary_on_htmx(render(request, "targets/alerts/_notifications.html", context))
    return vary_on_htmx(render(request, "targets/alerts/notifications.html", context))


def _own_notification(request, pk) -> Notification:
    return get_object_or_404(alert_selectors.notifications_of(request.user), pk=pk)


@login_required
@require_POST
def notification_read(request, pk):
    notification = _own_notification(request, pk)
    notification_services.notification_mark_read(notification=notification, actor=request.user)
    if request.htmx:
        _decorate_notifications([notification])
        context = _with_bell(request, {"notification": notification, "oob": True})
        return render(request, "targets/alerts/_notification_row.html", context)
    return redirect(safe_next_url(request, reverse("targets:notification_list")))


@login_required
@require_POST
def notification_read_all(request):
    count = notification_services.notifications_mark_all_read(actor=request.user)
    if request.htmx:
        page = Paginator(alert_selectors.notifications_of(request.user), NOTIFICATIONS_PAGE_SIZE).get_page(1)
        _decorate_notifications(page.object_list)
        context = _with_bell(request, {"page": page, "notifications": page.object_list, "query": "", "oob": True})
        return render(request, "targets/alerts/_notifications.html", context)
    messages.success(request, _("%(count)s notifications marked read.") % {"count": count})
    return redirect("targets:notification_list")


@login_required
def notification_settings(request):
    choices = alert_selectors.preferences_of(request.user)
    form = NotificationSettingsForm(request.POST or None, choices=choices)
    if request.method == "POST" and form.is_valid():
        notification_services.notification_preferences_update(
            user=request.user, choices=form.choices(), actor=request.user
        )
        messages.success(request, _("Notification settings saved."))
        return redirect("targets:notification_settings")
    return render(request, "targets/alerts/notification_settings.html", {"form": form})
