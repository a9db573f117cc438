"""Reading values out of call variables and HTTP responses, and comparing them.

Shared by templating (``{{a.b}}``), webhook response mapping (``$.a.b[0]``), Route
nodes and ``responsePathways`` conditions. Variable names are case-insensitive (the
reference, §4.5); an exact match wins over a case-folded one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_MISSING = object()


def get_key(mapping: Mapping[str, Any], key: str) -> Any:
    """``mapping[key]``, falling back to a case-insensitive match; ``_MISSING`` if absent."""
    if key in mapping:
        return mapping[key]
    folded = key.casefold()
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.casefold() == folded:
            return value
    return _MISSING


def lookup(variables: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """Resolve a dotted variable path (``store_hours.open``, ``items.0.name``).

    A whole key containing dots wins over descending into objects, so a variable really
    named ``a.b`` still resolves. JSON strings holding an object are descended into too:
    webhook results are often stored as text."""
    path = path.strip()
    value = get_key(variables, path)
    if value is not _MISSING:
        return True, value
    parts = path.split(".")
    current: Any = variables
    for part in parts:
        current = _child(current, part)
        if current is _MISSING:
            return False, None
    return True, current


def _child(current: Any, part: str) -> Any:
    if isinstance(current, str) and current[:1] in ("{", "["):
        try:
            current = json.loads(current)
        except ValueError:
            return _MISSING
    if isinstance(current, Mapping):
        return get_key(current, part)
    if isinstance(current, list) and part.lstrip("-").isdigit():
        index = int(part)
        return current[index] if -len(current) <= index < len(current) else _MISSING
    return _MISSING


_JSONPATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]|\[['\"]([^'\"]*)['\"]\]")


def json_path(document: Any, path: str) -> tuple[bool, Any]:
    """The subset of JSONPath that response mappings use: ``$``, ``$.a.b``, ``$.a[0]``,
    ``$['a b']``. Anything else (filters, wildcards) is reported as not found."""
    path = path.strip()
    if not path.startswith("$"):
        path = "$." + path
    rest = path[1:]
    current = document
    position = 0
    while position < len(rest):
        match = _JSONPATH_TOKEN.match(rest, position)
        if match is None:
            return False, None
        position = match.end()
        name, index, quoted = match.groups()
        key = quoted if quoted is not None else name
        current = _child(current, key if key is not None else index)
        if current is _MISSING:
            return False, None
    return True, current


def to_text(value: Any) -> str:
    """How a variable reads inside text: strings as-is, JSON for the rest."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


_TRUE = frozenset({"true", "yes", "y", "1", "yeah", "yep", "correct", "sure"})
_FALSE = frozenset({"false", "no", "n", "0", "nope", "incorrect"})


def coerce(value: Any, type_name: str) -> tuple[bool, Any]:
    """Convert an extracted value to its declared type; ``(False, None)`` if it can't be.

    Empty strings and ``null``-ish words count as "not extracted" so a required variable
    is asked for again."""
    if value is None:
        return False, None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.casefold() in ("null", "none", "undefined", "n/a"):
            return False, None
    else:
        text = to_text(value)
    kind = type_name.lower()
    if kind == "boolean":
        if isinstance(value, bool):
            return True, value
        folded = text.casefold()
        if folded in _TRUE:
            return True, True
        if folded in _FALSE:
            return True, False
        return False, None
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            return False, None
        number = as_number(value)
        if number is None:
            return False, None
        if kind == "integer":
            return (True, int(number)) if number.is_integer() else (False, None)
        return True, int(number) if number.is_integer() else number
    return True, value if isinstance(value, str) else to_text(value)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


# Operators seen in real exports and named by the reference (§3.2), with aliases.
_OPERATOR_ALIASES = {
    "==": "eq",
    "=": "eq",
    "===": "eq",
    "is": "eq",
    "equals": "eq",
    "is equal to": "eq",
    "!=": "ne",
    "!==": "ne",
    "is not": "ne",
    "not equals": "ne",
    "does not equal": "ne",
    "is not equal to": "ne",
    ">": "gt",
    "greater than": "gt",
    "is greater than": "gt",
    "<": "lt",
    "less than": "lt",
    "is less than": "lt",
    ">=": "ge",
    "<=": "le",
    "contains": "contains",
    "includes": "contains",
    "does not contain": "not_contains",
    "not contains": "not_contains",
    "starts with": "starts",
    "ends with": "ends",
    "exists": "exists",
    "is set": "exists",
    "is not null": "exists",
    "not exists": "missing",
    "does not exist": "missing",
    "is not set": "missing",
    "is null": "missing",
}
KNOWN_OPERATORS = frozenset(_OPERATOR_ALIASES)


def normalise_operator(operator: str) -> str | None:
    return _OPERATOR_ALIASES.get(" ".join(operator.strip().lower().split()))


def compare(found: bool, actual: Any, operator: str, expected: str) -> bool:
    """Evaluate ``actual <operator> expected``. Unknown operators are false.

    ``is``/``==`` against ``null``/``not null`` test presence, as the exports use them
    (``["netDue", "is", "not null", ...]``). Equality is numeric when both sides are
    numbers, otherwise a trimmed, case-insensitive text match."""
    op = normalise_operator(operator)
    present = found and actual is not None and to_text(actual).strip() != ""
    target = expected.strip()
    if op in ("eq", "ne") and target.lower() in ("null", "not null", "undefined"):
        wants_present = target.lower() == "not null"
        result = present == wants_present
        return result if op == "eq" else not result
    if op == "exists":
        return present
    if op == "missing":
        return not present
    if op is None or not found:
        # A comparison against an unset variable holds only for "not equal".
        return op == "ne" and target != ""
    text = to_text(actual).strip()
    if op in ("eq", "ne"):
        left, right = as_number(actual), as_number(target)
        if left is not None and right is not None and text.casefold() != target.casefold():
            equal = left == right
        else:
            equal = text.casefold() == target.casefold()
        return equal if op == "eq" else not equal
    if op in ("gt", "lt", "ge", "le"):
        left, right = as_number(actual), as_number(target)
        if left is None or right is None:
            return False
        return {
            "gt": left > right,
            "lt": left < right,
            "ge": left >= right,
            "le": left <= right,
        }[op]
    if op == "contains":
        return target.casefold() in text.casefold()
    if op == "not_contains":
        return target.casefold() not in text.casefold()
    if op == "starts":
        return text.casefold().startswith(target.casefold())
    return text.casefold().endswith(target.casefold())
