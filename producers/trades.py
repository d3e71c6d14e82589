"""Trade poll: walk the Data API trade feed newest first back past the last walk, emit each
fill once.

`/v2/trades?limit=1000&taker_only=true` pages are followed with `cursor` (the identical filters
re-sent) until a page reaches rows older than `watermark - overlap` (the overlap covers the CDN
caching of the first page and ingestion lag) or the lookback bound; on a 404 the process falls
back to v1 `/trades` with offsets. All rows of a walk are parsed as one payload, so the
occurrence counter in `trade_key` (identical fills of one transaction) does not depend on
where the pages broke.

`TradeDedup` never lets a key through twice: it keeps the keys it has seen with their block
time and forgets those older than `watermark - 2 * overlap`; rows that old and unknown are
counted as too old instead of being emitted again. At start the seen-set is rebuilt from the
recent `polymarket.trades` records of source 'data_api' (`load_recent_trade_keys`), so a
restart does not re-emit.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pmpipe.avro import AvroCodec
from pmpipe.config import Config
from pmpipe.errors import PipelineError
from pmpipe.kafka import consumer_config
from pmpipe.records import Trade
from pmpipe.topics import TRADES
from producers.http import HttpError, LimitTotals, PolymarketHttp
from producers.parsing.data_api import parse_trades, trades_cursor
from producers.settings import Settings
from producers.state import CycleProgress, Publisher, now_ms, now_us
from producers.tokens import CatchUp

__all__ = ["TradeDedup", "TradesFeed", "load_recent_trade_keys"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

_EMPTY_SECS = 5.0

V2_PAGE_LIMIT = 1000
V1_PAGE_LIMIT = 500
V1_MAX_OFFSET = 10_000


class TradeDedup:
    """Trade keys already emitted, bounded by time (ms, block time)."""

    def __init__(self, overlap_ms: int) -> None:
        self.overlap_ms = overlap_ms
        self.watermark_ms: int | None = None
        self._seen: dict[str, int] = {}
        self.duplicates = 0
        self.too_old = 0

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def horizon_ms(self) -> int | None:
        """Keys older than this are forgotten."""
        return None if self.watermark_ms is None else self.watermark_ms - 2 * self.overlap_ms

    def cutoff_ms(self, now: int, lookback_ms: int) -> int:
        """How far back the next walk goes."""
        floor = now - lookback_ms
        if self.watermark_ms is None:
            return floor
        return max(self.watermark_ms - self.overlap_ms, floor)

    def seed(self, keys: Iterable[tuple[str, int]]) -> int:
        """Remember keys emitted before (read back from the topic); returns how many."""
        n = 0
        for key, ts in keys:
            self._seen[key] = ts
            if self.watermark_ms is None or ts > self.watermark_ms:
                self.watermark_ms = ts
            n += 1
        self._prune()
        return n

    def accept(self, trade: Trade) -> bool:
        """True (and remembered) the first time a key is seen; False for repeats."""
        if trade.trade_key in self._seen:
            self.duplicates += 1
            return False
        horizon = self.horizon_ms
        if horizon is not None and trade.source_ts < horizon:
            self.too_old += 1
            return False
        self._seen[trade.trade_key] = trade.source_ts
        return True

    def advance(self, newest_ms: int | None) -> None:
        """After a walk: move the watermark to the newest row seen, forget old keys."""
        if newest_ms is not None and (self.watermark_ms is None or newest_ms > self.watermark_ms):
            self.watermark_ms = newest_ms
        self._prune()

    def _prune(self) -> None:
        horizon = self.horizon_ms
        if horizon is None:
            return
        old = [key for key, ts in self._seen.items() if ts < horizon]
        for key in old:
            del self._seen[key]


def _oldest_ms(rows: Sequence[Any]) -> int | None:
    times = [
        row["timestamp"] * 1000
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("timestamp"), int | float)
    ]
    return int(min(times)) if times else None


class TradesFeed:
    name = "trades"

    def __init__(
        self,
        http: PolymarketHttp,
        publisher: Publisher,
        settings: Settings,
        *,
        interval_secs: float,
    ) -> None:
        self.interval_secs = interval_secs
        self._http = http
        self._publisher = publisher
        self._settings = settings
        self.dedup = TradeDedup(int(settings.trades_overlap_secs * 1000))
        self.api = "v2"
        self.walks = 0
        self.emitted = 0

    def limits(self) -> LimitTotals:
        return self._http.totals([("data", "/trades")])

    async def run_cycle(self, progress: CycleProgress) -> None:
        progress.unit = "pages"
        lookback_ms = int(self._settings.trades_lookback_secs * 1000)
        now = now_ms()
        cutoff = self.dedup.cutoff_ms(now, lookback_ms)
        watermark = self.dedup.watermark_ms
        if watermark is not None and watermark - self.dedup.overlap_ms < now - lookback_ms:
            log.warning(
                "trades: the last walk is older than the lookback (%.0f s): trades between "
                "watermark=%d and %d are not fetched",
                self._settings.trades_lookback_secs,
                watermark,
                cutoff,
            )
        rows, complete = await self._walk(cutoff, progress)
        received_ts = now_us()
        result = parse_trades({"data": rows}, received_ts)
        progress.parse_errors += await self._publisher.dead_letters_of(
            self.name, result.errors, received_ts
        )
        newest: int | None = None
        for trade in result.records:
            newest = trade.source_ts if newest is None else max(newest, trade.source_ts)
            if self.dedup.accept(trade):
                await self._publisher.publish(trade)
                progress.records["trades"] += 1
                self.emitted += 1
            else:
                progress.records["seen"] += 1
        progress.records["rows"] += len(rows)
        if not complete:
            log.error(
                "trades: walk stopped at %d pages before reaching the cutoff %d: older trades "
                "of this window are not fetched",
                self._settings.trades_max_pages,
                cutoff,
            )
        self.dedup.advance(newest)
        self.walks += 1

    async def _walk(self, cutoff_ms: int, progress: CycleProgress) -> tuple[list[Any], bool]:
        if self.api == "v2":
            try:
                return await self._walk_v2(cutoff_ms, progress)
            except HttpError as e:
                if e.status != 404:
                    raise
                log.warning("trades: /v2/trades answered 404, falling back to v1 /trades")
                self.api = "v1"
        return await self._walk_v1(cutoff_ms, progress)

    async def _walk_v2(self, cutoff_ms: int, progress: CycleProgress) -> tuple[list[Any], bool]:
        rows: list[Any] = []
        params: dict[str, Any] = {"limit": V2_PAGE_LIMIT, "taker_only": "true"}
        cursor: str | None = None
        for _ in range(self._settings.trades_max_pages):
            query = dict(params) if cursor is None else {**params, "cursor": cursor}
            payload = await self._http.get_json("data", "/v2/trades", params=query)
            page = payload.get("data") if isinstance(payload, dict) else None
            page = page if isinstance(page, list) else []
            rows.extend(page)
            progress.done += 1
            progress.total = progress.done
            cursor = trades_cursor(payload)
            oldest = _oldest_ms(page)
            if not page or cursor is None or (oldest is not None and oldest < cutoff_ms):
                return rows, True
        return rows, False

    async def _walk_v1(self, cutoff_ms: int, progress: CycleProgress) -> tuple[list[Any], bool]:
        rows: list[Any] = []
        offset = 0
        for _ in range(self._settings.trades_max_pages):
            if offset > V1_MAX_OFFSET:
                return rows, False
            params = {"limit": V1_PAGE_LIMIT, "offset": offset, "takerOnly": "true"}
            page = await self._http.get_json("data", "/trades", params=params)
            page = page if isinstance(page, list) else []
            rows.extend(page)
            progress.done += 1
            progress.total = progress.done
            oldest = _oldest_ms(page)
            if not page or (oldest is not None and oldest < cutoff_ms):
                return rows, True
            offset += len(page)
        return rows, False

    def stats(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "walks": self.walks,
            "emitted": self.emitted,
            "seen_keys": len(self.dedup),
            "watermark_ms": self.dedup.watermark_ms,
            "duplicates": self.dedup.duplicates,
            "too_old": self.dedup.too_old,
        }


# --------------------------------------------------------------------------------------------
# rebuilding the seen-set from the topic


def load_recent_trade_keys(
    config: Config,
    since_ms: int,
    *,
    timeout_secs: float,
    topic: str = TRADES,
    stop: threading.Event | None = None,
) -> list[tuple[str, int]]:
    """(trade_key, source_ts ms) of the data_api trades on `topic` newer than `since_ms`.

    Starts each partition at the first record at or after `since_ms` (offsets_for_times; a
    broker that cannot answer that starts at the beginning) and reads until each partition is
    caught up: a record produced after the load began, or nothing for a while. Bounded by
    `timeout_secs`.
    """
    codec = AvroCodec(config.schema_registry_config(), auto_register=False)
    consumer = Consumer(consumer_config(config, f"pmpipe-trades-seen-{uuid.uuid4().hex[:12]}"))
    deadline = time.monotonic() + timeout_secs
    keys: list[tuple[str, int]] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            log.warning("trades: topic %s not found; starting with an empty seen-set", topic)
            return keys
        wanted = [TopicPartition(topic, p, since_ms) for p in sorted(info.partitions)]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        consumer.assign(starts)
        catch_up = CatchUp([tp.partition for tp in starts], empty_secs=_EMPTY_SECS)
        records = 0
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            for msg in consumer.consume(1000, 0.2):
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("trades: consumer error while loading keys: %s", error)
                    continue
                records += 1
                if not catch_up.seen(msg.partition(), msg.timestamp()[1]):
                    continue  # produced after we started: not needed
                entry = _key_of(codec, topic, msg.value(), since_ms)
                if entry is not None:
                    keys.append(entry)
            if catch_up.done():
                break
        if time.monotonic() >= deadline:
            log.warning(
                "trades: loading recent keys hit its %.0f s bound (%d records read)",
                timeout_secs,
                records,
            )
        log.info(
            "trades: read %d records of %s, %d data_api keys since %d",
            records,
            topic,
            len(keys),
            since_ms,
        )
        return keys
    except KafkaException as e:
        raise PipelineError(f"cannot read recent trades: {e}", topic=topic) from e
    finally:
        consumer.close()


def _key_of(
    codec: AvroCodec, topic: str, value: bytes | None, since_ms: int
) -> tuple[str, int] | None:
    if value is None:
        return None
    try:
        record = codec.decode(topic, value)
    except (KafkaException, SchemaRegistryError, PipelineError) as e:
        log.warning("trades: undecodable record while loading keys: %s", e)
        return None
    if record.get("source") != "data_api":
        return None
    ts = record.get("source_ts")
    ts_ms = (ts - _EPOCH) // _MS if isinstance(ts, datetime) else int(ts or 0)
    if ts_ms < since_ms:
        return None
    return str(record["trade_key"]), ts_ms
