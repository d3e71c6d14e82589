"""Run child processes, restart the ones that crash, stop them all in order.

Each child is its own process group and session (a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children itself, so nothing gets the signal twice), with
stdout+stderr merged and re-emitted on the supervisor's stdout as `name | line`.

Lifecycle: children start in dependency order (a child starts once everything in its
`depends_on` is ready); a child that exits unexpectedly is restarted with exponential backoff
and jitter; on SIGINT/SIGTERM/SIGHUP or `stop()` the children are stopped in `stop_order`
groups (lowest first: stop_signal to the whole group, SIGKILL after `stop_timeout_secs`), and
whatever is left of each process group is killed. A second signal during shutdown kills
everything at once. On Linux a child also gets SIGKILL if the supervisor itself dies.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from pmpipe.errors import PipelineError

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_READ_CHUNK = 64 * 1024
_MAX_LINE_BYTES = 1024 * 1024
_READY_CHECK_TIMEOUT_SECS = 5.0
_OUTPUT_DRAIN_SECS = 2.0

Outcome = Literal["exited", "stop", "restart"]


@dataclass(frozen=True)
class ChildSpec:
    """One supervised program.

    `env` is added to (and overrides) the supervisor's environment; PYTHONUNBUFFERED=1 is set
    unless given. `ready_check` is polled until it returns True (an exception counts as not
    ready); without one, a child is ready as soon as it is started. `stop_order`: lower stops
    first (producers 0, sink 1, registry/ClickHouse 2, broker 3).
    """

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    stop_order: int = 0
    ready_check: Callable[[], Awaitable[bool]] | None = None
    ready_timeout_secs: float = 60.0
    stop_timeout_secs: float = 10.0
    depends_on: tuple[str, ...] = ()
    restart: bool = True
    url: str | None = None
    stop_signal: int = signal.SIGTERM
    start_gate: Callable[[], Awaitable[None]] | None = None
    """Awaited after `depends_on` are ready and before the first start (e.g. topics and
    migrations created by the embedded stack's controller)."""
    nice: int = 0
    """Added to the child's niceness (0-19): a higher value yields the CPU to the others when
    the machine is saturated (the embedded stack's pollers, which have slack in their cycle,
    yield to the WebSocket relay, the sink and ClickHouse)."""


@dataclass(frozen=True)
class Backoff:
    """Delay before restart number `attempt` (1, 2, ...): initial * 2^(attempt-1), capped,
    +-jitter; the attempt count resets once a child has stayed up `reset_after_secs`."""

    initial_secs: float = 0.5
    max_secs: float = 30.0
    reset_after_secs: float = 60.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base = self.initial_secs * 2.0 ** min(max(attempt - 1, 0), 32)
        jittered = min(base, self.max_secs) * random.uniform(1 - self.jitter, 1 + self.jitter)
        return min(jittered, self.max_secs)


@functools.cache
def _prctl() -> Any:
    return ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> Callable[[], None] | None:
    """A Popen `preexec_fn` that has the child SIGKILLed when its parent dies (Linux only).

    The signal fires when the *thread* that forked exits: start children from the thread
    that lives as long as they should (the event loop / main thread).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _prctl()
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _preexec(first: Callable[[], None] | None, nice: int) -> Callable[[], None] | None:
    """`first`, then os.nice(nice) in the child before exec (None when there is nothing)."""
    if not nice:
        return first

    def preexec() -> None:
        if first is not None:
            first()
        os.nice(nice)

    return preexec


def tcp_check(host: str, port: int) -> Callable[[], Awaitable[bool]]:
    """A ready_check: True once host:port accepts TCP connections."""

    async def check() -> bool:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    return check


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


class _Process:
    """One started child: exit future, output reader, pid.

    Not asyncio's subprocess API: on Python 3.11 its `wait()` only returns once every holder
    of the stdout pipe (grandchildren too) has exited, and a cancellation while it connects
    the pipes can hang the loop for good (cpython#119710, #125502). Here a thread waits for
    the exit and the pipe is a plain non-blocking reader of the loop.
    """

    def __init__(
        self, popen: subprocess.Popen[bytes], on_lines: Callable[[list[bytes]], None]
    ) -> None:
        assert popen.stdout is not None
        self.pid = popen.pid
        self._popen = popen
        self._stdout = popen.stdout
        self._on_lines = on_lines
        self._pending = b""
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = self._loop.create_future()
        self.output_closed = asyncio.Event()
        os.set_blocking(self._stdout.fileno(), False)
        self._loop.add_reader(self._stdout.fileno(), self._read)
        threading.Thread(target=self._wait, name=f"wait-{self.pid}", daemon=True).start()

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    def _wait(self) -> None:  # in its own thread
        code = self._popen.wait()
        try:
            self._loop.call_soon_threadsafe(self._set_exited, code)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.debug("pid %d exited with %d after the event loop closed", self.pid, code)

    def _set_exited(self, code: int) -> None:
        if not self.exited.done():
            self.exited.set_result(code)

    def _read(self) -> None:
        try:
            chunk = os.read(self._stdout.fileno(), _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            logger.debug("reading output of pid %d: %s", self.pid, e)
            chunk = b""
        if not chunk:
            self.close_output()
            return
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        if len(self._pending) > _MAX_LINE_BYTES:
            lines.append(self._pending)
            self._pending = b""
        if lines:
            self._on_lines(lines)

    def close_output(self) -> None:
        """Stop reading (at EOF, or when an escaped process keeps the pipe open)."""
        if self.output_closed.is_set():
            return
        self._loop.remove_reader(self._stdout.fileno())
        self._stdout.close()
        if self._pending:
            self._on_lines([self._pending])
            self._pending = b""
        self.output_closed.set()


class _Child:
    """Runtime state of one child (touched only from the event loop)."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: _Process | None = None
        self.task: asyncio.Task[None] | None = None
        self.starts = 0
        self.ready = False
        self.first_ready = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.restart_requested = asyncio.Event()
        self.changed = asyncio.Condition()
        self.held = False  # stopped on purpose, not to be started until released
        self.release = asyncio.Event()

    def running_pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class Supervisor:
    """Supervise `children`; `await run()` until stopped, returning the exit code.

    run() returns 0 after a requested stop, 1 if startup failed (a child not ready within its
    ready_timeout_secs, or not startable) or a child with restart=False exited non-zero.
    Methods other than run() must be called from the event loop's thread.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        backoff: Backoff | None = None,
        out: TextIO | None = None,
    ) -> None:
        self._specs = list(children)
        if not self._specs:
            raise PipelineError("no child to supervise", component="supervisor")
        self._order = _dependency_order(self._specs)
        self._backoff = backoff or Backoff()
        self._out = out
        self._out_broken = False
        self._width = max((len(s.name) for s in self._specs), default=0)
        self._children = {s.name: _Child(s) for s in self._specs}
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._exit_code = 0

    # --- public API ----------------------------------------------------------------------

    async def run(self) -> int:
        if self._stop_event is not None:
            raise PipelineError("a Supervisor runs only once", component="supervisor")
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        handled = self._install_signal_handlers(loop)
        try:
            for name in self._order:
                child = self._children[name]
                child.task = asyncio.create_task(self._supervise(child), name=f"supervise-{name}")
            await self._await_startup()
            tasks = [c.task for c in self._children.values() if c.task is not None]
            await _first_done(self._stop_event.wait(), asyncio.wait(tasks))
            if not self._stop_requested:
                logger.warning("no child left to supervise")
        finally:
            await self._shutdown()
            for sig in handled:
                loop.remove_signal_handler(sig)
        logger.info("supervisor exiting with code %d", self._exit_code)
        return self._exit_code

    def stop(self) -> None:
        """Ask run() to stop every child and return."""
        self._stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()

    def specs(self) -> list[ChildSpec]:
        return list(self._specs)

    def has_child(self, name: str) -> bool:
        return name in self._children

    def is_held(self, name: str) -> bool:
        return self._child(name).held

    def pid(self, name: str) -> int | None:
        """Pid of the running child `name` (None while it is down)."""
        return self._child(name).running_pid()

    def signal_child(self, name: str, sig: int) -> None:
        """Send `sig` to the child's own process (not to its process group)."""
        pid = self.pid(name)
        if pid is None:
            raise PipelineError(f"cannot signal {name}: not running", component="supervisor")
        os.kill(pid, sig)

    async def restart_child(self, name: str, timeout_secs: float | None = None) -> None:
        """Planned restart (not counted as a crash): stop the child as on shutdown, start it
        again at once and return when it is ready."""
        child = self._child(name)
        spec = child.spec
        if self._stop_requested or child.task is None or child.task.done():
            raise PipelineError(f"cannot restart {name}: not supervised", component="supervisor")
        timeout = timeout_secs or spec.stop_timeout_secs + spec.ready_timeout_secs
        starts = child.starts
        logger.info("planned restart of %s", name)
        child.restart_requested.set()
        try:
            async with child.changed:
                await asyncio.wait_for(
                    child.changed.wait_for(lambda: child.starts > starts and child.ready), timeout
                )
        except TimeoutError as e:
            raise PipelineError(
                f"{name} was not ready again within {timeout:g} s of a planned restart",
                component="supervisor",
            ) from e

    async def hold_child(self, name: str, timeout_secs: float | None = None) -> None:
        """Stop the child as on shutdown and keep it stopped until `release_child`."""
        child = self._child(name)
        if self._stop_requested or child.task is None or child.task.done():
            raise PipelineError(f"cannot hold {name}: not supervised", component="supervisor")
        timeout = timeout_secs or child.spec.stop_timeout_secs + 5
        child.held = True
        logger.info("holding %s (stopped until released)", name)
        child.restart_requested.set()
        try:
            async with child.changed:
                await asyncio.wait_for(
                    child.changed.wait_for(
                        lambda: child.proc is None or child.proc.returncode is not None
                    ),
                    timeout,
                )
        except TimeoutError as e:
            raise PipelineError(f"{name} did not stop within {timeout:g} s") from e

    async def release_child(self, name: str, timeout_secs: float | None = None) -> None:
        """Start a held child again; returns when it is ready."""
        child = self._child(name)
        spec = child.spec
        starts = child.starts
        child.held = False
        child.release.set()
        timeout = timeout_secs or spec.ready_timeout_secs
        try:
            async with child.changed:
                await asyncio.wait_for(
                    child.changed.wait_for(lambda: child.starts > starts and child.ready), timeout
                )
        except TimeoutError as e:
            raise PipelineError(f"{name} was not ready within {timeout:g} s of its release") from e

    # --- startup and shutdown --------------------------------------------------------------

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise PipelineError(f"no child named {name!r}", component="supervisor") from None

    async def _await_startup(self) -> None:
        assert self._stop_event is not None
        all_ready = asyncio.gather(*(c.first_ready.wait() for c in self._children.values()))
        done = await _first_done(all_ready, self._stop_event.wait())
        if all_ready in done:
            urls = [f"{c.spec.name} {c.spec.url}" for c in self._children.values() if c.spec.url]
            logger.info(
                "all %d children ready%s",
                len(self._children),
                ": " + ", ".join(urls) if urls else "",
            )

    async def _shutdown(self) -> None:
        self.stop()
        for order in sorted({c.spec.stop_order for c in self._children.values()}):
            group = [c for c in self._children.values() if c.spec.stop_order == order]
            logger.info("stopping %s", " ".join(c.spec.name for c in group))
            for child in group:
                child.stop_requested.set()
            tasks = [c.task for c in group if c.task is not None]
            for child, result in zip(
                group, await asyncio.gather(*tasks, return_exceptions=True), strict=True
            ):
                if isinstance(result, asyncio.CancelledError):
                    logger.debug("supervising %s was cancelled", child.spec.name)
                elif isinstance(result, BaseException):
                    logger.error("supervising %s failed: %r", child.spec.name, result)
        for child in self._children.values():
            if child.proc is not None and signal_group(child.proc.pid, signal.SIGKILL):
                logger.warning("killed leftover processes of %s", child.spec.name)
        logger.info("all children stopped")

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        handled: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (RuntimeError, NotImplementedError, ValueError) as e:
                logger.debug("not handling %s here: %s", sig.name, e)
                continue
            handled.append(sig)
        return handled

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if not self._stop_requested:
            logger.info("received %s: stopping", name)
            self.stop()
            return
        logger.warning("received %s again: killing every child now", name)
        for child in self._children.values():
            if child.proc is not None:
                signal_group(child.proc.pid, signal.SIGKILL)

    def _fail(self, message: str) -> None:
        logger.error("%s", message)
        self._exit_code = 1
        self.stop()

    # --- one child ---------------------------------------------------------------------------

    async def _supervise(self, child: _Child) -> None:
        try:
            if await self._wait_dependencies(child):
                await self._keep_running(child)
        finally:
            proc = child.proc
            if proc is not None:  # only does something when this task is cancelled mid-flight
                if proc.returncode is None:
                    signal_group(proc.pid, signal.SIGKILL)
                proc.close_output()

    async def _wait_dependencies(self, child: _Child) -> bool:
        deps = [self._children[d].first_ready for d in child.spec.depends_on]
        if deps:
            all_ready = asyncio.gather(*(d.wait() for d in deps))
            await _first_done(all_ready, child.stop_requested.wait())
        if child.spec.start_gate is not None and not child.stop_requested.is_set():
            await _first_done(child.spec.start_gate(), child.stop_requested.wait())
        return not child.stop_requested.is_set()

    async def _keep_running(self, child: _Child) -> None:
        spec, loop = child.spec, asyncio.get_running_loop()
        startup_deadline = loop.time() + spec.ready_timeout_secs
        attempt = 0
        while not child.stop_requested.is_set():
            while child.held and not child.stop_requested.is_set():
                child.release.clear()
                await _first_done(child.release.wait(), child.stop_requested.wait())
            if child.stop_requested.is_set():
                return
            started = loop.time()
            proc = await self._spawn(child)
            if proc is None:
                if not child.first_ready.is_set():
                    self._fail(f"cannot start {spec.name}")
                    return
                code: int | None = None
            else:
                outcome = await self._watch(child, proc, startup_deadline)
                if outcome == "stop":
                    return
                if outcome == "restart":
                    logger.info("restarting %s (planned)", spec.name)
                    attempt = 0
                    continue
                code = proc.returncode
            if not spec.restart:
                logger.warning("exited %s exit_code=%s (not restarted)", spec.name, code)
                if code != 0:
                    self._exit_code = 1
                if not child.first_ready.is_set():
                    self._fail(f"{spec.name} exited with code {code} before it was ready")
                return
            if loop.time() - started >= self._backoff.reset_after_secs:
                attempt = 0
            attempt += 1
            delay = self._backoff.delay(attempt)
            if not child.first_ready.is_set() and loop.time() + delay > startup_deadline:
                self._fail(
                    f"{spec.name} keeps exiting (last exit_code={code}) and was not ready "
                    f"within {spec.ready_timeout_secs:g} s"
                )
                return
            logger.warning(
                "restarting %s exit_code=%s attempt=%d in=%.2fs", spec.name, code, attempt, delay
            )
            await _first_done(
                child.stop_requested.wait(), child.restart_requested.wait(), timeout=delay
            )

    async def _spawn(self, child: _Child) -> _Process | None:
        spec = child.spec
        child.restart_requested.clear()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(spec.env or {})}
        try:
            popen = subprocess.Popen(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                # only prctl() and nice() run between fork and exec: safe with threads
                preexec_fn=_preexec(die_with_parent(), spec.nice),  # noqa: PLW1509
            )
        except OSError as e:
            logger.error("cannot start %s (%s): %s", spec.name, spec.argv[0], e)
            return None
        prefix = f"{spec.name:<{self._width}} | "
        proc = _Process(popen, functools.partial(self._emit, prefix))
        child.proc = proc
        child.starts += 1
        child.ready = False
        logger.info("started %s pid=%d", spec.name, proc.pid)
        await child.notify()
        return proc

    async def _watch(self, child: _Child, proc: _Process, startup_deadline: float) -> Outcome:
        """Run until the process exits or a stop/restart is requested; clean up after it."""
        readiness = asyncio.create_task(self._await_ready(child, proc, startup_deadline))
        await _first_done(proc.wait(), child.stop_requested.wait(), child.restart_requested.wait())
        outcome: Outcome = "exited"
        if child.stop_requested.is_set():
            outcome = "stop"
        elif child.restart_requested.is_set():
            outcome = "restart"
        if outcome == "exited":
            signal_group(proc.pid, signal.SIGKILL)  # helpers of a crashed child go too
        else:
            await self._terminate(child, proc)
        await proc.wait()
        readiness.cancel()
        await asyncio.gather(readiness, return_exceptions=True)
        child.ready = False
        try:
            await asyncio.wait_for(proc.output_closed.wait(), _OUTPUT_DRAIN_SECS)
        except TimeoutError:
            logger.warning("output of %s still open after exit (escaped process?)", child.spec.name)
        proc.close_output()
        await child.notify()
        return outcome

    async def _terminate(self, child: _Child, proc: _Process) -> None:
        spec = child.spec
        logger.info("stopping %s pid=%d with %s", spec.name, proc.pid, _signame(spec.stop_signal))
        signal_group(proc.pid, spec.stop_signal)
        try:
            await asyncio.wait_for(_group_gone(proc), spec.stop_timeout_secs)
        except TimeoutError:
            logger.warning(
                "%s did not stop within %g s: sending SIGKILL", spec.name, spec.stop_timeout_secs
            )
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        logger.info("stopped %s exit_code=%s", spec.name, proc.returncode)

    async def _await_ready(self, child: _Child, proc: _Process, startup_deadline: float) -> None:
        spec, loop = child.spec, asyncio.get_running_loop()
        if spec.ready_check is not None:
            first = not child.first_ready.is_set()
            deadline = startup_deadline if first else loop.time() + spec.ready_timeout_secs
            interval = 0.05
            while not await _check(spec.name, spec.ready_check):
                if proc.returncode is not None:
                    return
                if loop.time() >= deadline:
                    if first:
                        self._fail(f"{spec.name} not ready within {spec.ready_timeout_secs:g} s")
                    else:
                        logger.warning(
                            "%s not ready within %g s of its restart",
                            spec.name,
                            spec.ready_timeout_secs,
                        )
                    return
                await asyncio.sleep(interval)
                interval = min(interval * 1.5, 1.0)
        child.ready = True
        if spec.url:
            logger.info("ready %s %s", spec.name, spec.url)
        else:
            logger.info("ready %s", spec.name)
        child.first_ready.set()
        await child.notify()

    def _emit(self, prefix: str, lines: list[bytes]) -> None:
        if not lines:
            return
        text = "".join(
            f"{prefix}{line.decode('utf-8', 'replace').rstrip(chr(13))}\n" for line in lines
        )
        out = self._out or sys.stdout
        try:
            out.write(text)
            out.flush()
        except (OSError, ValueError) as e:
            if not self._out_broken:
                logger.warning("cannot write child output (%s); discarding it", e)
                self._out_broken = True


# --- helpers -------------------------------------------------------------------------------


async def _first_done(
    *aws: Awaitable[Any], timeout: float | None = None
) -> set[asyncio.Future[Any]]:
    """Wait until the first of `aws` completes (or `timeout`), then cancel the others."""
    futures: list[asyncio.Future[Any]] = [asyncio.ensure_future(a) for a in aws]
    done, pending = await asyncio.wait(
        futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    for future in pending:
        future.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done


async def _check(name: str, ready_check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return bool(await asyncio.wait_for(ready_check(), _READY_CHECK_TIMEOUT_SECS))
    except Exception as e:  # a failing probe just means "not ready yet"
        logger.debug("ready check of %s: %r", name, e)
        return False


async def _group_gone(proc: _Process) -> None:
    """Wait until the process and every other member of its process group have exited."""
    await proc.wait()
    while _group_alive(proc.pid):
        await asyncio.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _dependency_order(specs: Iterable[ChildSpec]) -> list[str]:
    """Names in an order where every child comes after its dependencies; validates specs."""
    by_name: dict[str, ChildSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise PipelineError(f"two children named {spec.name!r}", component="supervisor")
        if not spec.argv:
            raise PipelineError(f"child {spec.name!r} has an empty argv", component="supervisor")
        by_name[spec.name] = spec
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join((*path, name))
            raise PipelineError(f"dependency cycle: {cycle}", component="supervisor")
        visiting.add(name)
        for dep in by_name[name].depends_on:
            if dep not in by_name:
                raise PipelineError(
                    f"child {name!r} depends on unknown {dep!r}", component="supervisor"
                )
            visit(dep, (*path, name))
        visiting.discard(name)
        order.append(name)

    for name in by_name:
        visit(name, ())
    return order
