"""`pmpipe`: one click group; verbs are the jobs. Options fall back to env vars.

Errors the pipeline raises on purpose (PipelineError) end as one readable line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from pmpipe.config import Config, env_name
from pmpipe.errors import PipelineError
from pmpipe.log import setup_logging


def load_config(**overrides: Any) -> Config:
    return Config.load(overrides=overrides)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Data directory of the embedded stack [env {env_name('data_dir')}; default ./data].",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="polymarket-pipeline")
def cli() -> None:
    """polymarket-pipeline: Polymarket public data -> Kafka topics (Avro) -> ClickHouse."""


@cli.command("config")
def config_command() -> None:
    """Print the effective configuration (env vars + defaults), secrets masked."""
    config = load_config()
    click.echo(json.dumps(config.redacted(), indent=2, default=str))


# --- schemas ---------------------------------------------------------------------------------
@cli.group("schemas")
def schemas_group() -> None:
    """Avro schemas in schemas/ against the schema registry (SCHEMA_REGISTRY_URL)."""


def _registry_auth(config: Config) -> tuple[str, str] | None:
    if config.schema_registry_username:
        return (config.schema_registry_username, config.schema_registry_password)
    return None


@schemas_group.command("check")
@click.option("--registry-url", default=None, help="Overrides SCHEMA_REGISTRY_URL.")
def schemas_check(registry_url: str | None) -> None:
    """Verify every schema is BACKWARD compatible with what the registry already holds."""
    from pmpipe.avro import make_registry_client
    from pmpipe.schemas import check_schemas
    from pmpipe.topics import load_topics

    config = load_config(schema_registry_url=registry_url)
    client = make_registry_client(config.schema_registry_config())
    results = check_schemas(
        client, config.schema_registry_url, load_topics(), _registry_auth(config)
    )
    for r in results:
        version = f" (latest v{r.latest_version})" if r.latest_version else ""
        click.echo(f"{r.status:<12} {r.subject}{version}")
        for message in r.messages:
            click.echo(f"             - {message}")
    bad = [r for r in results if not r.ok]
    if bad:
        raise PipelineError(
            f"{len(bad)} schema(s) not BACKWARD compatible: {', '.join(r.subject for r in bad)}"
        )


@schemas_group.command("register")
@click.option("--registry-url", default=None, help="Overrides SCHEMA_REGISTRY_URL.")
def schemas_register(registry_url: str | None) -> None:
    """Check, then register every schema (refused as a whole if one is incompatible)."""
    from pmpipe.avro import make_registry_client
    from pmpipe.schemas import register_schemas
    from pmpipe.topics import load_topics

    config = load_config(schema_registry_url=registry_url)
    client = make_registry_client(config.schema_registry_config())
    for subject, schema_id in register_schemas(
        client, config.schema_registry_url, load_topics(), _registry_auth(config)
    ):
        click.echo(f"registered   {subject} id={schema_id}")


# --- embedded services -------------------------------------------------------------------------
@cli.command("registry")
@click.option("--host", default="127.0.0.1", help="Bind address (loopback by default).")
@click.option("--port", default=18081, type=click.IntRange(1, 65535))
@data_dir_option
def registry_command(host: str, port: int, data_dir: Path | None) -> None:
    """Run the embedded Confluent-compatible schema registry (persists under DATA_DIR)."""
    from pmpipe.registry.server import run

    setup_logging("registry")
    config = load_config(data_dir=data_dir)
    run(host=host, port=port, data_dir=config.data_dir)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", help="Bind address (loopback by default).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="[CLICKHOUSE_PORT]")
@click.option("--pool-size", default=4, type=click.IntRange(1, 64), help="chdb sessions.")
@data_dir_option
def serve_command(host: str, port: int | None, pool_size: int, data_dir: Path | None) -> None:
    """Run the embedded ClickHouse: chdb behind the ClickHouse HTTP interface."""
    from pmpipe.chserve.server import run

    setup_logging("clickhouse")
    config = load_config(data_dir=data_dir, clickhouse_port=port)
    run(
        host=host,
        port=config.clickhouse_port,
        data_dir=config.data_dir / "clickhouse",
        user=config.clickhouse_user,
        password=config.clickhouse_password,
        pool_size=pool_size,
    )


# --- setup and the embedded stack ------------------------------------------------------------
@cli.command("init")
@click.option("--no-topics", is_flag=True, help="Skip topic creation.")
@click.option("--no-schemas", is_flag=True, help="Skip schema registration.")
@click.option("--no-clickhouse", is_flag=True, help="Skip ClickHouse migrations.")
def init_command(no_topics: bool, no_schemas: bool, no_clickhouse: bool) -> None:
    """Create topics, register schemas and apply ClickHouse migrations (idempotent)."""
    from pmpipe.bootstrap import initialize

    setup_logging("init")
    report = initialize(
        load_config(), topics=not no_topics, schemas=not no_schemas, clickhouse=not no_clickhouse
    )
    click.echo(
        f"init done: cluster_id={report.cluster_id or '-'} topics_created={report.topics_created} "
        f"schemas={len(report.schemas)} migrations_applied={report.migrations}"
    )


@cli.command("migrate")
@click.option("--database", default=None, help="Target database [CLICKHOUSE_DATABASE].")
@click.option("--ws-raw-ttl-days", default=30, type=click.IntRange(1, 36500))
@click.option("--book-depth", default=0, type=click.IntRange(0), help="Levels kept; 0 = all.")
def migrate_command(database: str | None, ws_raw_ttl_days: int, book_depth: int) -> None:
    """Apply pending ClickHouse migrations (a migrations table records what ran)."""
    from pmpipe.clickhouse import make_client
    from pmpipe.migrations import apply_migrations

    setup_logging("migrate")
    config = load_config(clickhouse_database=database)
    client = make_client(config, database=None)
    try:
        applied = apply_migrations(
            client,
            config.clickhouse_database,
            ws_raw_ttl_days=ws_raw_ttl_days,
            book_depth=book_depth,
        )
    finally:
        client.close()
    click.echo(f"migrations applied: {applied or 'none pending'}")


@cli.command("kafka-engine-ddl")
@click.option("--database", default=None, help="Target database [CLICKHOUSE_DATABASE].")
@click.option(
    "--brokers",
    default=None,
    help="Kafka brokers as the ClickHouse SERVER reaches them [KAFKA_BOOTSTRAP_SERVERS].",
)
@click.option(
    "--registry-url",
    default=None,
    help="Schema registry as the ClickHouse SERVER reaches it, no path [SCHEMA_REGISTRY_URL].",
)
@click.option(
    "--consumers",
    default=1,
    type=click.IntRange(1, 64),
    help="kafka_num_consumers per topic (capped at its partitions).",
)
@click.option(
    "--group", default="clickhouse-pmpipe", help="Consumer group prefix: <group>-<topic schema>."
)
def kafka_engine_ddl_command(
    database: str | None,
    brokers: str | None,
    registry_url: str | None,
    consumers: int,
    group: str,
) -> None:
    """Print the Kafka-engine DDL (self-hosted ClickHouse only): pipe it into
    `clickhouse-client --multiquery`. ClickHouse Cloud has no Kafka engine: use `pmpipe sink`."""
    from pmpipe.kafka_engine import kafka_engine_ddl

    config = load_config(
        clickhouse_database=database,
        kafka_bootstrap_servers=brokers,
        schema_registry_url=registry_url,
    )
    click.echo(
        kafka_engine_ddl(
            config.clickhouse_database,
            config.kafka_bootstrap_servers,
            config.schema_registry_url,
            consumers=consumers,
            group=group,
        ),
        nl=False,
    )


@cli.command("up")
@click.option("--simulate", is_flag=True, help="Run against the local Polymarket simulator.")
@click.option("--markets", default=200, type=click.IntRange(1), help="Simulated markets.")
@click.option(
    "--simulator-port",
    envvar="PMPIPE_SIMULATOR_PORT",
    default=18900,
    type=click.IntRange(1, 65535),
    help="Loopback port of the simulator (with --simulate).",
)
@click.option(
    "--feeds",
    default=",".join(("markets", "prices", "trades", "books", "ws")),
    help="Comma-separated producer feeds to run.",
)
@click.option("--no-sink", is_flag=True, help="Do not run the sink.")
@click.option("--no-dashboard", is_flag=True, help="Do not run the dashboard.")
@click.option("--loadgen", "loadgen_rate", default=0.0, help="Add synthetic trades/s (testing).")
@click.option("--loadgen-raw-bytes", default=0, type=click.IntRange(0), help="Random bytes each.")
@click.option("--loadgen-seconds", default=0.0, help="Stop the synthetic load after (0 = never).")
@data_dir_option
def up_command(
    simulate: bool,
    markets: int,
    simulator_port: int,
    feeds: str,
    no_sink: bool,
    no_dashboard: bool,
    loadgen_rate: float,
    loadgen_raw_bytes: int,
    loadgen_seconds: float,
    data_dir: Path | None,
) -> None:
    """Start the embedded stack: broker, registry, ClickHouse, producers, sink (Ctrl-C stops)."""
    from pmpipe.embedded import FEEDS, StackOptions, run_up

    os.environ.setdefault("PMPIPE_LOG_FORMAT", "text")  # children inherit it
    setup_logging("up")
    chosen = tuple(f.strip() for f in feeds.split(",") if f.strip())
    unknown = sorted(set(chosen) - set(FEEDS))
    if unknown:
        raise click.BadParameter(f"unknown feed(s) {unknown}; choose from {list(FEEDS)}")
    config = load_config(data_dir=data_dir)
    options = StackOptions(
        simulate=simulate,
        simulator_markets=markets,
        simulator_port=simulator_port,
        feeds=chosen,
        with_sink=not no_sink,
        with_dashboard=not no_dashboard,
        loadgen_rate=loadgen_rate,
        loadgen_raw_bytes=loadgen_raw_bytes,
        loadgen_seconds=loadgen_seconds,
    )
    sys.exit(run_up(config, options))


@cli.command("loadgen")
@click.option("--rate", default=1000.0, type=click.FloatRange(min=1), help="Trades per second.")
@click.option("--seconds", default=0.0, help="Stop after this long (0 = until Ctrl-C).")
@click.option("--raw-bytes", default=0, type=click.IntRange(0), help="Random ws_raw bytes each.")
@click.option("--run-id", default=None, help="Run id in the trade keys (default: random).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None)
def loadgen_command(
    rate: float, seconds: float, raw_bytes: int, run_id: str | None, report: Path | None
) -> None:
    """Synthetic produce load with gap-free trade keys (tests and benchmarks)."""
    import asyncio
    import uuid

    from pmpipe.loadgen import run_loadgen

    setup_logging("loadgen")
    asyncio.run(
        run_loadgen(
            load_config(),
            rate=rate,
            seconds=seconds,
            raw_bytes=raw_bytes,
            run_id=run_id or uuid.uuid4().hex[:8],
            report_path=report,
        )
    )


@cli.command("dashboard")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="[PMPIPE_DASHBOARD_PORT]")
@click.option("--host", default="127.0.0.1", help="Bind address (loopback by default).")
def dashboard_command(port: int | None, host: str) -> None:
    """Build the dashboard if needed (npm ci, next build) and serve it against ClickHouse."""
    from pmpipe.dashboard import dashboard_env, run_dashboard

    setup_logging("dashboard")
    config = load_config(dashboard_port=port)
    sys.exit(run_dashboard(config.dashboard_port, dashboard_env(config), host=host))


# --- looking at the data ---------------------------------------------------------------------
@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(as_json: bool) -> None:
    """Topics, consumer lag, dead letters, rows and freshness per table."""
    from pmpipe.status import gather_status, render_status

    status = gather_status(load_config())
    if as_json:
        click.echo(json.dumps(status.to_json(), indent=2, default=str))
    else:
        click.echo(render_status(status))
    if status.errors:
        sys.exit(1)


@cli.command("query")
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    default=None,
    help="Any ClickHouse output format (TSV, JSONEachRow, CSV, Pretty...). "
    "Default: PrettyCompact on a terminal, TSVWithNames otherwise.",
)
@click.option("--database", default=None, help="[CLICKHOUSE_DATABASE]")
@click.option("--param", "params", multiple=True, help="name=value for {name:Type} in SQL.")
def query_command(sql: str, fmt: str | None, database: str | None, params: tuple[str, ...]) -> None:
    """Run SQL against the configured ClickHouse (embedded or Cloud) and print the result."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from pmpipe.clickhouse import make_client

    config = load_config(clickhouse_database=database)
    fmt = fmt or ("PrettyCompact" if sys.stdout.isatty() else "TSVWithNames")
    parameters: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected name=value, got {item!r}", param_hint="--param")
        parameters[name] = value
    client = make_client(config)
    try:
        data = client.raw_query(sql, parameters=parameters or None, fmt=fmt)
    except ClickHouseError as e:
        raise PipelineError(f"query failed: {str(e).strip().splitlines()[0]}") from e
    finally:
        client.close()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _register_commands() -> None:
    """Commands that live with their role (producers/, sink/), attached by name."""
    from producers.normalize import normalize_command
    from producers.run import produce_command
    from producers.simulator.cli import simulate_command
    from sink.replay import replay_command
    from sink.run import sink_command

    cli.add_command(normalize_command)
    cli.add_command(produce_command)
    cli.add_command(simulate_command)
    cli.add_command(sink_command)
    cli.add_command(replay_command)


_register_commands()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except PipelineError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
