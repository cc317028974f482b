"""The Excel round trip of a plan: read a filled export back, check it row by row, apply it at once.

The file's layout (marker row, header block, hidden row of column keys, the tree's and the grid's
columns) is `targets.excel.layout`, written by `targets.excel.writer` (the export) and read here.

`plan_import_check` reports every problem with its row and column and writes nothing;
`plan_import_apply` checks again inside one transaction, with the targets locked, and either applies
everything or nothing:

- a draft plan: amounts, owners and deadlines are written at once (versions move on, one audit
  entry per changed target and one for the import);
- an approved plan: the amounts become ONE adjustment proposal (a reallocation when the plan total
  is unchanged, else a total change) that someone else approves as usual; owners and deadlines are
  fixed once a plan is approved, so changing them is reported as an error;
- a submitted plan changes only after it is sent back to draft, so its files are refused.

Sums: every target that has a changed part must still equal the sum of its parts (the file must
change the parent too, or move amounts between siblings); a changed target whose parts are not
changed has its parts rescaled in proportion, as when it is edited on screen.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm.models import AuditLog, User
from crm.scopes import visible_users
from crm.services import audit
from salesmgmt.lib.tabular import (
    LimitExceeded,
    Limits,
    TabularError,
    cell_text,
    parse_date,
    parse_decimal,
    parse_identifier,
    ragged_row_problem,
    read_table,
)
from salesmgmt.lib.tabular import Row as TableRow
from targets.excel.layout import (  # noqa: F401 - MARKER, TREE and GRID: what callers of the import name
    GRID,
    GRID_AMOUNT,
    GRID_ID,
    GRID_TOTALS_ROW,
    MARKER,
    TREE,
    TREE_KEYS,
    TREE_LABELS,
    Marker,
)
from targets.models import AdjustmentKind, AdjustmentRequest, PlanStatus, TargetNode, TargetPlan
from targets.planning import selectors
from targets.planning.adjustments import adjustment_propose
from targets.planning.bulk import apply_amounts, rescale_subtrees
from targets.planning.rules import ancestor_paths, check_amount, check_not_own, check_scope

SHOWN_LABELS = 20

COLUMN_LABELS = {
    **{k: TREE_LABELS[k] for k in ("node_id", "version", "amount", "owner", "deadline")},
    "file": gettext_lazy("File"),
}


class Mode:
    DRAFT = "draft"  # the changes are written
    ADJUSTMENT = "adjustment"  # the changes become an adjustment proposal


@dataclasses.dataclass
class ParsedFile:
    kind: str
    plan_id: int
    node_id: int | None
    rows: str
    cols: str
    entries: list[Entry]
    rows_read: int = 0
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    # Grid cells that are not one target: (row number, row key, column key, column label, row label, value).
    grid_cells: list[tuple] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Entry:
    """One target as the file gives it: a tree row, or one editable cell of a grid."""

    row: int
    column: str  # where the amount is (a grid cell's column label), for messages
    # Cells as read (`salesmgmt.lib.tabular`); `plan_import_check` replaces the node id by an int or None.
    node_id: Any
    version: Any
    amount: Any
    owner: Any = None
    deadline: Any = None
    tree_row: bool = False  # a tree row also has an owner and a deadline; a grid cell does not
    problem: str = ""  # the row cannot be read (a CSV row with more cells than the columns): a row error


@dataclasses.dataclass
class RowError:
    row: int | None
    column: str
    value: str
    message: str


@dataclasses.dataclass
class NodeChange:
    row: int
    node: TargetNode
    old_amount: Decimal
    new_amount: Decimal
    old_owner: User | None = None
    new_owner: User | None = None
    old_deadline: date | None = None
    new_deadline: date | None = None
    rescales_parts: bool = False

    @property
    def delta(self) -> Decimal:
        return self.new_amount - self.old_amount

    @property
    def amount_changed(self) -> bool:
        return self.new_amount != self.old_amount

    @property
    def owner_changed(self) -> bool:
        return self.new_owner is not None and self.new_owner != self.old_owner

    @property
    def deadline_changed(self) -> bool:
        return self.new_deadline is not None and self.new_deadline != self.old_deadline


@dataclasses.dataclass
class ImportCheck:
    plan: TargetPlan
    kind: str
    mode: str
    rows_read: int
    changes: list[NodeChange]
    errors: list[RowError]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_delta(self) -> Decimal:
        """The change of the plan total (the root's change; zero for a reallocation)."""
        return sum((c.new_amount - c.old_amount for c in self.changes if c.node.parent_id is None), Decimal(0))

    @property
    def adjustment_kind(self) -> str:
        return AdjustmentKind.TOTAL_CHANGE if self.total_delta else AdjustmentKind.REALLOCATION


@dataclasses.dataclass
class ImportResult:
    plan: TargetPlan
    mode: str
    changed: int
    adjustment: AdjustmentRequest | None = None


# --- reading -----------------------------------------------------------------------------


def _file_error(message: str) -> RowError:
    return RowError(None, str(COLUMN_LABELS["file"]), "", message)


def parse_file(data: bytes, filename: str = "") -> ParsedFile:
    """The targets a filled export gives. Raises ValidationError when the file is not such an export."""
    try:
        # The first row is the marker, not the headings: rows wider than it are normal ("widen"); a CSV row
        # wider than the column keys is checked below.
        table = read_table(data, filename, limits=Limits.from_settings(), ragged="widen")
    except LimitExceeded as exc:
        if exc.limit != "rows":
            raise ValidationError(str(exc))
        raise ValidationError(
            _("The file has more than %(max)d rows; export a smaller part of the plan.") % {"max": exc.maximum}
        )
    except TabularError as exc:
        raise ValidationError(str(exc))
    head = table.headers
    not_export = ValidationError(
        _(
            "This is not a target export: export the plan (or a part of it) to Excel, change the amounts there "
            "and import that file."
        )
    )
    marker = Marker.read(head)
    if marker is None:
        raise not_export
    key_index = next(
        (i for i, row in enumerate(table.rows) if row.values and cell_text(row.values[0]) == marker.first_key), None
    )
    if key_index is None:
        raise ValidationError(_("The row of column keys (hidden above the headings) is missing: export again."))
    keys = [cell_text(v) for v in table.rows[key_index].values]
    data_rows = table.rows[key_index + 2 :]  # after the keys and the headings
    headings = table.rows[key_index + 1].values if key_index + 1 < len(table.rows) else []
    parsed = ParsedFile(marker.kind, marker.plan_id, marker.node_id, marker.rows, marker.cols, [])
    width = table.rows[key_index].cells

    def problem(row: TableRow) -> str:
        """A CSV row with more cells than the row of keys was split by a separator inside a value (an
        unquoted 1,234.50): its cells are not in their columns. (A workbook's cells always are.)"""
        if table.format != "csv":
            return ""
        return ragged_row_problem(row.number, row.values, width, table.delimiter, cells=row.cells)

    (_read_tree if marker.kind == TREE else _read_grid)(keys, data_rows, headings, parsed, problem)
    return parsed


def _labels(keys: list[str], labels: list) -> dict[str, str]:
    return {key: cell_text(label) or key for key, label in zip(keys, labels, strict=False) if key}


def _read_tree(
    keys: list[str], rows: list[TableRow], labels: list, parsed: ParsedFile, problem: Callable[[TableRow], str]
) -> None:
    missing = [k for k in ("node_id", "version", "amount") if k not in keys]
    if missing:
        raise ValidationError(_("The columns %(columns)s are missing: export again.") % {"columns": ", ".join(missing)})
    index = {k: keys.index(k) for k in TREE_KEYS if k in keys}
    names = _labels(keys, labels)
    parsed.labels = names
    for row in rows:
        values = row.values
        get = {k: values[i] if i < len(values) else None for k, i in index.items()}
        parsed.rows_read += 1
        parsed.entries.append(
            Entry(
                row=row.number,
                column=names.get("amount", "amount"),
                node_id=get["node_id"],
                version=get["version"],
                amount=get["amount"],
                owner=get.get("owner"),
                deadline=get.get("deadline"),
                tree_row="owner" in index and "deadline" in index,
                problem=problem(row),
            )
        )


def _read_grid(
    keys: list[str], rows: list[TableRow], labels: list, parsed: ParsedFile, problem: Callable[[TableRow], str]
) -> None:
    names = _labels(keys, labels)
    parsed.labels = names
    amount_cols = {k[len(GRID_AMOUNT) :]: i for i, k in enumerate(keys) if k.startswith(GRID_AMOUNT)}
    id_cols = {k[len(GRID_ID) :]: i for i, k in enumerate(keys) if k.startswith(GRID_ID)}
    if not amount_cols:
        raise ValidationError(_("The grid has no amount columns: export again."))
    for row in rows:
        values = row.values
        row_key = cell_text(values[0]) if values else ""
        if row_key == GRID_TOTALS_ROW:
            continue
        parsed.rows_read += 1
        if message := problem(row):
            parsed.entries.append(Entry(row.number, "", None, None, None, problem=message))
            continue
        label = cell_text(values[1]) if len(values) > 1 else ""
        for col, i in amount_cols.items():
            value = values[i] if i < len(values) else None
            column = names.get(f"{GRID_AMOUNT}{col}", col)
            ident = cell_text(values[id_cols[col]]) if col in id_cols and id_cols[col] < len(values) else ""
            if ident:
                node_id, _sep, version = ident.partition("@")
                parsed.entries.append(Entry(row.number, f"{label} · {column}", node_id, version, value))
            else:
                parsed.grid_cells.append((row.number, row_key, col, column, label, value))


# --- checking ----------------------------------------------------------------------------


def plan_import_check(*, plan: TargetPlan, parsed: ParsedFile, actor: User) -> ImportCheck:
    """Every problem of the file with its row and column, and the changes it makes. Writes nothing."""
    plan = TargetPlan.objects.select_related("metric").get(pk=plan.pk)
    mode = Mode.ADJUSTMENT if plan.status == PlanStatus.APPROVED else Mode.DRAFT
    check = ImportCheck(plan, parsed.kind, mode, parsed.rows_read, [], [], [])
    errors = check.errors
    if parsed.plan_id != plan.pk:
        other = selectors.plans_visible_to(actor).filter(pk=parsed.plan_id).first()
        errors.append(
            _file_error(
                _("This file is the export of another plan (%(plan)s); import it there.") % {"plan": other}
                if other
                else _("This file is the export of another plan; import it there.")
            )
        )
        return check
    if actor is None or not actor.is_authenticated or not actor.is_manager_or_above:
        errors.append(_file_error(_("Only managers, directors and admins can change targets.")))
        return check
    if plan.status == PlanStatus.SUBMITTED:
        errors.append(
            _file_error(_("The plan is submitted for approval: it can change only after it is sent back to draft."))
        )
        return check
    if not parsed.entries and not parsed.grid_cells:
        errors.append(_file_error(_("The file has no targets.")))
        return check

    places = plan.metric.places
    ids: set[int] = set()
    for entry in parsed.entries:
        try:
            entry.node_id = int(parse_identifier(entry.node_id) or "x")
        except ValueError:
            entry.node_id = None
        else:
            ids.add(entry.node_id)
    nodes = {
        n.pk: n
        for n in selectors.nodes_visible_to(actor).filter(plan=plan, pk__in=ids).select_related(*selectors.TREE_RELATED)
    }
    foreign = {
        row["pk"]: row["plan__name"]
        for row in selectors.nodes_visible_to(actor).filter(pk__in=ids - set(nodes)).values("pk", "plan__name")
    }
    usernames = {cell_text(e.owner) for e in parsed.entries if e.tree_row and cell_text(e.owner)}
    assignable = {u.username: u for u in visible_users(actor).filter(username__in=usernames, is_active=True)}

    seen: dict[int, int] = {}
    wanted: dict[int, NodeChange] = {}
    unsure: set[int] = set()  # targets whose row has an error: what they should be is unknown
    for entry in parsed.entries:
        if entry.problem:
            errors.append(RowError(entry.row, "", "", entry.problem))
            if entry.node_id in nodes:  # what this target should be is unknown: its sums are not checked
                unsure.add(entry.node_id)
            continue
        errors_before = len(errors)
        change = _check_entry(entry, nodes, foreign, assignable, seen, places, check)
        if change is not None:
            wanted[change.node.pk] = change
        elif len(errors) > errors_before and entry.node_id in nodes:
            unsure.add(entry.node_id)
    if parsed.kind == GRID:
        _check_fixed_cells(plan, parsed, actor, check)

    changed = {pk: c for pk, c in wanted.items() if c.amount_changed or c.owner_changed or c.deadline_changed}
    for change in changed.values():
        _check_may_change(change, actor, mode, check)
    _check_sums(plan, changed, check, unsure)
    check.changes = sorted(changed.values(), key=lambda c: c.node.path)
    rescaled = [c.node.label for c in check.changes if c.rescales_parts]
    if rescaled:
        check.warnings.append(
            _("The parts of %(targets)s will be rescaled in proportion to the new amount.")
            % {"targets": "; ".join(rescaled[:SHOWN_LABELS])}
        )
    if mode == Mode.ADJUSTMENT and check.changes and not check.errors:
        check.warnings.append(
            _(
                "The plan is approved: importing proposes one adjustment (%(kind)s) that someone else approves; "
                "nothing changes until then."
            )
            % {"kind": AdjustmentKind(check.adjustment_kind).label.lower()}
        )
    return check


def _check_entry(
    entry: Entry,
    nodes: dict[int, TargetNode],
    foreign: dict[int, str],
    assignable: dict[str, User],
    seen: dict[int, int],
    places: int,
    check: ImportCheck,
) -> NodeChange | None:
    errors = check.errors

    def error(column: object, value: object, message: str) -> None:
        errors.append(RowError(entry.row, str(column), cell_text(value), message))

    if entry.node_id is None:
        error(
            COLUMN_LABELS["node_id"],
            entry.node_id,
            _("This row has no target id: targets are added by splitting, not by adding rows to the file."),
        )
        return None
    node = nodes.get(entry.node_id)
    if node is None:
        if entry.node_id in foreign:
            message = _("Target %(id)s belongs to another plan (%(plan)s).") % {
                "id": entry.node_id,
                "plan": foreign[entry.node_id],
            }
        else:
            message = _(
                "There is no target %(id)s among yours: it was removed by a new split, or is outside your scope."
            ) % {"id": entry.node_id}
        error(COLUMN_LABELS["node_id"], entry.node_id, message)
        return None
    if entry.node_id in seen:
        error(
            COLUMN_LABELS["node_id"],
            entry.node_id,
            _("“%(target)s” is already on row %(row)d.") % {"target": node.label, "row": seen[entry.node_id]},
        )
        return None
    seen[entry.node_id] = entry.row
    change = NodeChange(entry.row, node, node.amount, node.amount, node.owner, None, node.deadline, None)
    ok = True
    version: int | None
    try:
        version = int(parse_identifier(entry.version))
    except ValueError:
        error(COLUMN_LABELS["version"], entry.version, _("The version was changed: export again."))
        ok = False
        version = None
    column = entry.column
    try:
        amount = parse_decimal(entry.amount)
        if amount is None:
            error(column, entry.amount, _("Enter an amount (0 for nothing)."))
            ok = False
        else:
            change.new_amount = check_amount(amount, places)
    except ValueError as exc:
        error(column, entry.amount, str(exc))
        ok = False
    except ValidationError as exc:
        error(column, entry.amount, " ".join(exc.messages))
        ok = False
    if entry.tree_row:
        username = cell_text(entry.owner)
        current = node.owner.username if node.owner else ""
        if not username:
            if current:
                error(
                    COLUMN_LABELS["owner"],
                    "",
                    _("A target keeps an owner: enter the username of the new owner instead of clearing it."),
                )
                ok = False
        elif username != current:
            user = assignable.get(username)
            if user is None:
                error(
                    COLUMN_LABELS["owner"],
                    username,
                    _("There is no user “%(username)s” among the people you can give targets to.")
                    % {"username": username},
                )
                ok = False
            else:
                change.new_owner = user
        try:
            deadline = parse_date(entry.deadline)
        except ValueError as exc:
            error(COLUMN_LABELS["deadline"], entry.deadline, str(exc))
            ok = False
        else:
            if deadline is None:
                if node.deadline is not None:
                    error(COLUMN_LABELS["deadline"], "", _("A target keeps a deadline: enter a date."))
                    ok = False
            elif deadline != node.deadline:
                if not node.period_start <= deadline <= node.period_end:
                    error(
                        COLUMN_LABELS["deadline"],
                        entry.deadline,
                        _("The deadline must fall within %(period)s (%(start)s to %(end)s).")
                        % {"period": node.period_key, "start": node.period_start, "end": node.period_end},
                    )
                    ok = False
                else:
                    change.new_deadline = deadline
    if not ok:
        return None
    touched = change.amount_changed or change.owner_changed or change.deadline_changed
    if touched and version != node.version:
        error(
            COLUMN_LABELS["version"],
            entry.version,
            _(
                "Someone changed “%(target)s” after this file was exported (version %(old)s, now %(new)s): "
                "export again and redo this change."
            )
            % {"target": node.label, "old": version, "new": node.version},
        )
        return None
    return change


def _check_may_change(change: NodeChange, actor: User, mode: str, check: ImportCheck) -> None:
    node = change.node
    try:
        check_scope(actor, node)
        check_not_own(actor, node)
    except ValidationError as exc:
        check.errors.append(RowError(change.row, node.label, "", " ".join(exc.messages)))
        return
    if mode == Mode.ADJUSTMENT and (change.owner_changed or change.deadline_changed):
        check.errors.append(
            RowError(
                change.row,
                str(COLUMN_LABELS["owner"] if change.owner_changed else COLUMN_LABELS["deadline"]),
                str(change.new_owner or change.new_deadline),
                _("The plan is approved: owners and deadlines no longer change, only amounts (through an adjustment)."),
            )
        )


def _check_sums(plan: TargetPlan, changed: dict[int, NodeChange], check: ImportCheck, unsure: set[int]) -> None:
    """Every target above a changed amount must equal the sum of its parts' new amounts; a changed
    target with no changed target below it has its parts rescaled. Sums involving a row that has an
    error already are not checked (the error is reported once, where it is)."""
    amounts = {pk: c for pk, c in changed.items() if c.amount_changed}
    if not amounts:
        return
    by_path = {c.node.path: c for c in amounts.values()}
    above = {p for c in amounts.values() for p in ancestor_paths(c.node.path)}
    for c in amounts.values():
        c.rescales_parts = not c.node.is_leaf and not any(
            p.startswith(c.node.path) and p != c.node.path for p in by_path
        )
    # One query: the parents concerned and all their children.
    parents = {
        n.path: n for n in TargetNode.objects.filter(plan=plan, path__in=above).select_related(*selectors.TREE_RELATED)
    }
    children: defaultdict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for kid in TargetNode.objects.filter(plan=plan, parent__path__in=above).values("id", "parent_id", "amount"):
        children[kid["parent_id"]].append(kid)
    for path in sorted(parents, key=len, reverse=True):
        parent = parents[path]
        if parent.pk in unsure or any(k["id"] in unsure for k in children[parent.pk]):
            continue
        new_parent = by_path[path].new_amount if path in by_path else parent.amount
        parts = sum(
            (amounts[k["id"]].new_amount if k["id"] in amounts else k["amount"] for k in children[parent.pk]),
            Decimal(0),
        )
        if parts == new_parent:
            continue
        moved = [amounts[k["id"]] for k in children[parent.pk] if k["id"] in amounts]
        row = min((c.row for c in moved), default=by_path[path].row if path in by_path else None)
        check.errors.append(
            RowError(
                row,
                parent.label,
                str(parts),
                _(
                    "The parts of “%(target)s” would add up to %(parts)s but it is %(amount)s (%(diff)s): "
                    "move amounts between its parts, or change “%(target)s” too."
                )
                % {"target": parent.label, "parts": parts, "amount": new_parent, "diff": f"{parts - new_parent:+}"},
            )
        )


def _check_fixed_cells(plan: TargetPlan, parsed: ParsedFile, actor: User, check: ImportCheck) -> None:
    """Grid cells that are not one target (a sum, or empty) cannot change: report those that differ."""
    cells = parsed.grid_cells
    if not cells:
        return
    node = (
        selectors.nodes_visible_to(actor).filter(plan=plan, pk=parsed.node_id).first()
        if parsed.node_id is not None
        else None
    )
    if node is None or parsed.rows not in selectors.GRID_ROWS or parsed.cols not in selectors.GRID_COLUMNS:
        check.errors.append(_file_error(_("The grid's target or layout is unknown: export the grid again.")))
        return
    leaves = selectors.grid_leaves(plan, node, actor)
    columns = selectors.grid_columns(node, parsed.cols)
    keys = [c.key for c in columns] + [selectors.OTHER_COLUMN]
    table = selectors.grid_table(
        leaves=leaves, rows=parsed.rows, columns=columns, row_page=list(selectors.grid_rows(leaves, parsed.rows))
    )
    current: dict[tuple[str, str], Decimal] = {}
    for row in table["rows"]:
        for key, cell in zip(keys, row["cells"], strict=True):
            current[(str(row["key"] or ""), key)] = cell["amount"] if cell else Decimal(0)
    for number, row_key, col, column, label, value in cells:
        try:
            amount = parse_decimal(value) or Decimal(0)
        except ValueError as exc:
            check.errors.append(RowError(number, f"{label} · {column}", cell_text(value), str(exc)))
            continue
        if amount != current.get((row_key, col), Decimal(0)):
            check.errors.append(
                RowError(
                    number,
                    f"{label} · {column}",
                    cell_text(value),
                    _(
                        "“%(row)s” in %(column)s is not one target (a sum of several, or none): it cannot be changed "
                        "in the grid. Change its targets in the tree export."
                    )
                    % {"row": label, "column": column},
                )
            )


# --- applying ----------------------------------------------------------------------------


@transaction.atomic
def plan_import_apply(
    *, plan: TargetPlan, data: bytes, filename: str = "", reason: str = "", actor: User
) -> ImportResult:
    """Apply a filled export in one transaction: all of it, or (any error) nothing."""
    plan = TargetPlan.objects.select_for_update().select_related("metric").get(pk=plan.pk)
    parsed = parse_file(data, filename)
    ids: list[int] = []
    for entry in parsed.entries:
        try:
            ids.append(int(parse_identifier(entry.node_id)))
        except (TypeError, ValueError):
            continue
    # Lock what the file touches, then check against the state nobody can change until we commit.
    list(TargetNode.objects.select_for_update().filter(plan=plan, pk__in=ids).values_list("pk", flat=True))
    check = plan_import_check(plan=plan, parsed=parsed, actor=actor)
    if check.errors:
        raise ValidationError(
            ngettext(
                "The file has %(count)d error; nothing was imported.",
                "The file has %(count)d errors; nothing was imported.",
                len(check.errors),
            )
            % {"count": len(check.errors)}
        )
    if not check.changes:
        raise ValidationError(_("The file changes nothing."))
    if check.mode == Mode.ADJUSTMENT:
        return _propose(plan, check, reason, actor)
    return _write(plan, check, actor)


def _write(plan: TargetPlan, check: ImportCheck, actor: User) -> ImportResult:
    now = timezone.now()
    places = plan.metric.places
    people = [c for c in check.changes if c.owner_changed or c.deadline_changed]
    if people:
        nodes = []
        for c in people:
            c.node.owner = c.new_owner if c.owner_changed else c.node.owner
            c.node.deadline = c.new_deadline if c.deadline_changed else c.node.deadline
            c.node.updated_at = now
            nodes.append(c.node)
        TargetNode.objects.bulk_update(nodes, ["owner", "deadline", "updated_at"], batch_size=1000)
        TargetNode.objects.filter(pk__in=[n.pk for n in nodes]).update(version=F("version") + 1)
    amounts = [c for c in check.changes if c.amount_changed]
    written = {c.node.pk: (c.old_amount, c.new_amount) for c in amounts}
    rescale = {c.node.pk: c.new_amount for c in amounts if c.rescales_parts}
    if rescale:
        below = rescale_subtrees(plan, rescale, places, only_changed=True)
        written.update({pk: v for pk, v in below.items() if pk not in written})
    apply_amounts(plan, written)
    old_total = plan.total
    root = next((c for c in amounts if c.node.parent_id is None), None)
    if root is not None:
        plan.total = root.new_amount
        plan.save(update_fields=["total"])
    _audit_nodes(check.changes, actor, now)
    summary: dict[str, list[object]] = {
        "file": [None, check.kind],
        "targets": [None, len(check.changes)],
        "amounts_written": [None, len(written)],
    }
    if plan.total != old_total:
        summary["total"] = [str(old_total), str(plan.total)]
    audit(actor=actor, action="target_plan.import", obj=plan, changes=summary)
    return ImportResult(plan=plan, mode=Mode.DRAFT, changed=len(check.changes))


def _audit_nodes(changes: list[NodeChange], actor: User, now: datetime) -> None:
    """One entry per changed target, as `node_update` writes them (in one INSERT)."""
    content_type = ContentType.objects.get_for_model(TargetNode)
    rows = []
    for c in changes:
        diff: dict[str, list[str | None]] = {"source": [None, "import"]}
        if c.amount_changed:
            diff["amount"] = [str(c.old_amount), str(c.new_amount)]
        if c.owner_changed:
            diff["owner"] = [str(c.old_owner) if c.old_owner else None, str(c.new_owner)]
        if c.deadline_changed:
            diff["deadline"] = [str(c.old_deadline) if c.old_deadline else None, str(c.new_deadline)]
        rows.append(
            AuditLog(
                actor=actor,
                action="target.update",
                content_type=content_type,
                object_id=str(c.node.pk),
                changes=diff,
                at=now,
            )
        )
    AuditLog.objects.bulk_create(rows, batch_size=1000)


def _propose(plan: TargetPlan, check: ImportCheck, reason: str, actor: User) -> ImportResult:
    """The deepest changed targets as one adjustment: the service moves their ancestors by the same
    differences, which the sum check made sure are the file's amounts."""
    amounts = [c for c in check.changes if c.amount_changed]
    paths = [c.node.path for c in amounts]
    deepest = [c for c in amounts if not any(p != c.node.path and p.startswith(c.node.path) for p in paths)]
    adjustment = adjustment_propose(
        plan=plan,
        kind=check.adjustment_kind,
        reason=reason,
        changes=[{"node": c.node.pk, "amount": c.new_amount} for c in deepest],
        actor=actor,
    )
    audit(
        actor=actor,
        action="target_plan.import",
        obj=plan,
        changes={"file": [None, check.kind], "adjustment": [None, adjustment.pk], "targets": [None, len(amounts)]},
    )
    return ImportResult(plan=plan, mode=Mode.ADJUSTMENT, changed=len(amounts), adjustment=adjustment)
