"""fastschema.compile_schema must agree with jsonschema on every document (it only says yes/no)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from jsonschema import Draft202012Validator

from freshbatch.fastschema import compile_schema

SCHEMAS = sorted(REPO.glob("validators/phase*/*.schema.json"))

PAIR = {"known": "I want to eat.", "target": "Quiero comer."}

VALID_DOCS: dict[str, Any] = {
    "phase1/batch": {
        "translations": {"S0001": dict(PAIR), "S0002": {"known": "Now.", "target": "Ahora."}}
    },
    "phase1/merged": {
        "version": "7.7.0",
        "course": "spa_for_eng",
        "target_language": "spa",
        "known_language": "eng",
        "generated": "2025-10-29T21:50:47Z",
        "total_seeds": 2,
        "translations": {"S0001": dict(PAIR), "S0002": {"known": "Now.", "target": "Ahora."}},
    },
    "phase3/batch": {
        "seeds": [
            {
                "seed_id": "S0001",
                "seed_pair": dict(PAIR),
                "legos": [
                    {"type": "A", "lego": {"known": "I want", "target": "Quiero"}},
                    {
                        "type": "M",
                        "lego": {"known": "to eat", "target": "comer"},
                        "components": [{"known": "", "target": "comer"}],
                    },
                ],
            },
            {"seed_id": "S0002", "legos": []},
        ]
    },
    "phase3/merged": {
        "course": "spa_for_eng",
        "phase": "3",
        "version": "8.1.1",
        "generated_at": "now",
        "total_seeds": 1,
        "total_legos": 2,
        "seeds": [
            {
                "seed_id": "S0001",
                "seed_pair": dict(PAIR),
                "legos": [
                    {
                        "id": "S0001L01",
                        "type": "A",
                        "new": True,
                        "lego": {"known": "I want", "target": "Quiero"},
                    },
                    {
                        "id": "S0001L02",
                        "type": "M",
                        "new": False,
                        "lego": {"known": "to eat", "target": "comer"},
                        "components": [
                            {"known": "to", "target": "co"},
                            {"known": "", "target": "mer"},
                        ],
                    },
                ],
            }
        ],
    },
    "phase5/batch": {
        "baskets": {
            "S0001L01": {
                "lego": {"known": "I want", "target": "Quiero"},
                "practice_phrases": [dict(PAIR), {"known": "I want", "target": "Quiero"}],
            },
            "S0001L02": {"lego": {"known": "to eat", "target": "comer"}, "practice_phrases": []},
        }
    },
    "phase5/merged": {
        "version": "1.0.0",
        "phase": "5",
        "course": "spa_for_eng",
        "generated_at": "now",
        "total_baskets": 1,
        "baskets": {
            "S0001L01": {
                "lego": {"known": "I want", "target": "Quiero"},
                "practice_phrases": [dict(PAIR)],
                "is_final_lego": True,
                "phrase_count": 1,
            }
        },
    },
}

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.0,
    2.5,
    -0.5,
    10**20,
    "",
    " ",
    "x",
    " x",
    "x ",
    "x\n",
    "\tx",
    "S0001",
    "S0001L01",
    "A",
    "M",
    "a",
    "B",
    [],
    [1],
    ["x"],
    [{}],
    {},
    {"known": "a"},
    {"known": "a", "target": "b"},
    {"x": 1},
    "ü",
    "中文",
    "\u00a0x",
]
ODD_KEYS = [
    "S001",
    "S00001",
    "s0001",
    "S0001L1",
    "S0001L001",
    "S0001 ",
    " S0001",
    "SXXXX",
    "S0001\n",
    "S０００１",
    "S٠٠٠١",
    "extra",
    "",
    "S0001L01",
    "S0009",
]


def schema_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.schema.json')}"


def nodes(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, node) in doc, the root included."""
    found = [(path, doc)]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found.extend(nodes(v, (*path, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found.extend(nodes(v, (*path, i)))
    return found


def replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


def mutate(doc: Any, rng: random.Random) -> Any:
    path, node = rng.choice(nodes(doc))
    kind = rng.randrange(12)
    if kind == 0 and isinstance(node, dict) and node:  # drop a (possibly required) key
        del node[rng.choice(list(node))]
    elif kind == 1 and isinstance(node, dict):  # add an unknown key
        node[rng.choice(["extra", "note", "id", "new", "known"])] = rng.choice(ODD_VALUES)
    elif kind == 2 and isinstance(node, dict) and node:  # rename a key (bad id patterns)
        old = rng.choice(list(node))
        node[rng.choice(ODD_KEYS)] = node.pop(old)
    elif kind == 3:  # wrong type
        doc = replace(doc, path, copy.deepcopy(rng.choice(ODD_VALUES)))
    elif kind == 4 and isinstance(node, str):  # empty string or surrounding whitespace
        doc = replace(
            doc, path, rng.choice(["", " " + node, node + " ", node + "\n", "\n" + node, " "])
        )
    elif kind == 5 and isinstance(node, (bool, int)):  # bool for int, float for int, negative
        doc = replace(
            doc, path, rng.choice([True, False, float(node), node + 0.5, -1, -1.0, str(node)])
        )
    elif kind == 6:  # nest in a list
        doc = replace(doc, path, [node])
    elif kind == 7 and isinstance(node, list):  # grow, empty, or poison a list
        choice = rng.randrange(3)
        if choice == 0 and node:
            node.append(copy.deepcopy(rng.choice(node)))
        elif choice == 1:
            node.clear()
        else:
            node.append(copy.deepcopy(rng.choice(ODD_VALUES)))
    elif kind == 8 and isinstance(node, dict):  # nest in an object
        doc = replace(doc, path, {"value": node})
    elif kind == 9 and isinstance(node, str):  # enum / id neighbours
        doc = replace(
            doc, path, rng.choice(["A", "M", "AM", "a", "S0001", "S0001L01", node.upper()])
        )
    elif kind == 10 and isinstance(node, bool):
        doc = replace(doc, path, rng.choice([0, 1, "true", None]))
    else:  # replace with a valid-looking pair
        doc = replace(doc, path, {"known": "k", "target": "t"})
    return doc


@pytest.mark.parametrize("path", SCHEMAS, ids=schema_name)
def test_fast_check_agrees_with_jsonschema_on_mutations(path: Path) -> None:
    schema = json.loads(path.read_text("utf-8"))
    fast = compile_schema(schema)
    assert fast is not None, "the shipped schemas must stay inside the fast subset"
    validator = Draft202012Validator(schema)
    base = VALID_DOCS[schema_name(path)]
    assert validator.is_valid(base) and fast(base)
    rng = random.Random(f"freshbatch-{schema_name(path)}")
    outcomes = {True: 0, False: 0}
    for trial in range(600):
        doc = copy.deepcopy(base)
        for _ in range(rng.choice([1, 1, 2, 3])):
            doc = mutate(doc, rng)
        expected = validator.is_valid(doc)
        assert fast(doc) is expected, (trial, json.dumps(doc, ensure_ascii=False))
        outcomes[expected] += 1
    # the mutations must exercise both answers, or the agreement means little
    assert outcomes[True] >= 30 and outcomes[False] >= 200, outcomes


def test_all_shipped_schemas_have_a_valid_example() -> None:
    assert {schema_name(p) for p in SCHEMAS} == set(VALID_DOCS)


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        ({"type": "integer"}, [1, 2.0, -3], [True, 1.5, "1", None]),
        ({"type": "number", "minimum": 0, "maximum": 3}, [0, 3, 1.5], [-1, 3.5, False]),
        ({"minimum": 0}, ["x", None, True, 0], [-1, -0.1]),
        ({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "中文"], ["a", "abcd", 12]),
        ({"pattern": "^S\\d{4}$"}, ["S0001", 5, "S0001\n"], ["S001", "xS0001"]),
        (
            {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
            [["a"], ["a", "b"]],
            [[], ["a", "b", "c"], [1], "a"],
        ),
        ({"type": ["string", "null"]}, ["a", None], [1, [], False]),
        ({"enum": ["A", "M"]}, ["A", "M"], ["a", None, ["A"]]),
        ({"enum": [False, 0]}, [False, 0], [True, 1, None]),
        ({"const": True}, [True], [1, 1.0, "true"]),
        (
            {
                "required": ["a"],
                "additionalProperties": False,
                "properties": {"a": {"type": "string"}},
            },
            [{"a": "x"}, "not an object"],
            [{}, {"a": 1}, {"a": "x", "b": 1}],
        ),
        (
            {"propertyNames": {"pattern": "^[a-z]+$"}, "additionalProperties": {"type": "integer"}},
            [{"ab": 1}, {}],
            [{"Ab": 1}, {"ab": "x"}],
        ),
        ({"$defs": {"t": {"type": "string"}}, "items": {"$ref": "#/$defs/t"}}, [["a"], []], [[1]]),
        (
            {
                "$defs": {"node": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "$ref": "#/$defs/node",
            },
            [[], [[]], [[], [[]]]],
            [[1], [[], ["x"]]],
        ),
        (True, [1, None, {}], []),
        ({"items": False}, [[]], [[1]]),
    ],
)
def test_fast_check_agrees_on_each_supported_keyword(
    schema: Any, valid: list[Any], invalid: list[Any]
) -> None:
    fast = compile_schema(schema)
    assert fast is not None
    validator = Draft202012Validator(schema)
    for doc in valid:
        assert validator.is_valid(doc) and fast(doc), doc
    for doc in invalid:
        assert not validator.is_valid(doc) and not fast(doc), doc


def test_const_and_enum_never_pass_what_jsonschema_rejects() -> None:
    # jsonschema compares booleans by identity at every depth: [True] is not [1]. A fast "valid"
    # here would skip jsonschema entirely and let a wrong document through check_schema.
    cases = [
        ({"const": [1]}, [True]),
        ({"const": {"a": 1}}, {"a": True}),
        ({"enum": [[0]]}, [False]),
    ]
    wrong = [
        (schema, doc)
        for schema, doc in cases
        if compile_schema(schema)(doc) and not Draft202012Validator(schema).is_valid(doc)
    ]  # type: ignore[misc]
    assert wrong == []


def test_const_and_enum_treat_equal_numbers_as_jsonschema_does() -> None:
    # jsonschema: 1.0 equals 1 (as for "type": "integer"); a fast "invalid" only costs time,
    # but the contract is agreement.
    cases = [({"enum": [1]}, 1.0), ({"const": 0}, 0.0), ({"enum": [2.0]}, 2)]
    wrong = [
        (schema, doc)
        for schema, doc in cases
        if compile_schema(schema)(doc) is not Draft202012Validator(schema).is_valid(doc)
    ]  # type: ignore[misc]
    assert wrong == []


@pytest.mark.parametrize(
    "schema",
    [
        {"not": {"type": "string"}},
        {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "integer"}},
        {"then": {"type": "string"}},  # then without if: ignored
        {"type": "object", "if": {"required": ["a"]}, "then": {"not": {"required": ["b"]}}},
    ],
)
def test_logic_keywords_agree_with_jsonschema(schema: dict[str, Any]) -> None:
    fast = compile_schema(schema)
    assert fast is not None
    docs = ["", "ab", "a", 1, 1.5, None, {}, {"a": 1}, {"a": 1, "b": 2}, {"b": 2}, [], True]
    for doc in docs:
        assert fast(doc) is Draft202012Validator(schema).is_valid(doc), (schema, doc)


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}},
        {"items": {"allOf": [{"type": "string"}]}},
        {"patternProperties": {"^a": {"type": "string"}}},
        {"$defs": {"x": {"dependentRequired": {"a": ["b"]}}}, "$ref": "#/$defs/x"},
        {"$ref": "other.json#/x"},
        {"prefixItems": [{"type": "string"}]},
        {"if": {"type": "string"}, "then": {"contains": {"type": "string"}}},
        {"format": "date-time"},
        {"type": "object", "additionalProperties": {"uniqueItems": True}},
        {"properties": {"a": 5}},
    ],
)
def test_unsupported_keywords_return_none(schema: dict[str, Any]) -> None:
    assert compile_schema(schema) is None


