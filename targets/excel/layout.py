"""The layout of a plan's sheet, shared by the export (`targets.excel.writer`) and the import
(`targets.planning.excel`):

- row 1 (hidden) names the file (`marker_row`): the marker, the plan id, the view ("tree" or "grid"), the
  node it was exported under and, for a grid, its rows and columns;
- rows 2 to `KEY_ROW` - 1: a header block for people (plan, metric, period, version, exported at, a hint);
- row `KEY_ROW` (hidden): the column keys, so the labels below them can be in any language; then the
  labels; the data from `FIRST_DATA_ROW`;
- tree: one row per target, columns `TREE_KEYS`; its id, version and path are hidden (and locked);
  amount, owner (username) and deadline are the editable cells;
- grid: a row key (hidden) and a label, one amount column per month or quarter (`GRID_AMOUNT` + period
  key, "other" for targets longer than a column), the row total, then per amount column a hidden
  `GRID_ID` column holding "id@version" where the cell is exactly one target (only those cells can be
  changed); a last row of column totals (`GRID_TOTALS_ROW`).
"""

from __future__ import annotations

import dataclasses

from django.utils.translation import gettext_lazy
from openpyxl.styles import Font, PatternFill, Protection

MARKER = "salesmgmt:targets"
TREE, GRID = "tree", "grid"

KEY_ROW = 12  # the hidden row of column keys; the headings follow it
FIRST_DATA_ROW = KEY_ROW + 2

# Column keys of a tree export, in order; amount, owner and deadline are the editable ones.
TREE_KEYS = (
    "node_id",
    "version",
    "path",
    "level",
    "target",
    "region",
    "product_line",
    "product",
    "rep",
    "segment",
    "period",
    "split",
    "amount",
    "owner",
    "owner_name",
    "deadline",
    "committed",
)
TREE_HIDDEN = ("node_id", "version", "path")
TREE_LABELS = {
    "node_id": gettext_lazy("Target id"),
    "version": gettext_lazy("Version"),
    "path": gettext_lazy("Path"),
    "level": gettext_lazy("Level"),
    "target": gettext_lazy("Target"),
    "region": gettext_lazy("Region"),
    "product_line": gettext_lazy("Product line"),
    "product": gettext_lazy("Product"),
    "rep": gettext_lazy("Sales rep"),
    "segment": gettext_lazy("Segment"),
    "period": gettext_lazy("Period"),
    "split": gettext_lazy("Split along"),
    "amount": gettext_lazy("Amount"),
    "owner": gettext_lazy("Owner (username)"),
    "owner_name": gettext_lazy("Owner"),
    "deadline": gettext_lazy("Deadline"),
    "committed": gettext_lazy("Committed (bottom-up)"),
}
TREE_WIDTHS = {
    "level": 6,
    "target": 40,
    "amount": 16,
    "owner": 16,
    "owner_name": 18,
    **dict.fromkeys(("deadline", "committed", "period", "segment", "split"), 12),
    **dict.fromkeys(("region", "product_line", "product", "rep"), 16),
}

GRID_ROW_KEY, GRID_LABEL, GRID_TOTAL = "row_key", "row", "total"
GRID_AMOUNT, GRID_ID = "amount:", "id:"  # + the column's period key (or "other")
GRID_TOTALS_ROW = "__totals__"
GRID_FIRST_AMOUNT = 3  # columns: row key (hidden), row label, then the amounts

DATE_FORMAT = "yyyy-mm-dd"
EDITABLE_FILL = PatternFill("solid", fgColor="FFF4CC")
HEADING_FILL = PatternFill("solid", fgColor="E8EEF5")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
UNLOCKED = Protection(locked=False)


def amount_format(places: int) -> str:
    return "#,##0" if places == 0 else "#,##0.00"


@dataclasses.dataclass(frozen=True)
class Marker:
    """What row 1 says about the file."""

    kind: str
    plan_id: int
    node_id: int | None = None
    rows: str = ""
    cols: str = ""

    @property
    def first_key(self) -> str:
        """The key in column A of the row of column keys (how the reader finds that row)."""
        return "node_id" if self.kind == TREE else GRID_ROW_KEY

    def row(self) -> list:
        return [MARKER, self.plan_id, self.kind, "" if self.node_id is None else self.node_id, self.rows, self.cols]

    @classmethod
    def read(cls, head: list[str]) -> Marker | None:
        """The marker of row 1's cells (as text), or None when the file is not a target export."""
        if not head or head[0] != MARKER or len(head) < 3 or head[2] not in (TREE, GRID):
            return None
        try:
            plan_id = int(head[1])
            node_id = int(head[3]) if len(head) > 3 and head[3].isdigit() else None
        except ValueError:
            return None
        return cls(head[2], plan_id, node_id, head[4] if len(head) > 4 else "", head[5] if len(head) > 5 else "")


def grid_keys(columns: list[str]) -> list[str]:
    """The row of column keys of a grid whose amount columns are `columns` (period keys or "other")."""
    return [GRID_ROW_KEY, GRID_LABEL, *(f"{GRID_AMOUNT}{k}" for k in columns), GRID_TOTAL] + [
        f"{GRID_ID}{k}" for k in columns
    ]
