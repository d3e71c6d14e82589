"""The supervisor with real child processes: order, output, restarts, shutdown, no orphans."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from pmpipe.broker import TANSU_STOP_SIGNAL, free_port, tansu_launcher_argv, wait_for_broker
from pmpipe.errors import PipelineError
from pmpipe.supervisor import Backoff, ChildSpec, Supervisor, tcp_check

FAST = Backoff(initial_secs=0.1, max_secs=0.5, reset_after_secs=60.0)

# A child: writes started-/ready-/stopped-<name> files (a time each), prints a line every
# 50 ms; "ignore-term" makes it ignore SIGTERM, "grandchild" starts a sleeping grandchild
# (which shares its stdout), "crash-once" makes its first run exit with code 1 once ready.
CHILD = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    name, outdir, *flags = sys.argv[1:]
    def mark(kind, extra=""):
        with open(os.path.join(outdir, f"{kind}-{name}"), "a") as f:
            f.write(f"{time.time()} {os.getpid()} {extra}\\n")
    def on_term(signum, frame):
        mark("stopped", signal.Signals(signum).name)
        sys.exit(0)
    mark("started")
    signal.signal(signal.SIGTERM, signal.SIG_IGN if "ignore-term" in flags else on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGUSR1, lambda s, f: mark("usr1"))
    if "grandchild" in flags:
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        mark("grandchild", str(gc.pid))
    time.sleep(0.2)
    mark("ready")
    if "crash-once" in flags and not os.path.exists(os.path.join(outdir, "crashed-" + name)):
        mark("crashed")
        os._exit(1)
    i = 0
    while True:
        print(f"line {i} from {name}", flush=True)
        i += 1
        time.sleep(0.05)
    """
)


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def _spec(script: Path, outdir: Path, name: str, *flags: str, **kwargs: object) -> ChildSpec:
    ready = outdir / f"ready-{name}"

    async def is_ready() -> bool:
        return ready.exists()

    defaults: dict[str, object] = {
        "ready_check": is_ready,
        "ready_timeout_secs": 10.0,
        "stop_timeout_secs": 5.0,
    }
    defaults.update(kwargs)
    argv = [sys.executable, str(script), name, str(outdir), *flags]
    return ChildSpec(name=name, argv=argv, **defaults)  # type: ignore[arg-type]


