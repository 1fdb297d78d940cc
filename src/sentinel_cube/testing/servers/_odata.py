"""A small evaluator of the OData ``$filter`` subset the CDSE catalogue is queried with.

Supported: ``and``/``or``/``not``, parentheses, comparisons (``eq ne lt le gt
ge``) of ``Name``, ``Online``, ``Collection/Name``, ``ContentDate/Start|End`` with
strings, numbers, booleans and ``2023-06-01T00:00:00.000Z`` times,
``OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((...))')`` and
``Attributes/OData.CSC.<Type>Attribute/any(att:att/Name eq 'x' and
att/OData.CSC.<Type>Attribute/Value le 3)``. Anything else raises
:class:`ODataFilterError` (the server answers 400, as CDSE does).

Examples
--------
>>> record = {"Name": "S2B_X.SAFE", "Collection/Name": "SENTINEL-2",
...           "attributes": [("cloudCover", "Double", 12.5)]}
>>> f = parse_filter("Collection/Name eq 'SENTINEL-2' and "
...     "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
...     "att/OData.CSC.DoubleAttribute/Value le 30)")
>>> f(record)
True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import shapely

__all__ = ["ODataFilterError", "parse_filter"]

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<geo>geography'[^']*')
    | (?P<str>'(?:[^']|'')*')
    | (?P<dt>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<punct>[():=,])
    | (?P<name>[A-Za-z_][A-Za-z0-9_./]*)
    )""",
    re.VERBOSE,
)
_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
}


class ODataFilterError(ValueError):
    """The filter uses syntax outside the supported subset."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ODataFilterError(f"cannot parse the filter at {text[pos : pos + 30]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self.peek()
        if (
            token is None
            or (value is not None and token[1] != value)
            or (kind is not None and token[0] != kind)
        ):
            raise ODataFilterError(f"expected {value or kind} at token {self.pos}, got {token}")
        self.pos += 1
        return token[1]

    def parse(self) -> Predicate:
        predicate = self.expr(None)
        if self.peek() is not None:
            raise ODataFilterError(f"unexpected {self.peek()} after the filter")
        return predicate

    def expr(self, var: str | None) -> Predicate:
        parts = [self.term(var)]
        while self.peek() == ("name", "or"):
            self.take("or")
            parts.append(self.term(var))
        if len(parts) == 1:
            return parts[0]

        def either(record: dict[str, Any]) -> bool:
            return any(p(record) for p in parts)

        return either

    def term(self, var: str | None) -> Predicate:
        parts = [self.factor(var)]
        while self.peek() == ("name", "and"):
            self.take("and")
            parts.append(self.factor(var))
        if len(parts) == 1:
            return parts[0]

        def both(record: dict[str, Any]) -> bool:
            return all(p(record) for p in parts)

        return both

    def factor(self, var: str | None) -> Predicate:
        token = self.peek()
        if token == ("name", "not"):
            self.take("not")
            inner = self.factor(var)
            return lambda r: not inner(r)
        if token == ("punct", "("):
            self.take("(")
            inner = self.expr(var)
            self.take(")")
            return inner
        name = self.take(kind="name")
        if name == "OData.CSC.Intersects":
            self.take("(")
            self.take("area")
            self.take("=")
            geo = self.take(kind="geo")
            self.take(")")
            wkt = geo[len("geography'") : -1].split(";", 1)[-1]
            area = shapely.from_wkt(wkt)
            return lambda r: r.get("geometry") is not None and r["geometry"].intersects(area)
        if name.endswith("/any"):
            match = re.fullmatch(r"Attributes/OData\.CSC\.(\w+)Attribute/any", name)
            if match is None:
                raise ODataFilterError(f"unsupported lambda collection {name!r}")
            self.take("(")
            variable = self.take(kind="name")
            self.take(":")
            inner = self.expr(variable)
            self.take(")")
            kind = match.group(1)
            return lambda r: any(
                inner({"__attr__": a}) for a in r.get("attributes", ()) if a[1] == kind
            )
        op = self.take(kind="name")
        if op not in _OPS:
            raise ODataFilterError(f"unsupported operator {op!r}")
        value = self.value()
        getter = self.getter(name, var)
        compare = _OPS[op]
        return lambda r: compare(getter(r), value)

    def value(self) -> Any:
        kind, text = self.tokens[self.pos]
        self.pos += 1
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "dt":
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        if kind == "num":
            return float(text)
        if kind == "name" and text in ("true", "false"):
            return text == "true"
        raise ODataFilterError(f"unsupported literal {text!r}")

    @staticmethod
    def getter(path: str, var: str | None) -> Callable[[dict[str, Any]], Any]:
        if var is not None and path.startswith(var + "/"):
            field = path[len(var) + 1 :]
            if field == "Name":
                return lambda r: r["__attr__"][0]
            if field.endswith("/Value"):
                return lambda r: r["__attr__"][2]
            raise ODataFilterError(f"unsupported attribute field {field!r}")
        return lambda r: r.get(path)


def parse_filter(text: str) -> Predicate:
    """Compile an OData ``$filter`` into a predicate over product records.

    A record is a dict with keys ``Name``, ``Online``, ``Collection/Name``,
    ``ContentDate/Start``, ``ContentDate/End`` (aware datetimes), ``geometry``
    (shapely) and ``attributes`` (``(name, type, value)`` tuples, numbers as float).
    """
    return _Parser(text).parse()
