"""Extended-property keys and FindItem restrictions (pure functions)."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from tests.ewsserver.mailbox import Item, PropKey, PropValue, parse_system_time
from tests.ewsserver.soap import t


def prop_key(uri: etree._Element) -> PropKey:
    """The storage key of an ExtendedFieldURI, however the client spelled it."""
    tag = uri.get("PropertyTag")
    if tag is not None:
        return ("tag", str(int(tag, 16) if tag.lower().startswith("0x") else int(tag)))
    pset = (uri.get("PropertySetId") or uri.get("DistinguishedPropertySetId") or "").lower()
    if uri.get("PropertyName") is not None:
        return ("name", pset, uri.get("PropertyName", ""))
    return ("id", pset, uri.get("PropertyId", ""))


def prop_values(prop: etree._Element) -> tuple[etree._Element, PropValue]:
    """(ExtendedFieldURI, value) of a request's t:ExtendedProperty."""
    uri = prop.find(t("ExtendedFieldURI"))
    assert uri is not None  # schema-validated: ExtendedFieldURI is required
    value = prop.findtext(t("Value"))
    if value is None:  # multi-valued: keep them joined, the importer never sends these
        value = "\n".join(v.text or "" for v in prop.iter(t("Value")))
    return uri, PropValue(uri.get("PropertyType", "String"), value)


FIELD_GETTERS: dict[str, Callable[[Item], str]] = {
    "item:Subject": lambda i: i.subject,
    "message:InternetMessageId": lambda i: i.message_id,
    "item:ItemClass": lambda i: i.item_class,
    "message:IsRead": lambda i: "true" if i.is_read else "false",
    "item:IsDraft": lambda i: "true" if i.is_draft else "false",
}


def _operand(item: Item, path: etree._Element) -> tuple[str | None, str]:
    """(value, type) of the field a restriction names, or (None, '') if absent."""
    if path.tag == t("ExtendedFieldURI"):
        prop = item.props.get(prop_key(path))
        return (prop.value, prop.type) if prop else (None, "")
    getter = FIELD_GETTERS.get(path.get("FieldURI", ""))
    return (getter(item), "String") if getter else (None, "")


def _compare(left: str, right: str, type_: str) -> int:
    if type_ in ("Integer", "Long", "Short"):
        a, b = int(left), int(right)
    elif type_ == "SystemTime":
        a2, b2 = parse_system_time(left), parse_system_time(right)
        return (a2 > b2) - (a2 < b2)
    else:
        return (left > right) - (left < right)
    return (a > b) - (a < b)


COMPARISONS: dict[str, Callable[[int], bool]] = {
    "IsEqualTo": lambda c: c == 0,
    "IsNotEqualTo": lambda c: c != 0,
    "IsGreaterThan": lambda c: c > 0,
    "IsGreaterThanOrEqualTo": lambda c: c >= 0,
    "IsLessThan": lambda c: c < 0,
    "IsLessThanOrEqualTo": lambda c: c <= 0,
}


def matches(item: Item, expr: etree._Element) -> bool:
    """Evaluate one SearchExpression (the child of t:Restriction) on `item`."""
    name = etree.QName(expr).localname
    children = [c for c in expr if isinstance(c.tag, str)]
    if name == "And":
        return all(matches(item, c) for c in children)
    if name == "Or":
        return any(matches(item, c) for c in children)
    if name == "Not":
        return not matches(item, children[0])
    value, type_ = _operand(item, children[0])
    if name == "Exists":
        return value is not None
    if value is None:
        return False
    const = expr.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    if name == "Contains":
        const = expr.find(t("Constant"))
        wanted = (const.get("Value", "") if const is not None else "").casefold()
        return wanted in value.casefold()
    if const is None or name not in COMPARISONS:
        return False  # comparing two fields is not used by the importer
    return COMPARISONS[name](_compare(value, const.get("Value", ""), type_))
