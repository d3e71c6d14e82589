"""`pmpipe schemas check|register` against the embedded registry: a BACKWARD-breaking change
is refused naming the field, an added optional field is accepted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmpipe.paths import schemas_dir
from pmpipe.registry.server import RegistryThread


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with RegistryThread(tmp_path / "data") as thread:
        yield thread.url


def pmpipe(*args: str, url: str, schemas: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "SCHEMA_REGISTRY_URL": url}
    if schemas is not None:
        env["PMPIPE_SCHEMAS_DIR"] = str(schemas)
    return subprocess.run(
        [sys.executable, "-c", "from pmpipe.cli import main; main()", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def edited_schemas(tmp_path: Path, edit: str) -> Path:
    target = tmp_path / f"schemas-{edit}"
    shutil.copytree(schemas_dir(), target)
    path = target / "trades.avsc"
    schema = json.loads(path.read_text())
    fields = schema["fields"]
    if edit == "add-optional":
        fields.append(
            {"name": "venue", "type": ["null", "string"], "default": None, "doc": "Venue."}
        )
    elif edit == "add-required":
        fields.append({"name": "venue", "type": "string", "doc": "Venue."})
    elif edit == "price-to-string":
        next(f for f in fields if f["name"] == "price")["type"] = "string"
    path.write_text(json.dumps(schema))
    return target


def test_register_then_check_is_unchanged(registry: str) -> None:
    first = pmpipe("schemas", "check", url=registry)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("new ") == 7
    reg = pmpipe("schemas", "register", url=registry)
    assert reg.returncode == 0, reg.stderr
    assert reg.stdout.count("registered ") == 7
    again = pmpipe("schemas", "check", url=registry)
    assert again.returncode == 0
    assert again.stdout.count("unchanged") == 7


@pytest.mark.parametrize(
    ("edit", "field_fragment"),
    [("add-required", "venue"), ("price-to-string", "price")],
)
def test_breaking_change_is_refused_naming_the_field(
    registry: str, tmp_path: Path, edit: str, field_fragment: str
) -> None:
    assert pmpipe("schemas", "register", url=registry).returncode == 0
    changed = edited_schemas(tmp_path, edit)
    result = pmpipe("schemas", "check", url=registry, schemas=changed)
    assert result.returncode == 2
    assert "incompatible" in result.stdout
    assert f"'{field_fragment}'" in result.stdout, result.stdout
    assert "polymarket.trades-value" in result.stderr
    refused = pmpipe("schemas", "register", url=registry, schemas=changed)
    assert refused.returncode == 2
    assert field_fragment in refused.stderr
    # nothing was registered: the registry still holds one version of the trades subject
    assert "unchanged" in pmpipe("schemas", "check", url=registry).stdout


def test_added_optional_field_is_accepted(registry: str, tmp_path: Path) -> None:
    assert pmpipe("schemas", "register", url=registry).returncode == 0
    changed = edited_schemas(tmp_path, "add-optional")
    result = pmpipe("schemas", "check", url=registry, schemas=changed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compatible   polymarket.trades-value" in result.stdout
    reg = pmpipe("schemas", "register", url=registry, schemas=changed)
    assert reg.returncode == 0, reg.stderr
