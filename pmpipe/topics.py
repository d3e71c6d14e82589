"""The topic catalogue: names, partitions, configs and the Avro schema of each topic.

Loaded from redpanda/topics.json, which the embedded stack and the docker-compose init service
both use, so the two deployments create the same topics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pmpipe.errors import ConfigError
from pmpipe.paths import redpanda_dir, schemas_dir

MARKETS = "polymarket.markets"
PRICES = "polymarket.prices"
TRADES = "polymarket.trades"
BOOKS = "polymarket.books"
EVENTS = "polymarket.events"
WS_RAW = "polymarket.ws_raw"
DLQ = "polymarket.dlq"

DATA_TOPICS = (MARKETS, PRICES, TRADES, BOOKS, EVENTS)


@dataclass(frozen=True)
class Topic:
    name: str
    schema_name: str
    key_field: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """Schema-registry subject (Confluent TopicNameStrategy for values)."""
        return f"{self.name}-value"

    @property
    def schema_path(self) -> Path:
        return schemas_dir() / f"{self.schema_name}.avsc"

    def schema_text(self) -> str:
        return self.schema_path.read_text(encoding="utf-8")

    def schema(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.schema_text())
        return parsed


def load_topics(path: Path | None = None) -> list[Topic]:
    path = path or redpanda_dir() / "topics.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        topics = [
            Topic(
                name=t["name"],
                schema_name=t["schema"],
                key_field=t["key"],
                partitions=int(t["partitions"]),
                config={str(k): str(v) for k, v in t.get("config", {}).items()},
            )
            for t in spec["topics"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read topic definitions {path}: {e}") from e
    for topic in topics:
        if not topic.schema_path.is_file():
            raise ConfigError(f"topic {topic.name}: schema file {topic.schema_path} is missing")
    return topics


@cache
def topics_by_name() -> dict[str, Topic]:
    return {t.name: t for t in load_topics()}


def get_topic(name: str) -> Topic:
    try:
        return topics_by_name()[name]
    except KeyError:
        raise ConfigError(f"unknown topic {name!r}; known: {sorted(topics_by_name())}") from None