def test_ignored_annotation_keywords_do_not_block_compilation() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "x",
        "title": "t",
        "description": "d",
        "$comment": "c",
        "default": 1,
        "examples": [1],
        "type": "integer",
    }
    fast = compile_schema(schema)
    assert fast is not None and fast(1) and not fast("1")


TYPED = [
    {"type": kind, **keywords}
    for kind in ("string", "object", "array", "integer", ["string", "null"])
    for keywords in (
        {},
        {"minLength": 1, "pattern": "^a"},
        {"required": ["a"], "properties": {"a": {"type": "string", "minLength": 2}}},
        {"additionalProperties": False},
        {"items": {"type": "string"}, "minItems": 1},
        {"minItems": 1, "maxLength": 2},  # keywords of two types: no fused check
        {"enum": ["a", [], {}]},
    )
]
VALUES = [None, 1, 1.0, True, "", "a", "ab", "b", [], ["a"], [1], {}, {"a": "x"}, {"a": "xy"},
          {"a": 1}, {"b": 2}]  # fmt: skip


@pytest.mark.parametrize("schema", TYPED, ids=lambda s: json.dumps(s, sort_keys=True))
def test_a_type_with_its_keywords_agrees_with_jsonschema(schema: dict[str, Any]) -> None:
    """A typed node is compiled to one check that also demands the type: it must reject
    every other type exactly as jsonschema does, and still apply each keyword."""
    fast = compile_schema(schema)
    assert fast is not None
    validator = Draft202012Validator(schema)
    for value in VALUES:
        assert fast(value) == validator.is_valid(value), value
