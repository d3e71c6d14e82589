"""HTTP front of the embedded schema registry: the Confluent REST subset used by
confluent-kafka's SchemaRegistryClient / Avro serdes and by Redpanda Console.

`make_app(store_path)` builds the aiohttp application, `run(host, port, data_dir)` serves it
until SIGINT/SIGTERM, and `RegistryThread` serves it from a background thread (tests, or
embedding the registry in another process). Only AVRO schemas without references are
accepted. Errors use Confluent's shape: {"error_code": 40401, "message": "..."}.

Run standalone with `python -m pmpipe.registry.server --port 18081 --data-dir data`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from pmpipe.registry.store import (
    RegistryError,
    RegistryStore,
    StoredSchema,
    SubjectVersion,
    store_path_for,
)

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18081
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
STORE: web.AppKey[RegistryStore] = web.AppKey("store", RegistryStore)
_MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ------------------------------------------------------------------------------------------
# helpers


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False), status=status, content_type=CONTENT_TYPE
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _reply({"error_code": code, "message": message}, status=status)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").strip().lower() == "true"


def _store(request: web.Request) -> RegistryStore:
    return request.app[STORE]


def _subject(request: web.Request) -> str:
    return request.match_info["subject"]


def _schema_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    try:
        return int(raw)
    except ValueError:
        raise RegistryError(404, 40403, f"Schema {raw} not found.") from None


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RegistryError(400, 400, f"Malformed JSON request body: {e}") from None
    if not isinstance(body, dict):
        raise RegistryError(400, 400, "The request body must be a JSON object")
    return body


async def _schema_text(request: web.Request) -> str:
    """The schema string of a register / lookup / compatibility request, AVRO only."""
    body = await _body(request)
    schema_type = str(body.get("schemaType") or "AVRO").upper()
    if schema_type != "AVRO":
        raise RegistryError(
            422, 42201, f"Unsupported schema type {schema_type}: this registry stores AVRO only"
        )
    if body.get("references"):
        raise RegistryError(
            422, 42201, "Schema references are not supported by this registry (inline the types)"
        )
    if "schema" not in body:
        raise RegistryError(422, 42201, "Invalid schema: the request has no 'schema' field")
    return body["schema"]  # type: ignore[no-any-return]  # store.register checks the type


def _version_body(v: SubjectVersion) -> dict[str, Any]:
    return {
        "subject": v.subject,
        "version": v.version,
        "id": v.schema_id,
        "guid": v.guid,
        "schema": v.schema,
    }


def _schema_body(s: StoredSchema) -> dict[str, Any]:
    return {"schema": s.schema, "guid": s.guid}


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run a store write (it fsyncs) off the event loop."""
    return await asyncio.to_thread(func, *args)


# ------------------------------------------------------------------------------------------
# handlers: misc


async def root(_: web.Request) -> web.Response:
    return _reply({})


async def health(_: web.Request) -> web.Response:
    return _reply({"status": "ok"})


async def schema_types(_: web.Request) -> web.Response:
    return _reply(["AVRO"])


async def contexts(_: web.Request) -> web.Response:
    return _reply(["."])


# ------------------------------------------------------------------------------------------
# handlers: schemas by id


async def list_schemas(request: web.Request) -> web.Response:
    rows = _store(request).all_schemas(
        request.query.get("subjectPrefix", ""),
        deleted=_flag(request, "deleted"),
        latest_only=_flag(request, "latestOnly"),
    )
    return _reply([_version_body(v) for v in rows])


async def schema_by_id(request: web.Request) -> web.Response:
    return _reply(_schema_body(_store(request).schema_by_id(_schema_id(request))))


async def raw_schema_by_id(request: web.Request) -> web.Response:
    return web.Response(
        text=_store(request).schema_by_id(_schema_id(request)).schema, content_type=CONTENT_TYPE
    )


async def schema_by_guid(request: web.Request) -> web.Response:
    return _reply(_schema_body(_store(request).schema_by_guid(request.match_info["guid"])))


async def subjects_by_id(request: web.Request) -> web.Response:
    usages = _store(request).usages(_schema_id(request), deleted=_flag(request, "deleted"))
    wanted = request.query.get("subject")
    return _reply(sorted({s for s, _ in usages if wanted is None or s == wanted}))


async def versions_by_id(request: web.Request) -> web.Response:
    usages = _store(request).usages(_schema_id(request), deleted=_flag(request, "deleted"))
    wanted = request.query.get("subject")
    return _reply(
        [{"subject": s, "version": v} for s, v in usages if wanted is None or s == wanted]
    )


# ------------------------------------------------------------------------------------------
# handlers: subjects


