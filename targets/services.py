"""Writes for targets: plans, the 3定 breakdown (splits, edits, commitments), approval, adjustments, actions.

The public facade of `targets.planning`: one module per business area there (rules, metrics, plans,
members, weights, bulk, splits, nodes, adjustments, actions, approvals, excel), and the services views,
the API, tasks and other apps call are all importable from here (`from targets.services import plan_create`).

Every function is keyword-only, atomic, validated and audited. Amounts are split with the
largest remainder method (`salesmgmt.lib.allocation`), so children always sum exactly to their
parent. Who may do what:

- only managers and above split or edit, and only inside their data scope (the node's region
  must be one of `visible_regions(actor)`; company-level nodes need the "all" scope);
- nobody edits, commits on behalf of, or approves their own target, except a director/admin on a
  plan root. Splitting one's own node is allowed: it distributes the amount handed down to the
  people below without changing it (DOMAIN: a manager "owns a region target, splits it to reps");
- a plan is changed only while draft; once approved, amounts move only through adjustments,
  which create a new version (`TargetNodeAmount` keeps every version).

Editing one part of a split (`node_update(amount=...)`) would break the parent's sum, so it is
refused unless the caller asks explicitly for `rebalance=True`: the siblings then absorb the
difference in proportion to their amounts. Whenever a node's amount changes, its own subtree is
rescaled proportionally so every level still adds up.
"""

from targets.planning.actions import action_plan_create, action_plan_update
from targets.planning.adjustments import adjustment_approve, adjustment_propose, adjustment_reject
from targets.planning.metrics import BUILTIN_METRICS, metric_create, metric_ensure_defaults
from targets.planning.nodes import node_commit, node_set_levels, node_update
from targets.planning.people import new_hire_propose, parse_ramp, people_change_summary, transfer_propose
from targets.planning.plans import plan_approve, plan_create, plan_return, plan_submit
from targets.planning.splits import (
    LEAF_PREVIEW_PAGE,
    LeafPreview,
    LeavesSplitPreview,
    LeavesSplitResult,
    ProposedChild,
    SplitPreview,
    SplitResult,
    amount_left,
    target_split,
    target_split_leaves,
    target_split_leaves_preview,
    target_split_preview,
)

__all__ = [
    "new_hire_propose",
    "parse_ramp",
    "people_change_summary",
    "transfer_propose",
    "node_set_levels",
    "LEAF_PREVIEW_PAGE",
    "amount_left",
    "BUILTIN_METRICS",
    "metric_ensure_defaults",
    "metric_create",
    "plan_create",
    "plan_submit",
    "plan_return",
    "plan_approve",
    "ProposedChild",
    "SplitPreview",
    "SplitResult",
    "LeafPreview",
    "LeavesSplitPreview",
    "LeavesSplitResult",
    "target_split_preview",
    "target_split",
    "target_split_leaves",
    "target_split_leaves_preview",
    "node_update",
    "node_commit",
    "adjustment_propose",
    "adjustment_approve",
    "adjustment_reject",
    "action_plan_create",
    "action_plan_update",
]
