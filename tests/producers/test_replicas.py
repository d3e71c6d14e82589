"""Producer replicas split the token set (producers/replicas.py).

Pure: the split is an exact partition for any token set and any count, the same in every
process (no salted hash()), and the feeds a replica runs. Configuration: PMPIPE_REPLICA_INDEX /
PMPIPE_REPLICA_COUNT validated with the variable named, CLI flags over env. Against the
simulator, the real broker and the embedded registry: two WebSocket relays subscribe disjoint
shares that cover every token, and two price / book pollers fetch every token exactly once.
The documented docker-compose replica service parses and configures replica 1.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pmpipe.config import Config
from pmpipe.errors import ConfigError, PipelineError
from producers.books import BooksFeed
from producers.http import PolymarketHttp
from producers.market_ws import MarketWsRelay
from producers.parsing.gamma import parse_markets
from producers.prices import PricesFeed
from producers.replicas import (
    GLOBAL_FEEDS,
    Replica,
    TokenShare,
    owns,
    replica_feeds,
    replica_of,
)
from producers.run import FEEDS, ProduceProcess
from producers.settings import Settings
from producers.simulator.config import SimConfig
from producers.simulator.server import Endpoints, SimulatorThread
from producers.state import CycleProgress
from producers.tokens import TokenUniverse
from tests.producers.test_market_ws import until
from tests.producers.test_pollers import SETTINGS, KafkaEnv, kafka, registry_url, run, token

__all__ = ["kafka", "registry_url"]  # fixtures shared with test_pollers

ROOT = Path(__file__).resolve().parents[2]

token_ids = st.one_of(
    st.integers(min_value=0, max_value=2**256).map(str),  # CLOB token ids: big decimals
    st.text(min_size=1, max_size=20),
)


# -------------------------------------------------------------------------------------------
# the split, pure


@settings(max_examples=300, deadline=None)
@given(tokens=st.sets(token_ids, max_size=300), count=st.integers(min_value=1, max_value=8))
def test_replicas_partition_any_token_set_exactly(tokens: set[str], count: int) -> None:
    shares = [{t for t in tokens if owns(t, i, count)} for i in range(count)]
    assert set().union(*shares) == tokens  # nothing lost
    assert sum(len(s) for s in shares) == len(tokens)  # nothing doubled: pairwise disjoint
    for t in tokens:
        owner = replica_of(t, count)
        assert 0 <= owner < count
        assert [owns(t, i, count) for i in range(count)].count(True) == 1
        assert replica_of(t, count) == owner  # stable on a second look
    if count == 1:
        assert shares == [tokens]


@settings(max_examples=100, deadline=None)
@given(
    first=st.lists(token_ids, max_size=200, unique=True),
    second=st.lists(token_ids, max_size=200, unique=True),
    count=st.integers(min_value=1, max_value=8),
)
def test_token_share_follows_a_changing_universe(
    first: list[str], second: list[str], count: int
) -> None:
    """The cached share equals the plain filter, in input order, before and after a change."""
    for index in range(count):
        replica = Replica(index, count)
        share = TokenShare(replica)
        for tokens in (first, second, first):
            assert share.of(tokens) == [t for t in tokens if replica.owns(t)]


def test_count_change_repartitions_without_loss_or_double() -> None:
    """Replicas restarted with a new count: each recomputes; still one owner per token."""
    tokens = [token(i) for i in range(5_000)]
    for old, new in ((1, 2), (2, 3), (3, 2), (4, 8)):
        for count in (old, new):
            owners = Counter(i for t in tokens for i in range(count) if owns(t, i, count))
            assert sum(owners.values()) == len(tokens)
            # balanced: each share within 10 % of the mean
            mean = len(tokens) / count
            assert all(abs(n - mean) < 0.1 * mean for n in owners.values()), owners
        moved = sum(1 for t in tokens if replica_of(t, old) != replica_of(t, new))
        assert 0 < moved < len(tokens)


def test_the_split_is_the_same_in_every_process() -> None:
    """Not Python's hash(): other interpreters with other hash seeds agree."""
    tokens = [token(i) for i in range(200)] + ["abc", "ü-token", ""]
    here = [replica_of(t, c) for t in tokens for c in range(1, 9)]
    code = (
        "import json, sys; from producers.replicas import replica_of; "
        "tokens = json.load(sys.stdin); "
        "print(json.dumps([replica_of(t, c) for t in tokens for c in range(1, 9)]))"
    )
    for seed in ("0", "1", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(tokens),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=60,
            check=True,
        )
        assert json.loads(result.stdout) == here, seed