async def list_subjects(request: web.Request) -> web.Response:
    return _reply(
        _store(request).subjects(
            request.query.get("subjectPrefix", ""),
            deleted=_flag(request, "deleted"),
            deleted_only=_flag(request, "deleted_only") or _flag(request, "deletedOnly"),
        )
    )


async def list_versions(request: web.Request) -> web.Response:
    return _reply(
        _store(request).versions(
            _subject(request),
            deleted=_flag(request, "deleted"),
            deleted_only=_flag(request, "deleted_only") or _flag(request, "deletedOnly"),
        )
    )


async def register(request: web.Request) -> web.Response:
    schema = await _schema_text(request)
    v: SubjectVersion = await _in_thread(_store(request).register, _subject(request), schema)
    return _reply({"id": v.schema_id, "guid": v.guid, "subject": v.subject, "version": v.version})


async def lookup(request: web.Request) -> web.Response:
    schema = await _schema_text(request)
    found = _store(request).lookup(_subject(request), schema, deleted=_flag(request, "deleted"))
    return _reply(_version_body(found))


async def get_version(request: web.Request) -> web.Response:
    found = _store(request).get_version(
        _subject(request), request.match_info["version"], deleted=_flag(request, "deleted")
    )
    return _reply(_version_body(found))


async def get_version_raw(request: web.Request) -> web.Response:
    found = _store(request).get_version(
        _subject(request), request.match_info["version"], deleted=_flag(request, "deleted")
    )
    return web.Response(text=found.schema, content_type=CONTENT_TYPE)


async def referenced_by(request: web.Request) -> web.Response:
    _store(request).get_version(_subject(request), request.match_info["version"], deleted=True)
    return _reply([])  # references are not supported, so nothing refers to anything


async def delete_subject(request: web.Request) -> web.Response:
    versions = await _in_thread(
        _store(request).delete_subject, _subject(request), _flag(request, "permanent")
    )
    return _reply(versions)


async def delete_version(request: web.Request) -> web.Response:
    version = await _in_thread(
        _store(request).delete_version,
        _subject(request),
        request.match_info["version"],
        _flag(request, "permanent"),
    )
    return _reply(version)


# ------------------------------------------------------------------------------------------
# handlers: compatibility and config


def _compat_reply(request: web.Request, messages: list[str]) -> web.Response:
    body: dict[str, Any] = {"is_compatible": not messages}
    if messages or _flag(request, "verbose"):
        body["messages"] = messages
    return _reply(body)


async def compat_version(request: web.Request) -> web.Response:
    schema = await _schema_text(request)
    messages = _store(request).test_compatibility(
        _subject(request), schema, request.match_info["version"]
    )
    return _compat_reply(request, messages)


async def compat_all(request: web.Request) -> web.Response:
    schema = await _schema_text(request)
    return _compat_reply(request, _store(request).test_compatibility(_subject(request), schema))


async def _level_from_body(request: web.Request) -> Any:
    body = await _body(request)
    return body.get("compatibility", body.get("compatibilityLevel"))


async def get_global_config(request: web.Request) -> web.Response:
    return _reply({"compatibilityLevel": _store(request).global_compatibility()})


async def put_global_config(request: web.Request) -> web.Response:
    level = await _level_from_body(request)
    return _reply({"compatibility": await _in_thread(_store(request).set_compatibility, level)})


async def delete_global_config(request: web.Request) -> web.Response:
    old = await _in_thread(_store(request).delete_compatibility)
    return _reply({"compatibility": old, "compatibilityLevel": old})


async def get_subject_config(request: web.Request) -> web.Response:
    level = _store(request).subject_compatibility(
        _subject(request), default_to_global=_flag(request, "defaultToGlobal")
    )
    return _reply({"compatibilityLevel": level})


async def put_subject_config(request: web.Request) -> web.Response:
    level = await _level_from_body(request)
    done = await _in_thread(_store(request).set_compatibility, level, _subject(request))
    return _reply({"compatibility": done})


async def delete_subject_config(request: web.Request) -> web.Response:
    old = await _in_thread(_store(request).delete_compatibility, _subject(request))
    return _reply({"compatibility": old, "compatibilityLevel": old})


async def get_mode(_: web.Request) -> web.Response:
    return _reply({"mode": "READWRITE"})


async def get_subject_mode(request: web.Request) -> web.Response:
    if _flag(request, "defaultToGlobal"):
        return _reply({"mode": "READWRITE"})
    raise RegistryError(
        404,
        40409,
        f"Subject '{_subject(request)}' does not have subject-level mode configured",
    )


async def put_mode(request: web.Request) -> web.Response:
    mode = str((await _body(request)).get("mode", "")).upper()
    if mode not in _MODES:
        raise RegistryError(422, 42204, f"Invalid mode {mode!r}. Valid values are {_MODES}")
    if mode != "READWRITE":
        raise RegistryError(
            422, 42205, f"Mode {mode} is not supported by this registry (always READWRITE)"
        )
    return _reply({"mode": mode})


