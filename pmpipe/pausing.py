"""The pause/resume protocol that lets the embedded stack roll its broker log under producers.

SIGUSR1: the process flushes what is in flight, buffers new records locally, and writes
`<run dir>/<name>.paused.json` = {"next_offsets": {"topic:partition": next offset}} (from
delivery reports, which unlike Tansu's high watermark can be trusted).
SIGUSR2: a fresh producer session against the (new) broker, the buffer drained, the state file
removed. The supervisor (`pmpipe.embedded`) waits for the state file before it restarts the
broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path

from pmpipe.kafka import RecordProducer

log = logging.getLogger(__name__)

RUN_DIR_ENV = "PMPIPE_RUN_DIR"
NAME_ENV = "PMPIPE_CHILD_NAME"


def state_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.paused.json"


def read_paused_offsets(path: Path) -> dict[tuple[str, int], int] | None:
    """Offsets a paused producer reported, or None if it has not paused (yet)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    out = {}
    for key, value in data.get("next_offsets", {}).items():
        topic, _, partition = key.rpartition(":")
        out[(topic, int(partition))] = int(value)
    return out


def install_pause_handlers(
    loop: asyncio.AbstractEventLoop,
    producer: RecordProducer,
    name: str | None = None,
    run_dir: Path | None = None,
    on_resume: Callable[[], None] | None = None,
) -> None:
    """Handle SIGUSR1/SIGUSR2 for `producer` (no-op when not run by the embedded stack)."""
    name = name or os.environ.get(NAME_ENV)
    run_dir_text = os.environ.get(RUN_DIR_ENV)
    run_dir = run_dir or (Path(run_dir_text) if run_dir_text else None)
    if not name or run_dir is None:
        return
    path = state_path(run_dir, name)

    async def pause() -> None:
        offsets = await asyncio.to_thread(producer.pause)
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"next_offsets": {f"{t}:{p}": o for (t, p), o in offsets.items()}})
        )
        os.replace(tmp, path)
        log.info("paused for a broker log roll; state=%s", path)

    async def resume() -> None:
        await asyncio.to_thread(producer.resume)
        path.unlink(missing_ok=True)
        log.info("resumed after a broker log roll")
        if on_resume is not None:
            on_resume()

    tasks: set[asyncio.Task[None]] = set()

    def spawn(factory: Callable[[], Coroutine[None, None, None]]) -> None:
        task = loop.create_task(factory())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGUSR1, spawn, pause)
    loop.add_signal_handler(signal.SIGUSR2, spawn, resume)
