from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from crm import models
from crm.signals import user_team_changed


@admin.register(models.User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "first_name", "last_name", "role", "region", "data_scope", "is_active")
    list_filter = ("role", "data_scope", "is_active", "region")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("Sales organisation"), {"fields": ("role", "data_scope", "region", "employee_code")}),
    )
    add_fieldsets = (*BaseUserAdmin.add_fieldsets, (_("Sales organisation"), {"fields": ("role", "region")}))

    def save_model(self, request, obj, form, change):
        previous_region_id = form.initial.get("region") if change else None
        super().save_model(request, obj, form, change)
        if change and "region" in form.changed_data:
            user_team_changed.send(
                sender=models.User, user=obj, previous_region_id=previous_region_id, actor=request.user
            )


@admin.register(models.Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "kind", "parent", "manager", "depth")
    list_filter = ("kind", "depth")
    search_fields = ("name", "code")
    readonly_fields = ("path", "depth")

    def save_model(self, request, obj, form, change):
        from crm.services import region_create, region_move

        if not change:
            created = region_create(
                name=obj.name, code=obj.code, kind=obj.kind, parent=obj.parent, manager=obj.manager, actor=request.user
            )
            obj.pk, obj.path, obj.depth = created.pk, created.path, created.depth
        else:
            super().save_model(request, obj, form, change)
            if "parent" in form.changed_data:
                region_move(region=obj, parent=obj.parent, actor=request.user)


class ProductInline(admin.TabularInline):
    model = models.Product
    extra = 0


@admin.register(models.ProductLine)
class ProductLineAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "parent", "is_key")
    inlines = [ProductInline]


@admin.register(models.Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "line", "list_price", "unit_cost", "is_active")
    list_filter = ("line", "is_active")
    search_fields = ("name", "code")


@admin.register(models.CompanySettings)
class CompanySettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "fiscal_year_start_month", "currency", "count_working_days", "closed_period")
    # Every amount_company was converted into this currency: changing it would silently mislabel them all.
    readonly_fields = ("currency",)


@admin.register(models.Currency)
class CurrencyAdmin(admin.ModelAdmin):
    list_display = ("code", "name")


@admin.register(models.ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("currency", "valid_from", "rate")
    list_filter = ("currency",)


class ContactInline(admin.TabularInline):
    model = models.Contact
    extra = 0


@admin.register(models.Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "owner", "tier", "industry", "first_won_on")
    list_filter = ("tier", "region")
    search_fields = ("name", "external_id")
    inlines = [ContactInline]
    raw_id_fields = ("owner",)

    def get_readonly_fields(self, request, obj=None):
        return ("external_id",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        # Through the services, as the customer screens: checked and audited.
        from crm.services import CUSTOMER_EDITABLE, customer_create, customer_update

        if change:
            data = {f: form.cleaned_data[f] for f in form.changed_data if f in CUSTOMER_EDITABLE}
            customer_update(customer=type(obj).objects.get(pk=obj.pk), data=data, actor=request.user)
            return
        created = customer_create(
            **{f: form.cleaned_data[f] for f in (*CUSTOMER_EDITABLE, "external_id") if f in form.cleaned_data},
            actor=request.user,
        )
        obj.pk = created.pk


@admin.register(models.AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "content_type", "object_id")
    list_filter = ("action", "content_type")
    readonly_fields = [f.name for f in models.AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