async def delete_subject_mode(_: web.Request) -> web.Response:
    return _reply({"mode": "READWRITE"})


# ------------------------------------------------------------------------------------------
# application


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into Confluent's error body."""
    try:
        return await handler(request)
    except RegistryError as e:
        return _error(e.status, e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _error(e.status, e.status, f"HTTP {e.status} {e.reason}")
    except Exception:
        log.exception(
            "schema registry request failed method=%s path=%s", request.method, request.path
        )
        return _error(500, 500, "Internal server error")


def make_app(store_path: Path) -> web.Application:
    """The registry application over the state file `store_path` (loaded now; a corrupt file
    raises `RegistryStoreError`)."""
    app = web.Application(middlewares=[_errors])
    app[STORE] = RegistryStore(store_path)
    r = app.router
    r.add_get("/", root)
    r.add_get("/health", health)
    r.add_get("/contexts", contexts)
    r.add_get("/schemas", list_schemas)
    r.add_get("/schemas/types", schema_types)
    r.add_get("/schemas/ids/{id}", schema_by_id)
    r.add_get("/schemas/ids/{id}/schema", raw_schema_by_id)
    r.add_get("/schemas/ids/{id}/subjects", subjects_by_id)
    r.add_get("/schemas/ids/{id}/versions", versions_by_id)
    r.add_get("/schemas/guids/{guid}", schema_by_guid)
    r.add_get("/subjects", list_subjects)
    r.add_post("/subjects/{subject}", lookup)
    r.add_delete("/subjects/{subject}", delete_subject)
    r.add_get("/subjects/{subject}/versions", list_versions)
    r.add_post("/subjects/{subject}/versions", register)
    r.add_get("/subjects/{subject}/versions/{version}", get_version)
    r.add_delete("/subjects/{subject}/versions/{version}", delete_version)
    r.add_get("/subjects/{subject}/versions/{version}/schema", get_version_raw)
    r.add_get("/subjects/{subject}/versions/{version}/referencedby", referenced_by)
    r.add_post("/compatibility/subjects/{subject}/versions", compat_all)
    r.add_post("/compatibility/subjects/{subject}/versions/{version}", compat_version)
    r.add_get("/config", get_global_config)
    r.add_put("/config", put_global_config)
    r.add_delete("/config", delete_global_config)
    r.add_get("/config/{subject}", get_subject_config)
    r.add_put("/config/{subject}", put_subject_config)
    r.add_delete("/config/{subject}", delete_subject_config)
    r.add_get("/mode", get_mode)
    r.add_put("/mode", put_mode)
    r.add_get("/mode/{subject}", get_subject_mode)
    r.add_put("/mode/{subject}", put_mode)
    r.add_delete("/mode/{subject}", delete_subject_mode)
    return app


async def serve(
    host: str,
    port: int,
    data_dir: Path,
    stop: asyncio.Event,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until `stop` is set. Logs the readiness line (with the bound port, so port 0
    works) and then calls `on_ready(url)`."""
    app = make_app(store_path_for(data_dir))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        url = f"http://{host}:{bound}"
        log.info("schema registry ready url=%s data_dir=%s", url, data_dir)
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("schema registry stopped")


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, data_dir: Path = Path("data")) -> None:
    """Serve the registry in the foreground until SIGINT or SIGTERM (blocking)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(host, port, data_dir, stop)

    asyncio.run(main())


class RegistryThread:
    """The registry served from a daemon thread with its own event loop.

    `start()` returns once it accepts connections (or re-raises the startup error); `url`
    is then set. Use as a context manager to stop it on exit.
    """

    def __init__(self, data_dir: Path, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_secs: float = 10.0) -> str:
        self._thread = threading.Thread(target=self._main, name="schema-registry", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_secs):
            raise TimeoutError(f"schema registry did not start within {timeout_secs}s")
        if self._error is not None:
            raise self._error
        return self.url

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.host, self.port, self.data_dir, self._stop, self._started)

        try:
            asyncio.run(main())
        except BaseException as e:
            self._error = e
            self._ready.set()

    def _started(self, url: str) -> None:
        self.url = url
        self._ready.set()

    def stop(self, timeout_secs: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_secs)

    def __enter__(self) -> RegistryThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """`python -m pmpipe.registry.server`: serve with JSON logs on stderr."""
    from pmpipe.log import setup_logging

    parser = argparse.ArgumentParser(description="Embedded Confluent-compatible schema registry")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    setup_logging("schema-registry")
    run(args.host, args.port, args.data_dir)


if __name__ == "__main__":
    main()
