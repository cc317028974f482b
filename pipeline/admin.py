"""Admin of the pipeline. Deals, their lines and collections change through `pipeline.services` (history, audit,
recompute of attainment, the company-currency amount): here they are read-only but for what moves no figure, and
that is saved through the service too. A stage in use keeps its probability and its won / lost flags."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pipeline import models, services
from salesmgmt.admin import ReadOnlyAdmin, ServiceNoteMixin

# Stage fields that decide what a deal in the stage counts for (won, lost, its default probability).
STAGE_FIGURE_FIELDS = ("pipeline", "probability", "is_won", "is_lost")


def _stage_note() -> str:
    return _(
        "A stage in use keeps its probability and its won / lost flags: deals in it were counted with them. "
        "To change them, add a new stage and move the deals to it on their pages."
    )


class StageInline(admin.TabularInline):
    model = models.Stage
    extra = 0

    def _in_use(self, pipeline) -> bool:
        return pipeline is not None and models.Opportunity.objects.filter(pipeline=pipeline).exists()

    def get_readonly_fields(self, request, obj=None):
        # Per pipeline (an inline has no per-row read-only fields): stages are added under "Stages" instead.
        return STAGE_FIGURE_FIELDS[1:] if self._in_use(obj) else ()

    def has_add_permission(self, request, obj=None):
        return not self._in_use(obj)


@admin.register(models.Pipeline)
class PipelineAdmin(ServiceNoteMixin, admin.ModelAdmin):
    list_display = ("name", "name_zh", "product_line", "is_default")
    inlines = [StageInline]

    def service_note(self, obj):
        if obj is None:
            return ""
        return format_html(
            '{} <a href="{}">{}</a>',
            _stage_note(),
            reverse("admin:pipeline_stage_add") + f"?pipeline={obj.pk}",
            _("Add a stage to this pipeline"),
        )


@admin.register(models.Stage)
class StageAdmin(ServiceNoteMixin, admin.ModelAdmin):
    list_display = ("__str__", "pipeline", "order", "probability", "is_won", "is_lost")
    list_filter = ("pipeline",)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.opportunities.exists():
            return STAGE_FIGURE_FIELDS
        return ()

    def service_note(self, obj):
        return _stage_note() if obj is not None and obj.opportunities.exists() else ""


# What the admin may change on a deal: nothing that moves a figure. Saved through the service all the same.
OPPORTUNITY_ADMIN_EDITABLE = ("name", "next_step", "next_step_date", "star_rating")


@admin.register(models.Opportunity)
class OpportunityAdmin(ServiceNoteMixin, admin.ModelAdmin):
    list_display = ("name", "customer", "owner", "stage", "amount", "currency", "expected_close_date", "closed_on")
    list_filter = ("pipeline", "stage", "forecast_category")
    search_fields = ("name", "external_id", "customer__name")

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in models.Opportunity._meta.fields if f.name not in OPPORTUNITY_ADMIN_EDITABLE]
        return [f for f in fields if f != "id"] + ["product_lines"]

    @admin.display(description=gettext_lazy("Products"))
    def product_lines(self, obj):
        lines = obj.lines.select_related("product_line", "product")
        return (
            format_html_join(", ", "{} {} {}", ((line.product_line, line.product or "", line.amount) for line in lines))
            or "—"
        )

    def service_note(self, obj):
        if obj is None:
            return ""
        return format_html(
            '{} <a href="{}">{}</a>',
            _(
                "Amount, currency, owner, customer, stage, dates and products change on the deal's page or through "
                "the API: there each change is kept in the deal's history, checked (collections, closed periods) "
                "and counted again in attainment. Deals are never deleted: move a lost one to a lost stage."
            ),
            reverse("pipeline:deal_detail", args=[obj.pk]),
            _("Open the deal"),
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in form.changed_data if f in OPPORTUNITY_ADMIN_EDITABLE}
        services.opportunity_update(opportunity=obj, data=data, actor=request.user)


@admin.register(models.Collection)
class CollectionAdmin(ReadOnlyAdmin):
    list_display = ("opportunity", "received_on", "amount", "currency", "amount_company")
    list_select_related = ("opportunity",)

    def service_note(self, obj):
        if obj is None:
            return ""
        return format_html(
            '{} <a href="{}">{}</a>',
            _(
                "Collections (回款) are recorded on the won deal's page or through the API, where they are checked "
                "against the deal amount and counted in attainment."
            ),
            reverse("pipeline:deal_detail", args=[obj.opportunity_id]) + "#collections",
            _("Open the deal"),
        )


@admin.register(models.Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("date", "kind", "customer", "owner")
    list_filter = ("kind",)
    raw_id_fields = ("customer", "opportunity", "owner")
