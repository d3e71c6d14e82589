"""The Next.js dashboard (`dashboard/`) as a child of the pipeline: build it when needed, run it.

* `ensure_built(dir)` runs `npm ci` when `node_modules` is missing or older than
  `package-lock.json`, and `npm run build` (next build) when `.next/BUILD_ID` is missing or
  older than any source file. Needs node >= 20.9 and npm on PATH (and the npm registry for the
  first install).
* `dashboard_env(config)` maps the pipeline's one configuration onto the dashboard's env vars
  (the names it has on Vercel): CLICKHOUSE_URL from CLICKHOUSE_HOST/PORT/SECURE, CLICKHOUSE_USER,
  CLICKHOUSE_PASSWORD, CLICKHOUSE_DB from CLICKHOUSE_DATABASE, and the feed intervals, so the
  dashboard's freshness rule is the one of `pmpipe status`.
* `dashboard_argv(config)` is `next start` on `config.dashboard_port` (loopback by default);
  `run_dashboard(port, env)` builds if needed and runs it in the foreground.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from pmpipe.config import Config
from pmpipe.errors import PipelineError

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
MIN_NODE = (20, 9)
DEFAULT_HOST = "127.0.0.1"

# what `next build` compiles; a change to any of them makes the build stale
SOURCE_DIRS = ("app", "components", "lib", "public")
SOURCE_FILES = (
    "package.json",
    "package-lock.json",
    "next.config.ts",
    "postcss.config.mjs",
    "proxy.ts",
    "tsconfig.json",
)


def dashboard_env(config: Config, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The dashboard's environment: `base` (default: this process's) plus the ClickHouse and
    feed settings of `config`."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "CLICKHOUSE_URL": config.clickhouse_url,
            "CLICKHOUSE_USER": config.clickhouse_user,
            "CLICKHOUSE_PASSWORD": config.clickhouse_password,
            "CLICKHOUSE_DB": config.clickhouse_database,
            "PMPIPE_MARKETS_INTERVAL_SECS": _number(config.markets_interval_secs),
            "PMPIPE_PRICES_INTERVAL_SECS": _number(config.prices_interval_secs),
            "PMPIPE_TRADES_INTERVAL_SECS": _number(config.trades_interval_secs),
            "PMPIPE_BOOKS_INTERVAL_SECS": _number(config.books_interval_secs),
            "NEXT_TELEMETRY_DISABLED": "1",
            "NODE_ENV": "production",
        }
    )
    return env


def _number(value: float) -> str:
    return f"{value:g}"


def node_binary() -> str:
    """Path of a node >= 20.9, or PipelineError saying what is missing."""
    node = shutil.which("node")
    if node is None:
        raise PipelineError("the dashboard needs node >= 20.9 on PATH (not found)")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.(\d+)", out.stdout.strip())
    if match is None or (int(match[1]), int(match[2])) < MIN_NODE:
        raise PipelineError(
            f"the dashboard needs node >= 20.9, found {out.stdout.strip() or 'unknown'}"
        )
    return node


def dashboard_argv(
    config: Config, dashboard_dir: Path = DASHBOARD_DIR, host: str = DEFAULT_HOST
) -> list[str]:
    """`next start` of the built dashboard on `config.dashboard_port`."""
    return start_argv(config.dashboard_port, dashboard_dir, host)


def start_argv(
    port: int, dashboard_dir: Path = DASHBOARD_DIR, host: str = DEFAULT_HOST
) -> list[str]:
    next_bin = dashboard_dir / "node_modules" / "next" / "dist" / "bin" / "next"
    return [node_binary(), str(next_bin), "start", "-p", str(port), "-H", host]


def _files(root: Path) -> Iterator[Path]:
    for name in SOURCE_DIRS:
        folder = root / name
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file())
    for name in SOURCE_FILES:
        path = root / name
        if path.is_file():
            yield path


def newest_source_mtime(dashboard_dir: Path) -> float:
    return max((p.stat().st_mtime for p in _files(dashboard_dir)), default=0.0)


def needs_install(dashboard_dir: Path) -> bool:
    """node_modules is missing, or older than the lockfile (npm writes its own copy there)."""
    installed = dashboard_dir / "node_modules" / ".package-lock.json"
    lock = dashboard_dir / "package-lock.json"
    if not installed.is_file():
        return True
    return lock.is_file() and lock.stat().st_mtime > installed.stat().st_mtime


def needs_build(dashboard_dir: Path) -> bool:
    """No production build yet, or a source file changed after it."""
    build_id = dashboard_dir / ".next" / "BUILD_ID"
    if not build_id.is_file():
        return True
    return newest_source_mtime(dashboard_dir) > build_id.stat().st_mtime


def _run_step(name: str, argv: list[str], dashboard_dir: Path) -> None:
    log.info("dashboard: %s (%s)", name, " ".join(argv))
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
    result = subprocess.run(argv, cwd=dashboard_dir, env=env, check=False)
    if result.returncode != 0:
        raise PipelineError(f"dashboard {name} failed with exit code {result.returncode}")


def ensure_built(dashboard_dir: Path = DASHBOARD_DIR) -> None:
    """`npm ci` if node_modules is missing or stale, `next build` if .next is missing or
    older than the sources. Idempotent and quick when nothing changed."""
    if not (dashboard_dir / "package.json").is_file():
        raise PipelineError(f"no dashboard at {dashboard_dir} (package.json missing)")
    npm = shutil.which("npm")
    if npm is None:
        raise PipelineError("the dashboard needs npm on PATH (not found)")
    node_binary()
    if needs_install(dashboard_dir):
        _run_step("install", [npm, "ci", "--no-audit", "--no-fund"], dashboard_dir)
    if needs_build(dashboard_dir):
        _run_step("build", [npm, "run", "build"], dashboard_dir)


def run_dashboard(
    port: int,
    env: Mapping[str, str],
    dashboard_dir: Path = DASHBOARD_DIR,
    host: str = DEFAULT_HOST,
) -> int:
    """Build if needed, then run `next start` in the foreground until it exits or this
    process gets SIGINT/SIGTERM (passed on). Returns its exit code."""
    ensure_built(dashboard_dir)
    argv = start_argv(port, dashboard_dir, host)
    log.info("dashboard: http://%s:%d against %s", host, port, env.get("CLICKHOUSE_URL", "?"))
    child = subprocess.Popen(argv, cwd=dashboard_dir, env=dict(env))

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
