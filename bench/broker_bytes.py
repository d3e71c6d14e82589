"""Bytes per hour per topic the embedded stack stores in its broker, measured on the simulator.

    .venv/bin/python bench/broker_bytes.py --markets 46500 --warmup 240 --seconds 300

Starts `pmpipe up --simulate` (no sink, no dashboard, so nothing is rolled away: the log roll
threshold is set out of reach), lets it warm up (the first market walk publishes every market
and the pollers wait for the token universe: not the steady state), then measures a window:
reads every topic and sums the key+value bytes of the records stamped inside the window
(uncompressed, as produced; the broker stores them zstd-compressed) and samples the broker's
RSS at both ends. Prints per-topic records, MB and MB/hour, and the RSS growth per
hour, which is what the log-roll threshold (PMPIPE_EMBEDDED_BROKER_ROLL_BYTES) bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pmpipe.topics import load_topics
from tests.integration.stack import UpProcess


def broker_rss(up: UpProcess) -> int:
    for proc in up.descendants():
        try:
            if "tansu" in proc.name() or "tansu" in " ".join(proc.cmdline()):
                return int(proc.memory_info().rss)
        except psutil.Error:
            continue
    return 0


def topic_bytes(bootstrap: str, start_ms: int, end_ms: int) -> dict[str, tuple[int, int]]:
    """Records and key+value bytes per topic produced in [start_ms, end_ms] (message
    timestamps): the producers keep running while this reads, so a partition is done at its
    first later record (or when it has been idle for 3 s)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-bytes", "enable.auto.commit": False}
    )
    out: dict[str, tuple[int, int]] = {}
    try:
        meta = consumer.list_topics(timeout=10)
        for topic in load_topics():
            parts = meta.topics[topic.name].partitions
            records = size = 0
            for p in parts:
                consumer.assign([TopicPartition(topic.name, p, 0)])
                idle = 0
                done = False
                while idle < 3 and not done:
                    batch = consumer.consume(10_000, 1.0)
                    if not batch:
                        idle += 1
                        continue
                    idle = 0
                    for msg in batch:
                        if msg.error() is None:
                            stamp = msg.timestamp()[1]
                            if stamp > end_ms:
                                done = True
                                break
                            if stamp < start_ms:
                                continue
                            records += 1
                            size += len(msg.value() or b"") + len(msg.key() or b"")
            out[topic.name] = (records, size)
    finally:
        consumer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=46_500)
    parser.add_argument("--warmup", type=float, default=240, help="seconds before the window")
    parser.add_argument("--seconds", type=float, default=300, help="the measured window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        up = UpProcess(
            Path(tmp) / "data",
            "--simulate",
            "--markets",
            str(args.markets),
            "--no-sink",
            "--no-dashboard",
            env={"PMPIPE_EMBEDDED_BROKER_ROLL_BYTES": str(1 << 50)},
        ).start()
        try:
            up.wait_for(lambda line: "pmpipe up: kafka=" in line, timeout=300)
            time.sleep(args.warmup)
            started = time.monotonic()
            start_ms = int(time.time() * 1000)
            rss0 = broker_rss(up)
            while time.monotonic() - started < args.seconds:
                time.sleep(min(60.0, args.seconds))
                elapsed = time.monotonic() - started
                print(f"t={elapsed:5.0f}s broker_rss={broker_rss(up) / 1e6:8.1f} MB", flush=True)
            elapsed = time.monotonic() - started
            rss1 = broker_rss(up)
            sizes = topic_bytes(up.bootstrap, start_ms, int(time.time() * 1000))
        finally:
            up.stop()
    hours = elapsed / 3600
    print(
        f"\nmarkets={args.markets} tokens={2 * args.markets} run={elapsed:.0f}s"
        f" loadavg={os.getloadavg()[0]:.1f}"
    )
    print(f"{'topic':<22}{'records':>12}{'MB':>10}{'MB/hour':>10}")
    for name, (records, size) in sizes.items():
        print(f"{name:<22}{records:>12}{size / 1e6:>10.1f}{size / 1e6 / hours:>10.0f}")
    total = sum(size for _, size in sizes.values())
    print(f"{'all topics':<22}{'':>12}{total / 1e6:>10.1f}{total / 1e6 / hours:>10.0f}")
    growth = (rss1 - rss0) / 1e6 / hours
    print(f"broker RSS {rss0 / 1e6:.0f} -> {rss1 / 1e6:.0f} MB: {growth:.0f} MB/hour")


if __name__ == "__main__":
    main()
