"""`pmpipe init`: what must exist before producers and the sink run, idempotently.

Creates the topics (partitions and configs from redpanda/topics.json), registers the Avro
schemas (refusing a BACKWARD-incompatible change) and applies the ClickHouse migrations. The
embedded stack runs it after its broker, registry and ClickHouse are ready (and again after
the broker comes back as a new incarnation); the docker-compose `init` service runs the same
command against Redpanda and ClickHouse Cloud.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pmpipe.avro import make_registry_client
from pmpipe.broker import TopicSpec, ensure_topics, wait_for_broker
from pmpipe.config import Config
from pmpipe.topics import load_topics

log = logging.getLogger(__name__)


@dataclass
class InitReport:
    cluster_id: str = ""
    topics_created: list[str] = field(default_factory=list)
    schemas: list[tuple[str, int]] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)


def topic_specs(partitions: int | None = None) -> list[TopicSpec]:
    """The topics of redpanda/topics.json; `partitions` overrides every topic's count."""
    return [TopicSpec(t.name, partitions or t.partitions, dict(t.config)) for t in load_topics()]


def init_topics(
    config: Config, timeout_secs: float = 30.0, *, partitions: int | None = None
) -> tuple[str, list[str]]:
    """(cluster id, topics created); PipelineError when the broker is unreachable."""
    conf = config.kafka_client_config()
    cluster_id = wait_for_broker(config.kafka_bootstrap_servers, timeout_secs, conf)
    return cluster_id, ensure_topics(conf, topic_specs(partitions), timeout_secs)


def init_schemas(config: Config) -> list[tuple[str, int]]:
    from pmpipe.schemas import register_schemas

    auth = None
    if config.schema_registry_username:
        auth = (config.schema_registry_username, config.schema_registry_password)
    client = make_registry_client(config.schema_registry_config())
    return register_schemas(client, config.schema_registry_url, load_topics(), auth)


def init_clickhouse(config: Config, database: str | None = None) -> list[str]:
    from pmpipe.clickhouse import make_client
    from pmpipe.migrations import apply_migrations

    client = make_client(config, database=None)
    try:
        return apply_migrations(client, database or config.clickhouse_database)
    finally:
        client.close()


def initialize(
    config: Config,
    *,
    topics: bool = True,
    schemas: bool = True,
    clickhouse: bool = True,
    partitions: int | None = None,
) -> InitReport:
    report = InitReport()
    if topics:
        report.cluster_id, report.topics_created = init_topics(config, partitions=partitions)
        log.info("topics ready cluster_id=%s created=%s", report.cluster_id, report.topics_created)
    if schemas:
        report.schemas = init_schemas(config)
    if clickhouse:
        report.migrations = init_clickhouse(config)
        log.info("clickhouse migrations applied=%s", report.migrations)
    return report
