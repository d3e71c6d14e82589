"""Persistent state of the embedded schema registry: schemas, subjects, versions, config.

Everything lives in one JSON file (`<data_dir>/registry/registry.json`), rewritten atomically
(temp file, fsync, os.replace, fsync of the directory) after every change and reloaded on
start, so schema ids and versions survive restarts. Schema ids are global: the same schema
(same canonical form) gets the same id under every subject, and an id is never reused.

All public methods are thread-safe (one lock) and raise `RegistryError` carrying the HTTP
status and Confluent error code the REST layer returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pmpipe.errors import PipelineError
from pmpipe.registry.compat import (
    COMPATIBILITY_LEVELS,
    InvalidSchemaError,
    ParsedSchema,
    check_level,
    parse_schema,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_COMPATIBILITY = "BACKWARD"
_GUID_NAMESPACE = uuid.UUID("5d0c8f55-6c8e-4a53-9a8f-2f3b0f1c9e21")
_MAX_VERSION = 2**31 - 1
T = TypeVar("T")


def store_path_for(data_dir: Path) -> Path:
    """Where the registry keeps its state inside the pipeline's data directory."""
    return Path(data_dir) / "registry" / "registry.json"


class RegistryError(PipelineError):
    """A request the registry refuses, with its HTTP status and Confluent error code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message, component="schema-registry")
        self.status = status
        self.code = code


class RegistryStoreError(PipelineError):
    """The state file cannot be read or written."""


def _subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def _version_not_found(subject: str, version: int | str) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found for subject '{subject}'.")


def _schema_not_found(what: str = "Schema") -> RegistryError:
    return RegistryError(404, 40403, f"{what} not found.")


def parse_version(text: str | int) -> int:
    """A version path segment: a number >= 1, or "latest" / -1 (returned as -1)."""
    raw = str(text).strip()
    if raw.lower() == "latest":
        return -1
    try:
        version = int(raw)
    except ValueError:
        version = 0
    if version == -1 or 1 <= version <= _MAX_VERSION:
        return version
    raise RegistryError(
        422,
        42202,
        f"The specified version '{raw}' is not a valid version id. Allowed values are between "
        f'[1, {_MAX_VERSION}] and the string "latest"',
    )


def validate_level(level: Any) -> str:
    """Upper-cased compatibility level, or 42203."""
    text = str(level or "").strip().upper()
    if text not in COMPATIBILITY_LEVELS:
        raise RegistryError(
            422,
            42203,
            f"Invalid compatibility level {level!r}. Valid values are "
            + ", ".join(COMPATIBILITY_LEVELS),
        )
    return text


@dataclass(frozen=True)
class StoredSchema:
    """One distinct schema: its global id, guid and text (compact JSON)."""

    schema_id: int
    guid: str
    schema: str


@dataclass(frozen=True)
class SubjectVersion:
    """One version of a subject, as the REST API shows it."""

    subject: str
    version: int
    schema_id: int
    guid: str
    schema: str
    deleted: bool = False


@dataclass
class _Version:
    version: int
    schema_id: int
    deleted: bool = False


@dataclass
class _State:
    next_id: int = 1
    compatibility: str = DEFAULT_COMPATIBILITY
    schemas: dict[int, StoredSchema] = field(default_factory=dict)
    subjects: dict[str, list[_Version]] = field(default_factory=dict)
    subject_compatibility: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "next_id": self.next_id,
            "compatibility": self.compatibility,
            "schemas": [
                {"id": s.schema_id, "guid": s.guid, "schema": s.schema}
                for s in sorted(self.schemas.values(), key=lambda s: s.schema_id)
            ],
            "subjects": {
                name: [{"version": v.version, "id": v.schema_id, "deleted": v.deleted} for v in vs]
                for name, vs in sorted(self.subjects.items())
            },
            "subject_compatibility": dict(sorted(self.subject_compatibility.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _State:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported format {data.get('format')!r}")
        schemas = {
            int(s["id"]): StoredSchema(int(s["id"]), str(s["guid"]), str(s["schema"]))
            for s in data["schemas"]
        }
        subjects = {
            str(name): [
                _Version(int(v["version"]), int(v["id"]), bool(v.get("deleted", False)))
                for v in versions
            ]
            for name, versions in data["subjects"].items()
        }
        for name, versions in subjects.items():
            for v in versions:
                if v.schema_id not in schemas:
                    raise ValueError(f"subject {name!r} version {v.version}: unknown id")
        return cls(
            next_id=int(data["next_id"]),
            compatibility=validate_level(data.get("compatibility", DEFAULT_COMPATIBILITY)),
            schemas=schemas,
            subjects=subjects,
            subject_compatibility={
                str(k): validate_level(v) for k, v in data.get("subject_compatibility", {}).items()
            },
        )


class RegistryStore:
    """The registry's data and rules; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._state = _State()
        self._parsed: dict[int, ParsedSchema] = {}
        self._by_canonical: dict[str, int] = {}
        self._load()

    # -- persistence ---------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            log.info("schema registry starting empty path=%s", self.path)
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._state = _State.from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RegistryStoreError(
                f"cannot load schema registry state from {self.path}: {e}"
            ) from e
        for stored in self._state.schemas.values():
            try:
                parsed = parse_schema(stored.schema)
            except InvalidSchemaError as e:
                raise RegistryStoreError(
                    f"schema id {stored.schema_id} in {self.path} no longer parses: {e}"
                ) from e
            self._parsed[stored.schema_id] = parsed
            self._by_canonical.setdefault(parsed.canonical, stored.schema_id)
        log.info(
            "schema registry state loaded path=%s schemas=%d subjects=%d",
            self.path,
            len(self._state.schemas),
            len(self._state.subjects),
        )

    def _save(self) -> None:
        payload = json.dumps(self._state.to_json(), indent=1, ensure_ascii=False).encode()
        atomic_write(self.path, payload)

    def _mutate(self, change: Callable[[], T]) -> T:
        """Run `change` on the state and persist; on a write failure restore the old state."""
        with self._lock:
            before = self._state.to_json()
            parsed_before = dict(self._parsed)
            canonical_before = dict(self._by_canonical)
            result = change()
            try:
                self._save()
            except OSError as e:
                self._state = _State.from_json(before)
                self._parsed, self._by_canonical = parsed_before, canonical_before
                log.error("schema registry write failed path=%s error=%s", self.path, e)
                raise RegistryError(500, 50001, f"Error in the backend datastore: {e}") from e
            return result

    # -- reading -------------------------------------------------------------------------------
    def _live(self, subject: str, deleted: bool = False) -> list[_Version]:
        versions = self._state.subjects.get(subject, [])
        return [v for v in versions if deleted or not v.deleted]

    def _view(self, subject: str, v: _Version) -> SubjectVersion:
        stored = self._state.schemas[v.schema_id]
        return SubjectVersion(
            subject, v.version, v.schema_id, stored.guid, stored.schema, v.deleted
        )

    def subjects(
        self, prefix: str = "", deleted: bool = False, deleted_only: bool = False
    ) -> list[str]:
        """Subject names with at least one live version (or soft-deleted, per the flags)."""
        with self._lock:
            out = []
            for name, versions in sorted(self._state.subjects.items()):
                if not name.startswith(prefix) or not versions:
                    continue
                live = any(not v.deleted for v in versions)
                if (deleted_only and not live) or (not deleted_only and (live or deleted)):
                    out.append(name)
            return out

    def versions(
        self, subject: str, deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        with self._lock:
            all_versions = self._state.subjects.get(subject, [])
            if deleted_only:
                chosen = [v for v in all_versions if v.deleted]
            else:
                chosen = self._live(subject, deleted)
            if not chosen and not (deleted_only and all_versions):
                raise _subject_not_found(subject)
            return [v.version for v in chosen]

    def get_version(
        self, subject: str, version: str | int, deleted: bool = False
    ) -> SubjectVersion:
        number = parse_version(version)
        with self._lock:
            live = self._live(subject, deleted)
            if not live:
                raise _subject_not_found(subject)
            if number == -1:
                return self._view(subject, live[-1])
            for v in live:
                if v.version == number:
                    return self._view(subject, v)
            raise _version_not_found(subject, number)

    def schema_by_id(self, schema_id: int) -> StoredSchema:
        with self._lock:
            stored = self._state.schemas.get(schema_id)
        if stored is None:
            raise _schema_not_found(f"Schema {schema_id}")
        return stored

    def schema_by_guid(self, guid: str) -> StoredSchema:
        with self._lock:
            for stored in self._state.schemas.values():
                if stored.guid == guid:
                    return stored
        raise _schema_not_found(f"Schema {guid}")

    def usages(self, schema_id: int, deleted: bool = False) -> list[tuple[str, int]]:
        """(subject, version) pairs that use an id; 40403 if the id is unknown."""
        self.schema_by_id(schema_id)
        with self._lock:
            return [
                (name, v.version)
                for name, versions in sorted(self._state.subjects.items())
                for v in versions
                if v.schema_id == schema_id and (deleted or not v.deleted)
            ]

    def all_schemas(
        self, prefix: str = "", deleted: bool = False, latest_only: bool = False
    ) -> list[SubjectVersion]:
        with self._lock:
            out: list[SubjectVersion] = []
            for name in sorted(self._state.subjects):
                if not name.startswith(prefix):
                    continue
                live = self._live(name, deleted)
                out += [self._view(name, v) for v in (live[-1:] if latest_only else live)]
            return out

    def lookup(self, subject: str, schema: str, deleted: bool = False) -> SubjectVersion:
        """The version of `subject` holding this schema (POST /subjects/{subject})."""
        parsed = self._parse(schema)
        with self._lock:
            live = self._live(subject, deleted)
            if not live:
                raise _subject_not_found(subject)
            for v in live:
                if self._parsed[v.schema_id].canonical == parsed.canonical:
                    return self._view(subject, v)
        raise _schema_not_found()

    # -- compatibility -------------------------------------------------------------------------
    def global_compatibility(self) -> str:
        with self._lock:
            return self._state.compatibility

    def subject_compatibility(self, subject: str, default_to_global: bool = False) -> str:
        with self._lock:
            level = self._state.subject_compatibility.get(subject)
            if level is not None:
                return level
            if default_to_global:
                return self._state.compatibility
        raise RegistryError(
            404,
            40408,
            f"Subject '{subject}' does not have subject-level compatibility configured",
        )

    def effective_compatibility(self, subject: str) -> str:
        with self._lock:
            return self._state.subject_compatibility.get(subject, self._state.compatibility)

    def set_compatibility(self, level: Any, subject: str | None = None) -> str:
        """Set the global level (subject None) or a subject override; returns the level."""
        checked = validate_level(level)

        def change() -> str:
            if subject is None:
                self._state.compatibility = checked
            else:
                self._state.subject_compatibility[subject] = checked
            return checked

        result = self._mutate(change)
        log.info("schema registry compatibility set subject=%s level=%s", subject, checked)
        return result

    def delete_compatibility(self, subject: str | None = None) -> str:
        """Drop a subject override (or reset the global level); returns the previous level."""
        with self._lock:
            if subject is not None and subject not in self._state.subject_compatibility:
                if subject not in self._state.subjects:
                    raise _subject_not_found(subject)
                self.subject_compatibility(subject)  # raises 40408: nothing to delete

        def change() -> str:
            if subject is None:
                old = self._state.compatibility
                self._state.compatibility = DEFAULT_COMPATIBILITY
                return old
            return self._state.subject_compatibility.pop(subject)

        return self._mutate(change)

    def test_compatibility(
        self, subject: str, schema: str, version: str | int | None = None
    ) -> list[str]:
        """Messages for `schema` against one version of `subject` (the direction its level asks
        for) or, with `version` None, against the versions the level covers."""
        parsed = self._parse(schema)
        with self._lock:
            level = self.effective_compatibility(subject)
            if version is None:
                return check_level(level, parsed, self._previous(subject))
            target = self.get_version(subject, version)
            one_level = level.removesuffix("_TRANSITIVE")
            return check_level(
                one_level, parsed, [(target.version, self._parsed[target.schema_id])]
            )

    def _previous(self, subject: str) -> list[tuple[int, ParsedSchema]]:
        return [(v.version, self._parsed[v.schema_id]) for v in self._live(subject)]

    # -- writing -------------------------------------------------------------------------------
    @staticmethod
    def _parse(schema: Any) -> ParsedSchema:
        if not isinstance(schema, str) or not schema.strip():
            raise RegistryError(422, 42201, "Invalid schema: the 'schema' field must be a string")
        try:
            return parse_schema(schema)
        except InvalidSchemaError as e:
            raise RegistryError(422, 42201, f"Invalid schema: {e}") from None

    def register(self, subject: str, schema: str) -> SubjectVersion:
        """Add `schema` as the next version of `subject` (or return the version that already
        holds it). 409 if it breaks the subject's compatibility level."""
        parsed = self._parse(schema)
        with self._lock:
            for v in self._live(subject):
                if self._parsed[v.schema_id].canonical == parsed.canonical:
                    return self._view(subject, v)
            level = self.effective_compatibility(subject)
            problems = check_level(level, parsed, self._previous(subject))
            if problems:
                raise RegistryError(
                    409,
                    409,
                    f'Schema being registered is incompatible with an earlier schema for subject "'
                    f'{subject}" (compatibility {level}), details: [' + "; ".join(problems) + "]",
                )
            result = self._mutate(lambda: self._add_version(subject, parsed, schema))
        log.info(
            "schema registered subject=%s version=%d id=%d",
            subject,
            result.version,
            result.schema_id,
        )
        return result

    def _add_version(self, subject: str, parsed: ParsedSchema, text: str) -> SubjectVersion:
        schema_id = self._by_canonical.get(parsed.canonical)
        if schema_id is None:
            schema_id = self._state.next_id
            self._state.next_id += 1
            compact = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
            guid = str(uuid.uuid5(_GUID_NAMESPACE, parsed.canonical))
            self._state.schemas[schema_id] = StoredSchema(schema_id, guid, compact)
            self._parsed[schema_id] = parsed
            self._by_canonical[parsed.canonical] = schema_id
        versions = self._state.subjects.setdefault(subject, [])
        number = max((v.version for v in versions), default=0) + 1
        entry = _Version(number, schema_id)
        versions.append(entry)
        return self._view(subject, entry)

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        """Soft-delete every live version, or (permanent) forget a soft-deleted subject."""
        with self._lock:
            versions = self._state.subjects.get(subject)
            if not versions:
                raise _subject_not_found(subject)
            live = [v for v in versions if not v.deleted]
            if permanent and live:
                raise RegistryError(
                    404,
                    40405,
                    f"Subject '{subject}' was not deleted first before being permanently deleted",
                )
            if not permanent and not live:
                raise RegistryError(
                    404,
                    40404,
                    f"Subject '{subject}' was soft deleted. Set permanent=true to delete "
                    "permanently",
                )

            def change() -> list[int]:
                if permanent:
                    del self._state.subjects[subject]
                    return [v.version for v in versions]
                for v in live:
                    v.deleted = True
                self._state.subject_compatibility.pop(subject, None)
                return [v.version for v in live]

            result = self._mutate(change)
        log.info("schema subject deleted subject=%s permanent=%s", subject, permanent)
        return result

    def delete_version(self, subject: str, version: str | int, permanent: bool = False) -> int:
        """Soft-delete one version, or (permanent) forget a soft-deleted one."""
        number = parse_version(version)
        with self._lock:
            versions = self._state.subjects.get(subject)
            if not versions:
                raise _subject_not_found(subject)
            live = [v for v in versions if not v.deleted]
            if number == -1:
                if not live:
                    raise _subject_not_found(subject)
                target = live[-1]
            else:
                found = [v for v in versions if v.version == number]
                if not found:
                    raise _version_not_found(subject, number)
                target = found[0]
            if permanent and not target.deleted:
                raise RegistryError(
                    404,
                    40407,
                    f"Subject '{subject}' Version {target.version} was not deleted first before "
                    "being permanently deleted",
                )
            if not permanent and target.deleted:
                raise RegistryError(
                    404,
                    40406,
                    f"Subject '{subject}' Version {target.version} was soft deleted. Set "
                    "permanent=true to delete permanently",
                )

            def change() -> int:
                if permanent:
                    versions.remove(target)
                    if not versions:
                        del self._state.subjects[subject]
                else:
                    target.deleted = True
                return target.version

            return self._mutate(change)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
