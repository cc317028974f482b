"""The one way a screen gets a plan or a target for a user.

Each function starts from what the user may see (`selectors.plan_list`, `selectors.nodes_visible_to`),
so a plan or target outside the user's scope, or one that does not exist, is the same 404: a page never
tells a user that something they may not see exists. What a user may do with what they see (edit,
split, decide) is the services' business; they raise `ValidationError` / `PermissionDenied`.
"""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from crm.models import User
from targets.models import TargetNode, TargetPlan
from targets.planning import selectors


def visible_plan(user: User, pk: int | str) -> TargetPlan:
    """The plan `pk` as the plan list shows it to `user` (their total, who submitted and approved it)."""
    return get_object_or_404(selectors.plan_list(user), pk=pk)


def visible_node(user: User, pk: int | str) -> TargetNode:
    """The target `pk`, with its plan and metric, from any plan `user` sees a target of."""
    qs = selectors.nodes_visible_to(user).select_related("plan", "plan__metric", *selectors.TREE_RELATED)
    return get_object_or_404(qs, pk=pk)


def plan_node(user: User, plan: TargetPlan, pk: int | str) -> TargetNode:
    """The target `pk` of `plan` as its row in the editor tree shows it (child count, 3定 completeness).

    `pk` may come straight from a query string: anything that is not a target of `plan` that `user`
    sees, a malformed id included, is a 404."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404(_("No such target.")) from None
    node = selectors.tree_node(plan, pk, user)
    if node is None:
        raise Http404(_("No such target."))
    node.plan = plan  # the services and forms read the plan; it is already loaded
    return node


def entry_node(user: User, plan: TargetPlan) -> TargetNode:
    """The first target of `plan` that `user` sees from the top (the root, or the top of their area)."""
    node = selectors.plan_entry_nodes(plan, user).first()
    if node is None:
        raise Http404(_("No such target."))
    return node
