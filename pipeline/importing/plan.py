"""What checking a file produces and applying it consumes: the options, row errors, the row being checked, the
records planned for creation and the plan itself."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
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

    @classmethod
    def from_dict(cls, data: dict | None) -> ImportOptions:
        data = data or {}
        options = cls(
            create_missing=bool(data.get("create_missing", False)),
            date_order=data.get("date_order") or "auto",
            pipeline_id=data.get("pipeline_id") or None,
            missing_amount=data.get("missing_amount") or "zero",
        )
        if options.date_order not in DATE_ORDERS:
            raise ValidationError(_("Unknown date order “%(order)s”.") % {"order": options.date_order})
        if options.missing_amount not in ("zero", "list_price"):
            raise ValidationError(_("Unknown rule for missing amounts."))
        return options

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

    @property
    def will_create(self) -> dict[str, int]:
        """Counts by the same keys `import_apply` returns: regions, product_lines, products, users,
        customers, opportunities."""
        counts = Counter({f"{what}s": len(items) for what, items in self.new.items()})
        counts["customers" if self.kind == ImportKind.CUSTOMERS else "opportunities"] += len(self.items)
        return {k: v for k, v in counts.items() if v}
