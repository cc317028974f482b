from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect


@login_required
def home(request):
    """Land each role where their work is: reps on their pipeline, managers on the team's."""
    if request.user.is_manager_or_above:
        return redirect("pipeline:team")
    return redirect("pipeline:mine")
