"""What checking a file produces and applying it consumes: the options, row errors, the row being checked, the
records planned for creation and the plan itself."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeAlias, overload

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from pipeline.models import ImportKind
from salesmgmt.lib.tabular import DATE_ORDERS, cell_text

BATCH = 500  # rows per bulk query or bulk insert


@dataclass
class ImportOptions:
    create_missing: bool = False
    date_order: str = "auto"  # auto | dmy | mdy
    pipeline_id: int | None = None
    # Empty amounts of open deals: "zero", or "list_price" (an estimate from the product's list price).
    missing_amount: str = "zero"
    # Partial import: commit the good rows and hand the bad ones back as a file. Off: all or nothing.
    skip_bad_rows: bool = False
    # Rows that name no rep: the manager of the row's region (nearest up the tree), else the default owner.
    default_owner_id: int | None = None
    owner_from_region_manager: bool = False

    @classmethod
    def from_dict(cls, data: dict | None) -> ImportOptions:
        data = data or {}
        try:
            default_owner_id = int(data["default_owner_id"]) if data.get("default_owner_id") else None
        except (TypeError, ValueError):
            raise ValidationError(_("The default owner must be a user id."))
        options = cls(
            create_missing=bool(data.get("create_missing", False)),
            date_order=data.get("date_order") or "auto",
            pipeline_id=data.get("pipeline_id") or None,
            missing_amount=data.get("missing_amount") or "zero",
            skip_bad_rows=bool(data.get("skip_bad_rows", False)),
            default_owner_id=default_owner_id,
            owner_from_region_manager=bool(data.get("owner_from_region_manager", False)),
        )
        if options.date_order not in DATE_ORDERS:
            raise ValidationError(_("Unknown date order “%(order)s”.") % {"order": options.date_order})
        if options.missing_amount not in ("zero", "list_price"):
            raise ValidationError(_("Unknown rule for missing amounts."))
        return options

    @property
    def owner_optional(self) -> bool:
        """Whether the options name an owner for rows without one (so no owner column is needed)."""
        return bool(self.default_owner_id or self.owner_from_region_manager)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RowError:
    row: int
    field: str
    column: str
    value: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.column or self.field
        if not where:  # about the whole row (a ragged CSV row): the message names the row
            return self.message
        value = f" “{self.value}”" if self.value else ""
        return _("Row %(row)s, %(where)s%(value)s: %(message)s") % {
            "row": self.row,
            "where": where,
            "value": value,
            "message": self.message,
        }


class Row:
    """One row being validated: its values by field and the errors found so far."""

    def __init__(self, number: int, values: dict[str, Any], columns: dict[str, str], errors: list[RowError]):
        self.number = number
        self.values = values
        self.columns = columns
        self.errors = errors
        self.failed = False

    def raw(self, name: str) -> Any:  # a cell as read: str, number, date... (salesmgmt.lib.tabular)
        column = self.columns.get(name)
        return self.values.get(column) if column else None

    def text(self, name: str) -> str:
        return cell_text(self.raw(name))

    def error(self, name: str, message: object) -> None:
        self.failed = True
        self.errors.append(RowError(self.number, name, self.columns.get(name, ""), self.text(name), str(message)))


@dataclass(eq=False)
class New:
    """Something the file names that does not exist yet and will be created (create_missing)."""

    what: str  # region | user | product_line | product | customer
    name: str
    row: int
    attrs: dict[str, Any] = field(default_factory=dict)
    pk: int | None = None

    def refs(self) -> Iterator[New]:
        """The other New records this one hangs on (a parent region, a product's line, a customer's owner)."""
        return (value for value in self.attrs.values() if isinstance(value, New))


# What a row names: an existing record's id, or a New one.
Ref: TypeAlias = int | New


@overload
def ref_pk(ref: Ref) -> int: ...
@overload
def ref_pk(ref: None) -> None: ...
def ref_pk(ref: Ref | None) -> int | None:
    """The id of what a row names; a New has one once `import_apply` created it."""
    return ref.pk if isinstance(ref, New) else ref


@dataclass
class Plan:
    kind: str
    total_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    new: dict[str, dict[str, New]] = field(default_factory=lambda: defaultdict(dict))
    preview: list[dict] = field(default_factory=list)
    date_order: str = "auto"
    pipeline_id: int | None = None
    notice: str = ""
    already_imported: int = 0
    rounded_rows: int = 0  # rows whose amount had more than two decimals (rounded half up to the cent)

    @property
    def will_create(self) -> dict[str, int]:
        """Counts by the same keys `import_apply` returns: regions, product_lines, products, users,
        customers, opportunities."""
        counts = Counter({f"{what}s": len(items) for what, items in self.new.items()})
        counts["customers" if self.kind == ImportKind.CUSTOMERS else "opportunities"] += len(self.items)
        return {k: v for k, v in counts.items() if v}

    def to_create(self) -> dict[str, list[str]]:
        """What will be created, by the keys of `will_create` (regions, product_lines, products, users,
        customers), each record by its label (a region or product line with its path), for the preview."""
        return {
            f"{what}s": [str(new.attrs.get("label") or new.name) for new in items.values()]
            for what, items in self.new.items()
            if items
        }

    def rejected_rows(self) -> dict[int, list[RowError]]:
        """The errors by row number, rows in file order."""
        rows: dict[int, list[RowError]] = defaultdict(list)
        for error in sorted(self.errors, key=lambda e: e.row):
            rows[error.row].append(error)
        return dict(rows)

    def good_rows_only(self) -> Plan:
        """The plan of a partial import: the rows without errors, and only the records they need created.
        A bad row may have planned a new customer or region before failing; unless a good row names it too,
        it is dropped, so nothing of a bad row is written."""
        needed: set[int] = set()
        stack = [value for item in self.items for value in item.values() if isinstance(value, New)]
        while stack:
            ref = stack.pop()
            if id(ref) not in needed:
                needed.add(id(ref))
                stack.extend(ref.refs())
        kept: defaultdict[str, dict[str, New]] = defaultdict(dict)
        for what, items in self.new.items():
            kept[what] = {key: n for key, n in items.items() if id(n) in needed}
        return replace(self, errors=[], new=kept)
