from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from crm.models import Customer


@login_required
def customer_list(request):
    customers = Customer.objects.visible_to(request.user).select_related("region", "owner")[:200]
    return render(request, "crm/customer_list.html", {"customers": customers})