def test_global_feeds_run_on_replica_zero_only() -> None:
    assert replica_feeds(FEEDS, Replica(0, 3)) == (FEEDS, ())
    assert replica_feeds(FEEDS, Replica(2, 3)) == (("prices", "books", "ws"), GLOBAL_FEEDS)
    assert replica_feeds(("ws",), Replica(1, 2)) == (("ws",), ())
    for bad in ((0, 0), (2, 2), (-1, 2)):
        with pytest.raises(ValueError):
            Replica(*bad)


def test_produce_process_takes_its_replica_from_the_config(tmp_path: Path) -> None:
    base = {"PMPIPE_DATA_DIR": str(tmp_path)}
    second = Config.load({**base, "PMPIPE_REPLICA_INDEX": "1", "PMPIPE_REPLICA_COUNT": "2"})
    process = ProduceProcess(second, Settings(), FEEDS)
    assert process.replica == Replica(1, 2)
    assert process.feeds == ("prices", "books", "ws")
    assert process.skipped == ("markets", "trades")
    assert process.stats()["replica"] == {"index": 1, "count": 2}
    with pytest.raises(PipelineError, match="replica 1/2 has no feed to run"):
        ProduceProcess(second, Settings(), ("markets", "trades"))
    first = ProduceProcess(Config.load({**base, "PMPIPE_REPLICA_COUNT": "2"}), Settings(), FEEDS)
    assert (first.feeds, first.skipped) == (FEEDS, ())


# -------------------------------------------------------------------------------------------
# configuration


