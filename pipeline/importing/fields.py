"""The fields an import fills, the header names that suggest them, and checking a column -> field mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pipeline.models import ImportKind
from salesmgmt.lib.tabular import normalise

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@dataclass(frozen=True)
class ImportField:
    name: str
    label: StrOrPromise
    synonyms: tuple[str, ...] = ()
    required: bool = False


def _f(name: str, label: StrOrPromise, synonyms: str, required: bool = False) -> ImportField:
    # Synonyms are compared through `normalise`, so "sales agent", "Sales_Agent" and "salesagent" are one.
    return ImportField(name, label, tuple(synonyms.split()), required)


_EXTERNAL_ID = _f(
    "external_id",
    gettext_lazy("External id"),
    "external_id opportunity_id deal_id id ref reference row_id line_id order_line_id order_id customer_id "
    "account_id 外部编号 商机编号 商机id 编号 单号 订单编号 订单号 客户编号",
)
_OWNER = _f(
    "owner",
    gettext_lazy("Owner (rep)"),
    # Not "sales": in exports like Tableau's Superstore "Sales" is the amount (销售额), not the rep.
    "owner sales_agent agent rep sales_rep salesperson account_owner 负责人 销售 销售代表 销售人员 业务员 "
    "归属人 客户经理",
    required=True,
)
_REGION = _f(
    "region",
    gettext_lazy("Region / team"),
    "region area office regional_office territory team sales_region 区域 大区 地区 片区 团队 销售区域",
)
# Two levels below the region column: with "create missing" Region -> State -> City becomes a region subtree.
_STATE = _f("state", gettext_lazy("State / province (below the region)"), "state province 省 省份 省区 州")
_CITY = _f("city", gettext_lazy("City (below the state)"), "city town 城市 市")
DEAL_FIELDS = (
    _EXTERNAL_ID,
    _f(
        "name",
        gettext_lazy("Deal name"),
        "name opportunity opportunity_name deal deal_name title 商机 商机名称 项目 项目名称 名称",
    ),
    _f(
        "customer",
        gettext_lazy("Customer"),
        "customer account account_name company client customer_name 客户 客户名称 公司 公司名称 单位",
    ),
    _OWNER,
    _REGION,
    _STATE,
    _CITY,
    _f("product", gettext_lazy("Product"), "product product_name item sku 产品 产品名称 商品 商品名称"),
    _f(
        "product_line",
        gettext_lazy("Product line"),
        "product_line series product_series line category product_category 产品线 系列 类别 产品类别 品类 大类",
    ),
    _f(
        "product_subline",
        gettext_lazy("Product sub-line (below the product line)"),
        "product_subline sub_category subcategory sub_line product_subcategory 子类别 子类 小类 产品子类",
    ),
    _f(
        "amount",
        gettext_lazy("Amount"),
        "amount value close_value deal_value deal_amount revenue total sales sales_amount 金额 合同金额 商机金额 "
        "成交金额 销售额 销售金额 签约额",
    ),
    _f("currency", gettext_lazy("Currency"), "currency 币种 货币"),
    _f("stage", gettext_lazy("Stage"), "stage deal_stage sales_stage status 阶段 销售阶段 商机阶段 状态"),
    _f(
        "close_date",
        gettext_lazy("Close date (expected, or actual for won/lost)"),
        "close_date expected_close_date closing_date closed_on close won_date order_date 预计成交日期 成交日期 "
        "结单日期 签约日期 关闭日期 赢单日期 订单日期 下单日期",
    ),
    _f(
        "created_on",
        gettext_lazy("Created / engaged on"),
        "created created_on created_at create_date creation_date engage_date start_date 创建日期 创建时间",
    ),
    _f("lost_reason", gettext_lazy("Lost reason"), "lost_reason loss_reason 输单原因 丢单原因"),
    _f("next_step", gettext_lazy("Next step"), "next_step 下一步 下一步计划"),
)
CUSTOMER_FIELDS = (
    _EXTERNAL_ID,
    _f(
        "name",
        gettext_lazy("Customer name"),
        "name customer customer_name account account_name company client 客户 客户名称 公司 公司名称 名称",
        required=True,
    ),
    _OWNER,
    _REGION,
    _STATE,
    _CITY,
    _f("industry", gettext_lazy("Industry"), "industry sector vertical 行业 所属行业"),
    _f("tier", gettext_lazy("Tier"), "tier level grade class 等级 客户等级 级别 分级"),
    _f("notes", gettext_lazy("Notes"), "notes note remark remarks comment comments 备注"),
)
WON_DEAL_REQUIRED = ("amount", "close_date")


def fields_for(kind: str) -> tuple[ImportField, ...]:
    if kind == ImportKind.CUSTOMERS:
        return CUSTOMER_FIELDS
    if kind in (ImportKind.OPPORTUNITIES, ImportKind.WON_DEALS):
        return DEAL_FIELDS
    raise ValidationError(_("Unknown import kind “%(kind)s”.") % {"kind": kind})


def required_fields(kind: str, *, owner_optional: bool = False) -> set[str]:
    """The fields a mapping must feed; the owner is optional when the options give one for rows without it
    (a default owner, or the manager of the row's region)."""
    required = {f.name for f in fields_for(kind) if f.required}
    if kind == ImportKind.WON_DEALS:
        required |= set(WON_DEAL_REQUIRED)
    if owner_optional:
        required.discard("owner")
    return required


def guess_mapping(headers: list[str], kind: str) -> dict[str, str]:
    """{column: field} from the header names (English and Chinese synonyms); each field used once."""
    by_key: dict[str, str] = {}
    for f in fields_for(kind):
        for synonym in (f.name, str(f.label), *f.synonyms):
            by_key.setdefault(normalise(synonym), f.name)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        name = by_key.get(normalise(header))
        if name and name not in used:
            mapping[header] = name
            used.add(name)
    return mapping


def check_mapping(
    mapping: dict[str, str], headers: list[str], kind: str, *, owner_optional: bool = False
) -> dict[str, str]:
    """The mapping without ignored columns; raises ValidationError on unknown columns or fields, a field
    fed by two columns, or a required field left unmapped (`owner_optional`: see `required_fields`)."""
    names = {f.name: f for f in fields_for(kind)}
    clean: dict[str, str] = {}
    errors: list[str] = []
    for column, name in mapping.items():
        if not name:
            continue
        if column not in headers:
            errors.append(_("The file has no column “%(column)s”.") % {"column": column})
        elif name not in names:
            errors.append(_("“%(field)s” is not a field of this import.") % {"field": name})
        elif name in clean.values():
            errors.append(_("Two columns are mapped to “%(field)s”; map one.") % {"field": names[name].label})
        else:
            clean[column] = name
    for name in sorted(required_fields(kind, owner_optional=owner_optional) - set(clean.values())):
        if name == "owner":  # a file that names no rep (an order export) needs a rule instead
            message = _("Map a column to “%(field)s”, or choose a default owner or the region's manager.")
        else:
            message = _("Map a column to “%(field)s”: it is required.")
        errors.append(message % {"field": names[name].label})
    if errors:
        raise ValidationError(errors)
    return clean
