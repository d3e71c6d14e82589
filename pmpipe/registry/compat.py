"""Avro schema parsing, identity and compatibility rules for the embedded schema registry.

`parse_schema` validates a schema (with both the `avro` and `fastavro` parsers, which catch
different mistakes) and builds a normalised form: every name fully qualified, namespaces
folded into names, keys sorted. Two schemas with the same `ParsedSchema.canonical` text are
the same schema (same registry id).

`check_compatibility(reader, writer)` applies the Avro specification's schema-resolution
rules (can `reader` decode data written with `writer`?) and returns human messages naming the
field path; an empty list means compatible. It is stricter than the spec on logical types: a
change of logical type, or of decimal precision/scale, is refused because the bytes would be
read back as a different value. `check_level` runs it in the direction(s) a Confluent
compatibility level asks for against the earlier versions of a subject.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import avro.schema
import fastavro

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
COMPATIBILITY_LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

# writer type -> reader types it can be promoted to (Avro spec, "Schema Resolution")
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_LOGICAL_KEYS = ("logicalType", "precision", "scale")


class InvalidSchemaError(ValueError):
    """The text is not a valid Avro schema; the message says why."""


@dataclass(frozen=True)
class ParsedSchema:
    """A validated Avro schema.

    `root` is the normalised tree (a named type is defined inline at its first occurrence and
    referenced by full name afterwards), `names` maps each full name to its definition and
    `canonical` is the compact JSON used for identity.
    """

    root: Any
    names: dict[str, dict[str, Any]] = field(repr=False)
    canonical: str


# ------------------------------------------------------------------------------------------
# parsing and normalisation


def parse_schema(schema: Any) -> ParsedSchema:
    """Validate `schema` (JSON text or the decoded JSON value) and normalise it.

    Raises `InvalidSchemaError` with the parser's reason.
    """
    if isinstance(schema, ParsedSchema):
        return schema
    value = _decode(schema) if isinstance(schema, str) else schema
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            avro.schema.parse(json.dumps(value))
        fastavro.parse_schema(value, _write_hint=False)
    except Exception as e:  # both parsers raise a zoo of types (ValueError, KeyError, ...)
        raise InvalidSchemaError(f"{type(e).__name__}: {e}") from None
    names: dict[str, dict[str, Any]] = {}
    root = _Normaliser(names).node(value, "")
    canonical = json.dumps(root, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ParsedSchema(root=root, names=names, canonical=canonical)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        stripped = text.strip()
        if stripped in PRIMITIVES:  # a bare primitive name is a valid schema too
            return stripped
        raise InvalidSchemaError(f"not JSON: {e}") from None


def _fullname(name: str, namespace: str) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _namespace_of(fullname: str) -> str:
    return fullname.rpartition(".")[0]


class _Normaliser:
    """Turns a decoded schema into the normalised tree, collecting named types."""

    def __init__(self, names: dict[str, dict[str, Any]]) -> None:
        self.names = names

    def node(self, value: Any, namespace: str) -> Any:
        if isinstance(value, str):
            return value if value in PRIMITIVES else self.reference(value, namespace)
        if isinstance(value, list):
            return [self.node(branch, namespace) for branch in value]
        if not isinstance(value, dict):
            raise InvalidSchemaError(f"unexpected schema element {value!r}")
        kind = value.get("type")
        if not isinstance(kind, str):
            return self.node(kind, namespace)
        if kind in PRIMITIVES:
            props = {k: v for k, v in value.items() if k != "type"}
            return {"type": kind, **props} if props else kind
        if kind in ("record", "error", "enum", "fixed"):
            return self.named(value, kind, namespace)
        if kind == "array":
            rest = {k: v for k, v in value.items() if k not in ("type", "items")}
            return {**rest, "type": "array", "items": self.node(value["items"], namespace)}
        if kind == "map":
            rest = {k: v for k, v in value.items() if k not in ("type", "values")}
            return {**rest, "type": "map", "values": self.node(value["values"], namespace)}
        return self.reference(kind, namespace)

    def reference(self, name: str, namespace: str) -> str:
        for candidate in (_fullname(name, namespace), name):
            if candidate in self.names:
                return candidate
        raise InvalidSchemaError(f"unknown type {name!r}")

    def named(self, value: dict[str, Any], kind: str, namespace: str) -> dict[str, Any]:
        ns = value.get("namespace", namespace) or ""
        fullname = _fullname(str(value["name"]), ns)
        inner_ns = _namespace_of(fullname)
        out: dict[str, Any] = {
            k: v for k, v in value.items() if k not in ("name", "namespace", "fields", "aliases")
        }
        out["name"] = fullname
        if "aliases" in value:
            out["aliases"] = [_fullname(str(a), inner_ns) for a in value["aliases"]]
        self.names[fullname] = out  # before the fields: a record may refer to itself
        if kind in ("record", "error"):
            out["fields"] = [self.field(f, inner_ns) for f in value.get("fields", [])]
        return out

    def field(self, value: dict[str, Any], namespace: str) -> dict[str, Any]:
        out = {k: v for k, v in value.items() if k != "type"}
        out["type"] = self.node(value["type"], namespace)
        if isinstance(out["type"], list) and out["type"] and "default" in value:
            _check_union_default(value["name"], value["default"], out["type"][0])
        return out


_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "bytes": (str,),
    "string": (str,),
}


def _check_union_default(name: str, default: Any, first: Any) -> None:
    """The spec: a union field's default must match the union's first branch (the parsers
    only check that it matches some branch). Checked for primitive first branches."""
    kind = (
        first if isinstance(first, str) else first.get("type") if isinstance(first, dict) else None
    )
    if kind not in _DEFAULT_TYPES:
        return
    ok = isinstance(default, _DEFAULT_TYPES[kind]) and (
        kind == "boolean" or not isinstance(default, bool)
    )
    if not ok:
        raise InvalidSchemaError(
            f"field {name!r}: default {default!r} does not match the first union branch {kind} "
            "(put the default's type first in the union)"
        )


# ------------------------------------------------------------------------------------------
# compatibility


def check_compatibility(reader: Any, writer: Any, *, reader_is_new: bool = True) -> list[str]:
    """Messages explaining why `reader` cannot decode data written with `writer` ([] if it can).

    `reader` / `writer` are JSON text, decoded JSON or `ParsedSchema`. `reader_is_new` only
    changes the wording: True (BACKWARD: the new schema reads old data) says "added"/"removed"
    relative to the writer; False (FORWARD: the old schema reads new data) the other way round.
    Raises `InvalidSchemaError` if either schema is invalid.
    """
    r = parse_schema(reader)
    w = parse_schema(writer)
    checker = _Checker(r.names, w.names, reader_is_new)
    checker.check(r.root, w.root, _Loc())
    return list(dict.fromkeys(checker.messages))


def check_level(
    level: str, new: ParsedSchema, previous: Sequence[tuple[int, ParsedSchema]]
) -> list[str]:
    """Messages for registering `new` under `level`, given the earlier live versions
    `previous` as (version, schema) oldest first. Non-transitive levels only look at the
    latest one. Each message is prefixed with the version it conflicts with."""
    level = level.upper()
    if level not in COMPATIBILITY_LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}")
    if level == "NONE" or not previous:
        return []
    targets = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    backward = level.startswith(("BACKWARD", "FULL"))
    forward = level.startswith(("FORWARD", "FULL"))
    messages: list[str] = []
    for version, old in reversed(targets):
        if backward:
            found = check_compatibility(new, old, reader_is_new=True)
            messages += [f"version {version}, new schema reading old data: {m}" for m in found]
        if forward:
            found = check_compatibility(old, new, reader_is_new=False)
            messages += [f"version {version}, old schema reading new data: {m}" for m in found]
    return messages


@dataclass(frozen=True)
class _Loc:
    """Where the checker is: the dotted field path from the root and the enclosing record."""

    path: str = ""
    record: str | None = None

    def field(self, name: str, record: str) -> _Loc:
        return _Loc(f"{self.path}.{name}" if self.path else name, record)

    def items(self) -> _Loc:
        return _Loc(self.path + "[]", self.record)

    def values(self) -> _Loc:
        return _Loc(self.path + "{}", self.record)

    def where(self) -> str:
        if self.record is None:
            return f"schema root{self.path}"
        return f"field '{self.path}' in record {self.record}"


class _Checker:
    """Walks a reader and a writer schema side by side, collecting messages."""

    def __init__(
        self,
        reader_names: dict[str, dict[str, Any]],
        writer_names: dict[str, dict[str, Any]],
        reader_is_new: bool,
    ) -> None:
        self.reader_names = reader_names
        self.writer_names = writer_names
        self.reader_is_new = reader_is_new
        self.messages: list[str] = []
        self._in_progress: set[tuple[str, str]] = set()

    # -- helpers ----------------------------------------------------------------------------
    def _resolve(self, node: Any, names: dict[str, dict[str, Any]]) -> Any:
        if isinstance(node, str) and node not in PRIMITIVES:
            return names[node]
        return node

    def _changed(self, loc: _Loc, reader: Any, writer: Any) -> None:
        old, new = (writer, reader) if self.reader_is_new else (reader, writer)
        self.messages.append(f"{loc.where()}: type changed from {describe(old)} to {describe(new)}")

    # -- the rules --------------------------------------------------------------------------
    def check(self, reader: Any, writer: Any, loc: _Loc) -> None:
        reader = self._resolve(reader, self.reader_names)
        writer = self._resolve(writer, self.writer_names)
        if isinstance(writer, list):
            for branch in writer:
                self._check_writer_branch(reader, self._resolve(branch, self.writer_names), loc)
            return
        if isinstance(reader, list):
            match = self._select_branch(reader, writer)
            if match is None:
                self._changed(loc, reader, writer)
            else:
                self.check(match, writer, loc)
            return
        self._check_single(reader, writer, loc)

    def _check_writer_branch(self, reader: Any, branch: Any, loc: _Loc) -> None:
        candidates = reader if isinstance(reader, list) else [reader]
        match = self._select_branch(candidates, branch)
        if match is not None:
            self.check(match, branch, loc)
            return
        if self.reader_is_new:
            text = f"the old union branch {describe(branch)} cannot be read as {describe(reader)}"
        else:
            text = f"the new union branch {describe(branch)} cannot be read as {describe(reader)}"
        self.messages.append(f"{loc.where()}: {text}")

    def _select_branch(self, union: list[Any], writer: Any) -> Any | None:
        """The reader union branch Avro resolution would pick for `writer`, or None."""
        branches = [self._resolve(b, self.reader_names) for b in union]
        wkind = _kind(writer)
        for b in branches:
            if _kind(b) == wkind and (not _is_named(b) or _names_match(b, writer)):
                return b
        for b in branches:
            if _kind(b) in _PROMOTIONS.get(wkind, frozenset()):
                return b
        return None

    def _check_single(self, reader: Any, writer: Any, loc: _Loc) -> None:
        rkind, wkind = _kind(reader), _kind(writer)
        if rkind != wkind and rkind not in _PROMOTIONS.get(wkind, frozenset()):
            self._changed(loc, reader, writer)
            return
        if _is_named(reader) and not _names_match(reader, writer):
            old, new = (writer, reader) if self.reader_is_new else (reader, writer)
            self.messages.append(
                f"{loc.where()}: {rkind} name changed from {old['name']} to {new['name']}"
            )
            return
        if _logical(reader) != _logical(writer):
            self._changed(loc, reader, writer)
            return
        if rkind == "record":
            self._check_record(reader, writer, loc)
        elif rkind == "enum":
            self._check_enum(reader, writer, loc)
        elif rkind == "fixed" and reader["size"] != writer["size"]:
            self._changed(loc, reader, writer)
        elif rkind == "array":
            self.check(reader["items"], writer["items"], loc.items())
        elif rkind == "map":
            self.check(reader["values"], writer["values"], loc.values())

    def _check_record(self, reader: dict[str, Any], writer: dict[str, Any], loc: _Loc) -> None:
        key = (reader["name"], writer["name"])
        if key in self._in_progress:  # recursive type: already being compared further up
            return
        self._in_progress.add(key)
        try:
            by_name = {f["name"]: f for f in writer["fields"]}
            for rfield in reader["fields"]:
                wfield = by_name.get(rfield["name"])
                for alias in rfield.get("aliases", []):
                    wfield = wfield or by_name.get(alias)
                here = loc.field(rfield["name"], reader["name"])
                if wfield is not None:
                    self.check(rfield["type"], wfield["type"], here)
                elif "default" not in rfield:
                    self.messages.append(self._missing_field(here, reader["name"]))
        finally:
            self._in_progress.discard(key)

    def _missing_field(self, loc: _Loc, record: str) -> str:
        if self.reader_is_new:
            return f"field '{loc.path}' added to record {record} without a default"
        return (
            f"field '{loc.path}' removed from record {record}, "
            "but the old schema has no default for it"
        )

    def _check_enum(self, reader: dict[str, Any], writer: dict[str, Any], loc: _Loc) -> None:
        known = set(reader["symbols"])
        unknown = [s for s in writer["symbols"] if s not in known]
        if not unknown or "default" in reader:
            return
        listed = ", ".join(repr(s) for s in unknown)
        if self.reader_is_new:
            text = f"symbol(s) {listed} removed from enum {reader['name']}, which has no default"
        else:
            text = (
                f"symbol(s) {listed} added to enum {reader['name']}, "
                "but the old schema has no enum default"
            )
        self.messages.append(f"{loc.where()}: {text}")


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union"
    kind = str(node["type"])
    return "record" if kind == "error" else kind


def _is_named(node: Any) -> bool:
    return _kind(node) in ("record", "enum", "fixed")


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    """Avro matches named types by unqualified name, or by a reader alias."""
    if reader["name"].rpartition(".")[2] == writer["name"].rpartition(".")[2]:
        return True
    return writer["name"] in reader.get("aliases", [])


def _logical(node: Any) -> tuple[Any, ...]:
    if not isinstance(node, dict) or "logicalType" not in node:
        return ()
    if node["logicalType"] == "decimal":
        return tuple(node.get(k, 0 if k == "scale" else None) for k in _LOGICAL_KEYS)
    return (node["logicalType"],)


def describe(node: Any) -> str:
    """Short human form of a normalised schema node: `bytes/decimal(18,6)`, `record a.B`."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union[" + ", ".join(describe(b) for b in node) + "]"
    kind = _kind(node)
    if kind == "record":
        return f"record {node['name']}"
    if kind == "enum":
        return f"enum {node['name']}"
    if kind == "array":
        return f"array<{describe(node['items'])}>"
    if kind == "map":
        return f"map<{describe(node['values'])}>"
    base = f"fixed {node['name']}[{node['size']}]" if kind == "fixed" else kind
    logical = node.get("logicalType")
    if logical == "decimal":
        return f"{base}/decimal({node.get('precision')},{node.get('scale', 0)})"
    return f"{base}/{logical}" if logical else base