def test_replica_config_defaults_validation_and_flags() -> None:
    config = Config.load({})
    assert (config.replica_index, config.replica_count) == (0, 1)
    config = Config.load({"PMPIPE_REPLICA_INDEX": "2", "PMPIPE_REPLICA_COUNT": "3"})
    assert (config.replica_index, config.replica_count) == (2, 3)
    cases = {
        ("1", "1"): "PMPIPE_REPLICA_INDEX: must be below PMPIPE_REPLICA_COUNT (1), got 1",
        ("3", "2"): "PMPIPE_REPLICA_INDEX: must be below PMPIPE_REPLICA_COUNT (2), got 3",
        ("-1", "2"): "PMPIPE_REPLICA_INDEX: must be >= 0, got -1",
        ("0", "0"): "PMPIPE_REPLICA_COUNT: must be >= 1, got 0",
        ("x", "2"): "PMPIPE_REPLICA_INDEX: invalid value 'x'",
        ("0", "two"): "PMPIPE_REPLICA_COUNT: invalid value 'two'",
    }
    for (index, count), message in cases.items():
        with pytest.raises(ConfigError) as error:
            Config.load({"PMPIPE_REPLICA_INDEX": index, "PMPIPE_REPLICA_COUNT": count})
        assert str(error.value).startswith(message), (index, count, str(error.value))
    # CLI flags (overrides) win over env
    env = {"PMPIPE_REPLICA_INDEX": "0", "PMPIPE_REPLICA_COUNT": "1"}
    config = Config.load(env, overrides={"replica_index": 3, "replica_count": 4})
    assert (config.replica_index, config.replica_count) == (3, 4)
    assert config.redacted()["PMPIPE_REPLICA_COUNT"] == 4


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["ws", "--replica-index", "2", "--replica-count", "2"], {}, "PMPIPE_REPLICA_INDEX"),
        (["ws", "--replica-count", "0"], {}, "PMPIPE_REPLICA_COUNT: must be >= 1"),
        (["ws"], {"PMPIPE_REPLICA_INDEX": "5", "PMPIPE_REPLICA_COUNT": "3"}, "must be below"),
        (["markets", "trades", "--replica-index", "1", "--replica-count", "2"], {}, "no feed"),
    ],
)
def test_produce_refuses_a_bad_replica_before_starting(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PMPIPE_REPLICA_")}
    result = subprocess.run(
        [sys.executable, "-m", "producers.run", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env, "PMPIPE_DATA_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


# -------------------------------------------------------------------------------------------
# against the simulator, the real broker and registry

MARKETS = 30  # 60 tokens


@pytest.fixture(scope="module")
def sim() -> Iterator[Endpoints]:
    config = SimConfig(
        port=0,
        markets=MARKETS,
        seed=11,
        new_market_every_secs=0,  # a fixed universe: the shares are checked exactly
        resolve_market_every_secs=0,
        quote_rate=20.0,
    )
    with SimulatorThread(config) as simulator:
        assert simulator.urls is not None
        yield simulator.urls


def universe_from_gamma(urls: Endpoints) -> TokenUniverse:
    page = httpx.get(f"{urls.gamma}/markets/keyset", params={"limit": 100}, timeout=10).json()
    result = parse_markets(page, 0)
    assert not result.errors and "next_cursor" not in page
    universe = TokenUniverse()
    for market in result.records:
        universe.apply_market(market)
    assert len(universe) == 2 * MARKETS
    return universe


def frame_assets(payload: bytes) -> set[str]:
    """The token ids a market-channel frame carries data for (book, price change, trade)."""
    try:
        decoded = json.loads(payload)
    except ValueError:
        return set()  # PONG and other control text
    assets: set[str] = set()
    for event in decoded if isinstance(decoded, list) else [decoded]:
        if not isinstance(event, dict) or event.get("event_type") == "new_market":
            continue
        if "asset_id" in event:
            assets.add(str(event["asset_id"]))
        for change in event.get("price_changes") or []:
            assets.add(str(change["asset_id"]))
    return assets


def initial_books_in(relay: MarketWsRelay, tokens: int) -> bool:
    return relay.counters["polymarket.books"] >= tokens


def test_two_ws_relays_subscribe_disjoint_shares_covering_every_token(
    sim: Endpoints, kafka: KafkaEnv
) -> None:
    universe = universe_from_gamma(sim)
    settings = Settings(ws_shard_size=5, ws_ping_secs=1, ws_pong_timeout_secs=5)
    replicas = [Replica(0, 2), Replica(1, 2)]
    subscribed: dict[str, set[str]] = {}

    async def scenario() -> None:
        relays = [
            MarketWsRelay(sim.ws, kafka.publisher(), universe, settings, replica=r)
            for r in replicas
        ]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
        try:
            for relay in relays:
                share = len([t for t in universe.tokens() if relay.replica.owns(t)])
                await until(
                    functools.partial(initial_books_in, relay, share),
                    timeout=30,
                    what=f"initial books of replica {relay.replica}",
                )
                assert relay.connection_count >= 2  # several sockets per replica
                subscribed[str(relay.replica)] = {t for c in relay.connections() for t in c.tokens}
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)

    run(scenario(), timeout=90)
    zero, one = subscribed["0/2"], subscribed["1/2"]
    assert zero and one and not zero & one
    assert zero | one == universe.token_set()
    assert zero == {t for t in universe.tokens() if owns(t, 0, 2)}

    topics = kafka.read_all("polymarket.events", "polymarket.ws_raw")
    replica_of_conn: dict[str, str] = {}
    connected: dict[str, set[str]] = defaultdict(set)
    for event in topics["polymarket.events"]:
        if event["event_type"] == "connected":
            name = json.loads(event["detail"])["replica"]
            replica_of_conn[event["connection_id"]] = name
            connected[name] |= set(event["token_ids"])
    assert connected == subscribed  # what each replica asked the server for
    # what the server sent each replica's sockets: only its own tokens, every token's book
    received: dict[str, set[str]] = defaultdict(set)
    for frame in topics["polymarket.ws_raw"]:
        received[replica_of_conn[frame["connection_id"]]] |= frame_assets(frame["payload"])
    assert received["0/2"] <= zero and received["1/2"] <= one
    assert received["0/2"] | received["1/2"] == universe.token_set()


def test_two_pollers_fetch_every_token_exactly_once(sim: Endpoints, kafka: KafkaEnv) -> None:
    universe = universe_from_gamma(sim)
    totals: dict[str, list[int]] = defaultdict(list)

    async def scenario() -> None:
        http = PolymarketHttp({"gamma": sim.gamma, "clob": sim.clob, "data": sim.data}, SETTINGS)
        try:
            for index in range(3):
                replica = Replica(index, 3)
                publisher = kafka.publisher()
                for feed in (
                    PricesFeed(
                        http, publisher, universe, interval_secs=30, concurrency=2, replica=replica
                    ),
                    BooksFeed(
                        http, publisher, universe, interval_secs=60, concurrency=2, replica=replica
                    ),
                ):
                    progress = CycleProgress(feed.name)
                    await feed.run_cycle(progress)
                    assert progress.errors == 0
                    assert progress.done == progress.total
                    totals[feed.name].append(progress.total)
        finally:
            await http.aclose()

    run(scenario())
    shares = [sum(1 for t in universe.tokens() if owns(t, i, 3)) for i in range(3)]
    assert totals == {"prices": shares, "books": shares}
    topics = kafka.read_all("polymarket.prices", "polymarket.books")
    for topic in ("polymarket.prices", "polymarket.books"):
        polled = Counter(r["token_id"] for r in topics[topic])
        assert set(polled) == universe.token_set(), topic
        assert set(polled.values()) == {1}, topic  # no token polled by two replicas


# -------------------------------------------------------------------------------------------
# docker-compose: the documented replica service

_BLOCK = re.compile(r"# >>> producer replica.*?\n(?P<body>.*?)  # <<< producer replica", re.S)


def test_compose_documents_a_working_second_replica() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    match = _BLOCK.search(text)
    assert match, "docker-compose.yml: the commented producer replica block is missing"
    body = "".join(
        re.sub(r"^  # ?", "  ", line) for line in match["body"].splitlines(keepends=True)
    )
    services: dict[str, Any] = yaml.safe_load(text.replace(match["body"], body))["services"]
    base, extra = services["producers"], services["producers-1"]
    for key in ("image", "build", "command", "depends_on", "healthcheck", "restart"):
        assert extra[key] == base[key], key
    assert base["environment"]["PMPIPE_REPLICA_INDEX"] == "0"
    assert extra["environment"]["PMPIPE_REPLICA_INDEX"] == "1"
    assert (
        extra["environment"]["PMPIPE_REPLICA_COUNT"] == base["environment"]["PMPIPE_REPLICA_COUNT"]
    )
    assert {k: v for k, v in extra["environment"].items() if k != "PMPIPE_REPLICA_INDEX"} == {
        k: v for k, v in base["environment"].items() if k != "PMPIPE_REPLICA_INDEX"
    }
    # the environment replica 1 gets, with .env's PMPIPE_REPLICA_COUNT=2, configures it
    env = {
        k: re.sub(r"\$\{[A-Z_]+(?::[-?])?([^}]*)\}", r"\1", str(v))
        for k, v in extra["environment"].items()
    }
    env.update(CLICKHOUSE_HOST="clickhouse.example", PMPIPE_REPLICA_COUNT="2")
    config = Config.load(env)
    assert (config.replica_index, config.replica_count) == (1, 2)
    assert ProduceProcess(config, Settings(), FEEDS).feeds == ("prices", "books", "ws")
