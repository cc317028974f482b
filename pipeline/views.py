from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from pipeline.models import Opportunity


@login_required
def my_pipeline(request):
    deals = Opportunity.objects.visible_to(request.user).filter(owner=request.user).select_related("stage", "customer")
    return render(request, "pipeline/my_pipeline.html", {"deals": deals[:200]})


@login_required
def team_pipeline(request):
    deals = Opportunity.objects.visible_to(request.user).select_related("stage", "customer", "owner")
    return render(request, "pipeline/team_pipeline.html", {"deals": deals[:200]})
