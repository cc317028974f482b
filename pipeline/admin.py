from django.contrib import admin

from pipeline import models


class StageInline(admin.TabularInline):
    model = models.Stage
    extra = 0


@admin.register(models.Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ("name", "name_zh", "product_line", "is_default")
    inlines = [StageInline]


@admin.register(models.Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ("name", "customer", "owner", "stage", "amount", "currency", "expected_close_date", "closed_on")
    list_filter = ("pipeline", "stage", "forecast_category")
    search_fields = ("name", "external_id", "customer__name")
    raw_id_fields = ("customer", "owner")
    readonly_fields = ("amount_company", "version")


@admin.register(models.Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("opportunity", "received_on", "amount", "currency", "amount_company")
    raw_id_fields = ("opportunity",)


@admin.register(models.Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("date", "kind", "customer", "owner")
    list_filter = ("kind",)
    raw_id_fields = ("customer", "opportunity", "owner")
