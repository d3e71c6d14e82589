"""Run `pmpipe up` as a subprocess on free ports, for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pmpipe.broker import free_port


class UpProcess:
    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.kafka_port = free_port()
        self.registry_port = free_port()
        self.clickhouse_port = free_port()
        self.simulator_port = free_port()  # parallel stacks on one machine never share one
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.kafka_port}",
            "SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{self.registry_port}",
            "CLICKHOUSE_PORT": str(self.clickhouse_port),
            "CLICKHOUSE_DATABASE": "polymarket",
            "PMPIPE_SIMULATOR_PORT": str(self.simulator_port),
            "PMPIPE_LOG_FORMAT": "text",
            **(env or {}),
        }
        self.args = ["up", "--data-dir", str(data_dir), *args]
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def start(self) -> UpProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pmpipe", *self.args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        log = (self.data_dir.parent / f"{self.data_dir.name}.up.log").open("a")
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
            log.write(line)
            log.flush()

    def wait_for(
        self, predicate: Callable[[str], bool], timeout: float = 60.0, since: int = 0
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for line in self.lines[since:]:
                    if predicate(line):
                        return line
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = "\n".join(self.lines[-60:])
        raise AssertionError(f"timed out waiting for a log line; last lines:\n{tail}")

    def wait_for_text(self, text: str, timeout: float = 60.0, since: int = 0) -> str:
        def has_text(line: str) -> bool:
            return text in line

        return self.wait_for(has_text, timeout=timeout, since=since)

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def supervised_pid(self, child: str) -> int:
        """The pid the supervisor last logged for `child` ("started <child> pid=N")."""
        with self._lock:
            lines = list(self.lines)
        for line in reversed(lines):
            if f"started {child} pid=" in line:
                return int(line.rsplit("pid=", 1)[1].split()[0])
        raise AssertionError(f"no start of {child} logged")

    def descendants(self) -> list[psutil.Process]:
        assert self.proc is not None
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def child_pid(self, fragment: str) -> int:
        for proc in self.descendants():
            try:
                cmdline = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if fragment in cmdline:
                return proc.pid
        raise AssertionError(f"no child process matching {fragment!r}")

    def stop(self, timeout: float = 90.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for proc in self.descendants():
                proc.kill()
            self.proc.kill()
            raise
