"""`pmpipe loadgen`: synthetic produce load (trades, optionally with raw frames of random bytes).

Used by tests and benchmarks of the embedded broker's log roll: every trade has a gap-free
sequence number in its trade_key (`loadgen|<run>|<seq>`), so a consumer can prove that nothing
was lost or doubled. It follows the pause/resume protocol of `pmpipe.pausing`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import time
from decimal import Decimal
from pathlib import Path

from pmpipe.avro import AvroCodec
from pmpipe.config import Config
from pmpipe.kafka import RecordProducer
from pmpipe.pausing import install_pause_handlers
from pmpipe.records import Trade, WsFrame
from pmpipe.topics import get_topic

log = logging.getLogger(__name__)


def synthetic_trade(run: str, seq: int, rng: random.Random, now_ms: int) -> Trade:
    token = str(10**76 + rng.randrange(10**76) % 50)  # 50 tokens, 77-digit ids
    return Trade(
        trade_key=f"loadgen|{run}|{seq}",
        token_id=token,
        condition_id="0x" + f"{int(token) % 997:064x}",
        transaction_hash="0x" + f"{seq:064x}",
        side="BUY" if seq % 2 else "SELL",
        price=Decimal(rng.randrange(1, 1000)) / 1000,
        size=Decimal(rng.randrange(1, 10**8)) / 100,
        source="data_api",
        source_ts=now_ms,
        received_ts=now_ms * 1000,
    )


async def run_loadgen(
    config: Config,
    *,
    rate: float,
    seconds: float,
    raw_bytes: int,
    run_id: str,
    report_path: Path | None,
) -> int:
    loop = asyncio.get_running_loop()
    producer = RecordProducer(
        config, f"loadgen-{run_id}", AvroCodec(config.schema_registry_config())
    )
    install_pause_handlers(loop, producer)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    trades, raw = get_topic("polymarket.trades"), get_topic("polymarket.ws_raw")
    rng = random.Random(run_id)
    seq = 0
    started = time.monotonic()
    last_report = started
    while not stop.is_set() and (seconds <= 0 or time.monotonic() - started < seconds):
        target = int((time.monotonic() - started) * rate)
        while seq < target and not stop.is_set():
            now_ms = int(time.time() * 1000)
            trade = synthetic_trade(run_id, seq, rng, now_ms)
            await producer.aproduce(trades, trade.key(), trade.to_avro())
            if raw_bytes:
                frame = WsFrame(
                    connection_id=f"loadgen-{run_id}",
                    seq=seq,
                    url="loadgen://",
                    payload=os.urandom(raw_bytes),
                    received_ts=now_ms * 1000,
                )
                await producer.aproduce(raw, frame.key(), frame.to_avro())
            seq += 1
        if time.monotonic() - last_report >= 5:
            last_report = time.monotonic()
            log.info("loadgen progress produced=%d paused=%s", seq, producer.paused)
        await asyncio.sleep(0.01)
    while producer.paused:  # never exit with records only in the pause buffer
        log.info("loadgen waiting for resume before exit buffered=%d", producer.buffered)
        await asyncio.sleep(0.5)
    await asyncio.to_thread(producer.close, 60.0)
    failed = sum(producer.failed.values())
    log.info(
        "loadgen done produced=%d delivered=%s failed=%d", seq, dict(producer.delivered), failed
    )
    if report_path is not None:
        report_path.write_text(json.dumps({"produced": seq, "failed": failed, "run": run_id}))
    return seq