def _times(path: Path) -> list[float]:
    return [float(line.split()[0]) for line in path.read_text().splitlines()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _until(predicate: Callable[[], bool], timeout_secs: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_order_output_crash_restart_and_ordered_stop(
    tmp_path: Path, child_script: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pmpipe.supervisor")
    out = io.StringIO()
    specs = [
        _spec(child_script, tmp_path, "prod", depends_on=("sink",), stop_order=0),
        _spec(child_script, tmp_path, "sink", depends_on=("registry",), stop_order=1),
        _spec(child_script, tmp_path, "registry", stop_order=2, url="http://127.0.0.1:1"),
    ]
    sup = Supervisor(specs, backoff=FAST, out=out)
    seen_pids: list[int] = []

    async def scenario() -> None:
        run = asyncio.create_task(sup.run())
        await _until(lambda: "line 0 from prod" in out.getvalue())
        for name in ("prod", "sink", "registry"):
            pid = sup.pid(name)
            assert pid is not None
            seen_pids.append(pid)

        crashed = sup.pid("sink")
        assert crashed is not None
        os.kill(crashed, signal.SIGKILL)
        await _until(lambda: sup.pid("sink") not in (None, crashed))
        restarted = sup.pid("sink")
        assert restarted is not None
        seen_pids.append(restarted)
        await _until(lambda: len(_times(tmp_path / "ready-sink")) == 2)

        sup.stop()
        assert await run == 0

    _run(scenario)

    # dependency order: each child starts only once its dependency wrote its ready file
    assert _times(tmp_path / "started-sink")[0] >= _times(tmp_path / "ready-registry")[0]
    assert _times(tmp_path / "started-prod")[0] >= _times(tmp_path / "ready-sink")[0]
    # output: padded name prefix, one line each
    assert "sink     | line 0 from sink\n" in out.getvalue()
    assert "registry | line 0 from registry\n" in out.getvalue()
    # the crash was logged and the child restarted
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("restarting sink exit_code=-9 attempt=1 in=") for m in messages)
    assert "ready registry http://127.0.0.1:1" in messages
    assert len(_times(tmp_path / "started-sink")) == 2
    # stop order: producers, then the sink, then the registry; each with one SIGTERM
    stopped = {n: _times(tmp_path / f"stopped-{n}") for n in ("prod", "sink", "registry")}
    assert all(len(t) == 1 for t in stopped.values())
    assert stopped["prod"][0] < stopped["sink"][0] < stopped["registry"][0]
    assert "SIGTERM" in (tmp_path / "stopped-sink").read_text()
    assert not [pid for pid in seen_pids if _alive(pid)]


def test_sigterm_ignored_means_sigkill_and_no_grandchild_left(
    tmp_path: Path, child_script: Path
) -> None:
    spec = _spec(child_script, tmp_path, "stubborn", "ignore-term", "grandchild")
    spec = ChildSpec(**{**spec.__dict__, "stop_timeout_secs": 0.5})
    sup = Supervisor([spec], backoff=FAST, out=io.StringIO())
    timings: dict[str, float] = {}

    async def scenario() -> None:
        run = asyncio.create_task(sup.run())
        await _until((tmp_path / "ready-stubborn").exists)
        await asyncio.sleep(0.1)  # past the ready check, so the supervisor saw it ready
        started = time.monotonic()
        sup.stop()
        assert await run == 0
        timings["stop"] = time.monotonic() - started

    _run(scenario)
    assert 0.5 <= timings["stop"] < 3
    assert not (tmp_path / "stopped-stubborn").exists()  # it never handled the SIGTERM
    child_pid = int((tmp_path / "started-stubborn").read_text().split()[1])
    grandchild_pid = int((tmp_path / "grandchild-stubborn").read_text().split()[2])
    assert not _alive(child_pid)
    assert not _alive(grandchild_pid)


def test_planned_restart_and_signal_child(
    tmp_path: Path, child_script: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pmpipe.supervisor")
    sup = Supervisor([_spec(child_script, tmp_path, "sink")], backoff=FAST, out=io.StringIO())

    async def scenario() -> None:
        run = asyncio.create_task(sup.run())
        await _until((tmp_path / "ready-sink").exists)  # its SIGUSR1 handler is installed
        # and the supervisor has seen it ready (its ready check polls)
        await _until(lambda: any(r.getMessage() == "ready sink" for r in caplog.records))
        first = sup.pid("sink")
        sup.signal_child("sink", signal.SIGUSR1)
        await _until((tmp_path / "usr1-sink").exists)
        await sup.restart_child("sink")
        second = sup.pid("sink")
        assert second is not None and second != first
        sup.stop()
        assert await run == 0
        with pytest.raises(PipelineError, match="not running"):
            sup.signal_child("sink", signal.SIGUSR1)

    _run(scenario)
    messages = [r.getMessage() for r in caplog.records]
    assert "restarting sink (planned)" in messages
    assert not any("attempt=" in m for m in messages)  # not counted as a crash
    assert messages.count("ready sink") == 2


def test_supervised_tansu_comes_back_with_a_new_incarnation() -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    spec = ChildSpec(
        name="broker",
        argv=tansu_launcher_argv(port),
        ready_check=tcp_check("127.0.0.1", port),
        ready_timeout_secs=10.0,
        stop_order=3,
        stop_signal=TANSU_STOP_SIGNAL,
        stop_timeout_secs=5.0,
        url=f"kafka://{bootstrap}",
    )
    out = io.StringIO()
    sup = Supervisor([spec], backoff=FAST, out=out)
    pids: list[int] = []

    async def scenario() -> None:
        run = asyncio.create_task(sup.run())
        first = await asyncio.to_thread(wait_for_broker, bootstrap, 10)
        pid = sup.pid("broker")
        assert pid is not None
        assert psutil.Process(pid).name() == "tansu"  # exec'd: signals reach the broker
        pids.append(pid)

        os.kill(pid, signal.SIGKILL)
        await _until(lambda: sup.pid("broker") not in (None, pid))
        second = await asyncio.to_thread(wait_for_broker, bootstrap, 10)
        assert second != first

        await sup.restart_child("broker")
        third = await asyncio.to_thread(wait_for_broker, bootstrap, 10)
        assert len({first, second, third}) == 3
        new_pid = sup.pid("broker")
        assert new_pid is not None
        pids.append(new_pid)
        sup.stop()
        assert await run == 0

    _run(scenario)
    assert "broker | starting tansu cluster_id=pmpipe-" in out.getvalue()
    assert not [pid for pid in pids if _alive(pid)]


def test_ctrl_c_reaches_children_once(tmp_path: Path, child_script: Path) -> None:
    script = tmp_path / "sup.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, sys
            from pmpipe.supervisor import ChildSpec, Supervisor
            children = [
                ChildSpec(name, [sys.executable, {str(child_script)!r}, name, {str(tmp_path)!r}],
                          stop_order=order, stop_timeout_secs=5.0)
                for order, name in enumerate(["a", "b"])
            ]
            sys.exit(asyncio.run(Supervisor(children).run()))
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not all((tmp_path / f"ready-{n}").exists() for n in "ab"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        stdout, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    for name in "ab":
        lines = (tmp_path / f"stopped-{name}").read_text().splitlines()
        assert len(lines) == 1 and lines[0].endswith("SIGTERM")
    assert _times(tmp_path / "stopped-a")[0] < _times(tmp_path / "stopped-b")[0]
    assert "a | line 0 from a" in stdout and "b | line 0 from b" in stdout


def test_startup_failure_returns_1_without_starting_dependents(
    tmp_path: Path, child_script: Path
) -> None:
    async def never() -> bool:
        return False

    specs = [
        _spec(child_script, tmp_path, "stuck", ready_check=never, ready_timeout_secs=0.5),
        _spec(child_script, tmp_path, "after", depends_on=("stuck",)),
    ]
    started = time.monotonic()
    assert asyncio.run(Supervisor(specs, backoff=FAST, out=io.StringIO()).run()) == 1
    assert time.monotonic() - started < 5
    assert not (tmp_path / "started-after").exists()
    assert not _alive(int((tmp_path / "started-stuck").read_text().split()[1]))


def test_returns_1_when_no_child_is_left() -> None:
    spec = ChildSpec("oneshot", [sys.executable, "-c", "raise SystemExit(3)"], restart=False)
    started = time.monotonic()
    assert asyncio.run(Supervisor([spec], out=io.StringIO()).run()) == 1
    assert time.monotonic() - started < 5


def test_nice_children_yield_the_cpu(tmp_path: Path) -> None:
    """`nice` is added to the child's niceness from its first instruction (the pollers of the
    embedded stack: POLLER_NICE); a child without it keeps the supervisor's."""
    report = "import os, sys; open(sys.argv[1], 'w').write(str(os.nice(0)))"
    specs = [
        ChildSpec("poller", [sys.executable, "-c", report, str(tmp_path / "poller")], nice=5),
        ChildSpec("relay", [sys.executable, "-c", report, str(tmp_path / "relay")]),
    ]
    specs = [dataclasses.replace(spec, restart=False) for spec in specs]
    asyncio.run(Supervisor(specs, out=io.StringIO()).run())
    base = os.nice(0)
    assert int((tmp_path / "relay").read_text()) == base
    assert int((tmp_path / "poller").read_text()) == min(base + 5, 19)


def test_crash_is_seen_even_when_a_grandchild_holds_the_output_pipe(
    tmp_path: Path, child_script: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pmpipe.supervisor")
    spec = _spec(child_script, tmp_path, "flaky", "grandchild", "crash-once")
    sup = Supervisor([spec], backoff=FAST, out=io.StringIO())

    async def scenario() -> None:
        run = asyncio.create_task(sup.run())
        started = tmp_path / "started-flaky"
        await _until(lambda: started.exists() and len(_times(started)) == 2)
        sup.stop()
        assert await run == 0

    _run(scenario)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("restarting flaky exit_code=1 attempt=1") for m in messages)
    grandchildren = [
        int(line.split()[2]) for line in (tmp_path / "grandchild-flaky").read_text().splitlines()
    ]
    assert len(grandchildren) == 2
    assert not [pid for pid in grandchildren if _alive(pid)]


@pytest.mark.parametrize(
    ("specs", "error"),
    [
        (
            [ChildSpec("a", ["x"], depends_on=("b",)), ChildSpec("b", ["x"], depends_on=("a",))],
            "dependency cycle",
        ),
        ([ChildSpec("a", ["x"], depends_on=("ghost",))], "unknown 'ghost'"),
        ([ChildSpec("a", ["x"]), ChildSpec("a", ["y"])], "two children named 'a'"),
        ([ChildSpec("a", [])], "empty argv"),
        ([], "no child to supervise"),
    ],
)
def test_invalid_specs_are_rejected(specs: list[ChildSpec], error: str) -> None:
    with pytest.raises(PipelineError, match=error):
        Supervisor(specs)


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial_secs=0.5, max_secs=30.0, jitter=0.2)
    assert 0.4 <= backoff.delay(1) <= 0.6
    assert 0.8 <= backoff.delay(2) <= 1.2
    assert 24.0 <= backoff.delay(7) <= 30.0
    assert 24.0 <= backoff.delay(10_000) <= 30.0
