"""A fast yes/no JSON Schema check for the keyword subset freshbatch's schemas use.

jsonschema takes seconds on a full course file; this compiles a schema into closures and
answers in a fraction of that. It only says valid or not: on "not valid" (or for a schema
using any keyword outside the subset) jsonschema itself runs and produces the messages, so
jsonschema stays the judge. tests/test_fastschema.py cross-checks the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_IGNORED = {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"}
_OBJECT = {"required", "properties", "additionalProperties", "propertyNames"}
_STRING = {"minLength", "maxLength", "pattern"}
_ARRAY = {"items", "minItems", "maxItems"}
_OTHER = {"type", "enum", "const", "$ref", "minimum", "maximum"}
_LOGIC = {"not", "if", "then", "else"}
_KEYWORDS_OF = {"object": _OBJECT, "string": _STRING, "array": _ARRAY}  # a type's own keywords


def _is_integer(v: Any) -> bool:
    return (type(v) is int) or (type(v) is float and v.is_integer())


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


_TYPES: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


class Unsupported(Exception):
    """The schema uses a keyword this checker does not implement."""


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A fast validity check for schema, or None if it uses keywords outside the subset."""
    try:
        return _Compiler(schema).compile(schema)
    except Unsupported:
        return None


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)

    def check(v: Any) -> bool:
        for c in checks:
            if not c(v):
                return False
        return True

    return check


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check | None] = {}

    def compile(self, node: Any) -> Check:
        if node is True:
            return lambda v: True
        if node is False:
            return lambda v: False
        if not isinstance(node, dict):
            raise Unsupported(repr(node))
        words = set(node) - _IGNORED
        unknown = words - _OBJECT - _STRING - _ARRAY - _OTHER - _LOGIC
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        checks: list[Check] = []
        if "$ref" in node:
            checks.append(self._ref(node["$ref"]))
        # one type and only its own keywords: one check that also demands the type
        kind = node.get("type")
        own = _KEYWORDS_OF.get(kind) if isinstance(kind, str) else None
        strict = (
            kind
            if own is not None and words & own and not words & (_OBJECT | _STRING | _ARRAY) - own
            else None
        )
        if "type" in node and strict is None:
            checks.append(self._type(node["type"]))
        if words & _OBJECT or strict == "object":
            checks.append(self._object(node, strict == "object"))
        if words & _STRING or strict == "string":
            checks.append(self._string(node, strict == "string"))
        if words & _ARRAY or strict == "array":
            checks.append(self._array(node, strict == "array"))
        checks.extend(
            self._value(name, node[name])
            for name in sorted(words & _OTHER)
            if name not in ("$ref", "type")
        )
        if words & _LOGIC:
            checks.append(self._logic(node))
        return _all(checks)

    def _logic(self, node: dict[str, Any]) -> Check:
        """not, and if/then/else (then and else without if are ignored, as the spec says)."""
        checks: list[Check] = []
        if "not" in node:
            inner = self.compile(node["not"])
            checks.append(lambda v: not inner(v))
        if "if" in node:
            cond = self.compile(node["if"])
            then = self.compile(node.get("then", True))
            other = self.compile(node.get("else", True))
            checks.append(lambda v: then(v) if cond(v) else other(v))
        return _all(checks)

    def _ref(self, ref: str) -> Check:
        if not ref.startswith("#/"):
            raise Unsupported(ref)
        if ref in self.refs:
            compiled = self.refs[ref]
            if compiled is not None:
                return compiled
            return lambda v: self.refs[ref](v)  # type: ignore[misc]  # recursive reference
        self.refs[ref] = None
        target: Any = self.root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        compiled = self.compile(target)
        self.refs[ref] = compiled
        return compiled

    def _type(self, value: str | list[str]) -> Check:
        tests = [_TYPES[t] for t in ([value] if isinstance(value, str) else value)]
        return tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests)

    def _object(self, node: dict[str, Any], strict: bool = False) -> Check:
        required = tuple(node.get("required", ()))
        props = {k: self.compile(s) for k, s in node.get("properties", {}).items()}
        extra_schema = node.get("additionalProperties", True)
        extra = None if extra_schema is True else self.compile(extra_schema)
        names = self.compile(node["propertyNames"]) if "propertyNames" in node else None

        def check(v: Any) -> bool:
            if type(v) is not dict:
                return not strict
            for k in required:
                if k not in v:
                    return False
            for k, x in v.items():
                if names is not None and not names(k):
                    return False
                c = props.get(k)
                if c is None:
                    if extra is not None and not extra(x):
                        return False
                elif not c(x):
                    return False
            return True

        return check

    def _string(self, node: dict[str, Any], strict: bool = False) -> Check:
        low, high = node.get("minLength", 0), node.get("maxLength")
        search = re.compile(node["pattern"]).search if "pattern" in node else None

        def check(v: Any) -> bool:
            if type(v) is not str:
                return not strict
            if len(v) < low or (high is not None and len(v) > high):
                return False
            return search is None or search(v) is not None

        return check

    def _array(self, node: dict[str, Any], strict: bool = False) -> Check:
        item = self.compile(node["items"]) if "items" in node else None
        low, high = node.get("minItems", 0), node.get("maxItems")

        def check(v: Any) -> bool:
            if type(v) is not list:
                return not strict
            if len(v) < low or (high is not None and len(v) > high):
                return False
            if item is not None:
                for x in v:
                    if not item(x):
                        return False
            return True

        return check

    def _value(self, name: str, value: Any) -> Check:
        if name == "enum":
            return lambda v: any(_equal(v, e) for e in value)
        if name == "const":
            return lambda v: _equal(v, value)
        if name == "minimum":
            return lambda v: not _is_number(v) or v >= value
        return lambda v: not _is_number(v) or v <= value  # maximum
