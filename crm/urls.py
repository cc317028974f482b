from django.urls import path

from crm import views

app_name = "crm"
urlpatterns = [
    path("customers/", views.customer_list, name="customer_list"),
]
