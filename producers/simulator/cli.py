"""`pmpipe simulate` (also `python -m producers.simulator`): a local Polymarket.

Every option falls back to an env var PMPIPE_SIM_<NAME> (e.g. PMPIPE_SIM_MARKETS=25000).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from producers.simulator.config import DEFAULT_HOST, DEFAULT_PORT, Faults, SimConfig

__all__ = ["simulate_command"]

_RATE = click.FloatRange(0.0, 1.0)
_SECS = click.FloatRange(min=0.0)


@click.command("simulate", context_settings={"auto_envvar_prefix": "PMPIPE_SIM"})
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Bind address.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="One port for Gamma (/gamma), CLOB (/clob), Data API (/data), WS (/ws/market); "
    "0 = any free port.",
)
@click.option(
    "--markets",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Markets at start (two tokens each).",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same world.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Ground truth goes to DATA_DIR/truth/*.jsonl (none without it).",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Simulated seconds per wall second.",
)
@click.option(
    "--trade-rate",
    default=5.0,
    show_default=True,
    type=_SECS,
    help="Taker orders (transactions, one or more fills each) per simulated second, "
    "all markets together.",
)
@click.option(
    "--quote-rate",
    default=40.0,
    show_default=True,
    type=_SECS,
    help="Order-book level changes per simulated second, all markets together.",
)
@click.option(
    "--new-market-every-secs",
    default=60.0,
    show_default=True,
    type=_SECS,
    help="A new market every N simulated seconds (0 = never).",
)
@click.option(
    "--resolve-market-every-secs",
    default=120.0,
    show_default=True,
    type=_SECS,
    help="Resolve a random open market every N simulated seconds (0 = never).",
)
@click.option(
    "--data-lag-secs",
    default=4.0,
    show_default=True,
    type=_SECS,
    help="Simulated seconds between a match (WebSocket) and its Data API row.",
)
@click.option(
    "--start-time-ms", default=None, type=int, help="Simulated epoch (ms) at start [default: now]."
)
@click.option(
    "--rate-limit-scale",
    default=1.0,
    show_default=True,
    type=_SECS,
    help="Multiplies the published rate limits (0 = no limits).",
)
@click.option(
    "--trades-kept",
    default=2_000_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Fills the Data API keeps in memory (the oldest are dropped; the truth file keeps all).",
)
@click.option("--fault-429-storm", is_flag=True, help="Answer every 3rd API request with 429.")
@click.option("--fault-5xx", default=0.0, type=_RATE, help="Share of API requests -> 500/502/503.")
@click.option("--fault-slow-secs", default=0.0, type=_SECS, help="Delay every API response.")
@click.option(
    "--fault-cloudflare-403",
    default=0.0,
    type=_RATE,
    help="Share of API requests -> Cloudflare HTML 403.",
)
@click.option(
    "--fault-ws-drop-every-secs",
    default=0.0,
    type=_SECS,
    help="Abort each WebSocket connection S wall seconds after it opened.",
)
@click.option(
    "--fault-ws-silent-after-secs",
    default=0.0,
    type=_SECS,
    help="After S wall seconds a connection sends no data (PONG still answered).",
)
@click.option(
    "--fault-ws-malformed",
    default=0.0,
    type=_RATE,
    help="Share of WebSocket data frames sent truncated.",
)
@click.option(
    "--fault-bad-hash", default=0.0, type=_RATE, help="Share of served books whose hash is wrong."
)
def simulate_command(**options: Any) -> None:
    """Run a local Polymarket: Gamma, CLOB, Data API and the market WebSocket on one port,
    with a seeded market engine, the published rate limits and switchable faults
    (POST /_sim/faults; GET /_sim/status for counters)."""
    from pmpipe.log import setup_logging
    from producers.simulator.server import run

    setup_logging("simulator")
    config = SimConfig(**{f.name: options[f.name] for f in fields(SimConfig)})
    faults = Faults(**{f.name: options[f.name] for f in fields(Faults) if f.name in options})
    run(config, faults)
