"""pmpipe.dashboard: env mapping, argv, and when the dashboard is (re)installed and rebuilt."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pmpipe import dashboard
from pmpipe.config import Config
from pmpipe.errors import PipelineError


def make_dashboard(root: Path) -> Path:
    """A minimal dashboard tree: sources, lockfile, an install and a build, in that order."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "page.tsx").write_text("export default function P() { return null; }\n")
    (root / "package.json").write_text("{}\n")
    (root / "package-lock.json").write_text("{}\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / ".package-lock.json").write_text("{}\n")
    (root / ".next").mkdir()
    (root / ".next" / "BUILD_ID").write_text("abc\n")
    t = 1_700_000_000.0
    for i, path in enumerate(
        [
            root / "app" / "page.tsx",
            root / "package.json",
            root / "package-lock.json",
            root / "node_modules" / ".package-lock.json",
            root / ".next" / "BUILD_ID",
        ]
    ):
        os.utime(path, (t + i, t + i))
    return root


def touch(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def test_env_maps_the_pipeline_config_to_the_dashboard_names() -> None:
    config = Config(
        clickhouse_host="abc.clickhouse.cloud",
        clickhouse_port=8443,
        clickhouse_secure=True,
        clickhouse_user="reader",
        clickhouse_password="s3cret",
        clickhouse_database="pm",
        prices_interval_secs=15.0,
    )
    env = dashboard.dashboard_env(config, base={"PATH": "/usr/bin", "CLICKHOUSE_URL": "old"})
    assert env["CLICKHOUSE_URL"] == "https://abc.clickhouse.cloud:8443"
    assert env["CLICKHOUSE_USER"] == "reader"
    assert env["CLICKHOUSE_PASSWORD"] == "s3cret"
    assert env["CLICKHOUSE_DB"] == "pm"
    assert env["PMPIPE_PRICES_INTERVAL_SECS"] == "15"
    assert env["PMPIPE_MARKETS_INTERVAL_SECS"] == "300"
    assert env["PATH"] == "/usr/bin"
    assert env["NEXT_TELEMETRY_DISABLED"] == "1"


def test_env_defaults_reach_the_embedded_endpoint() -> None:
    env = dashboard.dashboard_env(Config(), base={})
    assert env["CLICKHOUSE_URL"] == "http://127.0.0.1:8123"
    assert env["CLICKHOUSE_DB"] == "polymarket"
    assert env["CLICKHOUSE_USER"] == "default"


def test_argv_starts_next_on_the_configured_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dashboard, "node_binary", lambda: "/usr/bin/node")
    argv = dashboard.dashboard_argv(Config(dashboard_port=3123), dashboard_dir=tmp_path)
    assert argv == [
        "/usr/bin/node",
        str(tmp_path / "node_modules" / "next" / "dist" / "bin" / "next"),
        "start",
        "-p",
        "3123",
        "-H",
        "127.0.0.1",
    ]


def test_up_to_date_tree_needs_nothing(tmp_path: Path) -> None:
    root = make_dashboard(tmp_path)
    assert not dashboard.needs_install(root)
    assert not dashboard.needs_build(root)


def test_missing_or_stale_install_and_build_are_detected(tmp_path: Path) -> None:
    root = make_dashboard(tmp_path)
    touch(root / "app" / "page.tsx", 1_800_000_000.0)
    assert dashboard.needs_build(root)
    assert not dashboard.needs_install(root)
    touch(root / "package-lock.json", 1_800_000_001.0)
    assert dashboard.needs_install(root)
    (root / ".next" / "BUILD_ID").unlink()
    assert dashboard.needs_build(root)
    (root / "node_modules" / ".package-lock.json").unlink()
    assert dashboard.needs_install(root)


def test_generated_files_do_not_make_the_build_stale(tmp_path: Path) -> None:
    root = make_dashboard(tmp_path)
    (root / "next-env.d.ts").write_text("// written by next build\n")
    (root / "tests").mkdir()
    (root / "tests" / "x.test.ts").write_text("\n")
    assert not dashboard.needs_build(root)


class Recorder:
    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        assert kwargs["env"]["NEXT_TELEMETRY_DISABLED"] == "1"
        return subprocess.CompletedProcess(argv, self.returncode, "", "")


def fake_tools(monkeypatch: pytest.MonkeyPatch, returncode: int = 0) -> Recorder:
    recorder = Recorder(returncode)
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/bin/{name}")
    monkeypatch.setattr(dashboard, "node_binary", lambda: "/opt/bin/node")
    monkeypatch.setattr(subprocess, "run", recorder)
    return recorder


def test_ensure_built_installs_and_builds_a_fresh_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_dashboard(tmp_path)
    (root / "node_modules" / ".package-lock.json").unlink()
    (root / ".next" / "BUILD_ID").unlink()
    recorder = fake_tools(monkeypatch)
    dashboard.ensure_built(root)
    assert recorder.calls == [
        ["/opt/bin/npm", "ci", "--no-audit", "--no-fund"],
        ["/opt/bin/npm", "run", "build"],
    ]


def test_ensure_built_does_nothing_when_up_to_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recorder = fake_tools(monkeypatch)
    dashboard.ensure_built(make_dashboard(tmp_path))
    assert recorder.calls == []


def test_a_failed_build_names_the_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = make_dashboard(tmp_path)
    touch(root / "app" / "page.tsx", 1_800_000_000.0)
    fake_tools(monkeypatch, returncode=1)
    with pytest.raises(PipelineError, match="dashboard build failed with exit code 1"):
        dashboard.ensure_built(root)


def test_old_node_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/bin/node")
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "v18.19.0\n", ""),
    )
    with pytest.raises(PipelineError, match=r"node >= 20\.9, found v18\.19\.0"):
        dashboard.node_binary()


def test_the_real_dashboard_tree_is_where_the_module_looks() -> None:
    assert (dashboard.DASHBOARD_DIR / "package.json").is_file()
    assert (dashboard.DASHBOARD_DIR / "package-lock.json").is_file()
