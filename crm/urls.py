from django.urls import path

from crm import views

app_name = "crm"
urlpatterns = [
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/new/", views.customer_create, name="customer_create"),
    path("customers/export.csv", views.customer_export, {"fmt": "csv"}, name="customer_export_csv"),
    path("customers/export.xlsx", views.customer_export, {"fmt": "xlsx"}, name="customer_export_xlsx"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:pk>/contacts/", views.contact_add, name="contact_add"),
    path("customers/<int:pk>/rate/", views.customer_rate, name="customer_rate"),
    path("pick/people/", views.pick_people, name="pick_people"),
    path("pick/customers/", views.pick_customers, name="pick_customers"),
]
