"""Planning: metrics, plans and their breakdown tree, splits (history weights, the bulk SQL path), edits and
commitments, approval (`approval_chain` decides who approves what), adjustments and action plans, the Excel
import's writes, and the reads of the plan screens (`selectors`).

The writes other apps and the views use are re-exported by `targets.services`, the public facade of planning.
"""
