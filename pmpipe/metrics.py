"""Prometheus metrics and a /health endpoint for every long-running service.

`serve_metrics(port, health)` starts a small HTTP server in a daemon thread:
`/metrics` in the Prometheus text format (prometheus-client's default registry) and `/health`
answering 200 when `health()` reports ready (connected to broker / registry / ClickHouse) and
503 otherwise, with the reasons as JSON. The metrics themselves are defined here, once, and
labelled by component so one dashboard covers producers and the sink.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, bool]]

RECORDS_PRODUCED = Counter(
    "pmpipe_records_produced_total", "Records delivered to the broker", ["topic"]
)
RECORDS_FAILED = Counter("pmpipe_records_failed_total", "Records the broker refused", ["topic"])
API_REQUESTS = Counter(
    "pmpipe_api_requests_total", "Polymarket API requests", ["host", "route", "status"]
)
API_LATENCY = Histogram(
    "pmpipe_api_request_seconds", "Polymarket API request latency", ["host", "route"]
)
RATE_LIMIT_WAIT = Counter(
    "pmpipe_rate_limit_wait_seconds_total", "Seconds waited for rate-limit tokens", ["route"]
)
WS_CONNECTIONS = Gauge("pmpipe_ws_connections", "Open market WebSocket connections")
WS_RECONNECTS = Counter("pmpipe_ws_reconnects_total", "WebSocket reconnects", ["reason"])
WS_GAP_SECONDS = Counter("pmpipe_ws_gap_seconds_total", "Seconds without WebSocket data (gaps)")
SINK_BATCH_ROWS = Histogram(
    "pmpipe_sink_batch_rows",
    "Rows per sink insert",
    ["table"],
    buckets=(1, 10, 100, 1_000, 10_000, 50_000, 100_000, 500_000),
)
SINK_INSERT_SECONDS = Histogram(
    "pmpipe_sink_insert_seconds", "ClickHouse insert latency", ["table"]
)
SINK_ROWS = Counter("pmpipe_sink_rows_total", "Rows inserted into ClickHouse", ["table"])
SINK_LAG = Gauge("pmpipe_consumer_lag", "Consumer lag in records", ["topic", "partition"])
DLQ_RECORDS = Counter(
    "pmpipe_dlq_records_total", "Records sent to the dead-letter topic", ["component"]
)


class _Handler(BaseHTTPRequestHandler):
    health: HealthCheck = staticmethod(lambda: {})

    def do_GET(self) -> None:
        if self.path.startswith("/metrics"):
            self._send(200, CONTENT_TYPE_LATEST, generate_latest())
        elif self.path.startswith("/health"):
            try:
                checks = type(self).health()
            except Exception as e:  # a failing check is an unhealthy answer, not a crash
                checks = {f"check raised {type(e).__name__}": False}
            ok = bool(checks) and all(checks.values())
            body = json.dumps({"ready": ok, "checks": checks}).encode()
            self._send(200 if ok else 503, "application/json", body)
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # scrapes every few seconds would flood the structured log


def serve_metrics(
    port: int, health: HealthCheck, host: str = "0.0.0.0"
) -> ThreadingHTTPServer | None:
    """Serve /metrics and /health on `port` in a daemon thread (None when port is 0)."""
    if not port:
        return None
    handler = type("MetricsHandler", (_Handler,), {"health": staticmethod(health)})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics and health on http://%s:%d/metrics /health", host, port)
    return server


STAT = Gauge(
    "pmpipe_stat",
    "Every numeric counter a component keeps in its stats() (flattened key path)",
    ["component", "key"],
)


def export_stats(component: str, stats: dict[str, object], prefix: str = "") -> None:
    """Mirror a component's nested stats() dict into the pmpipe_stat gauge."""
    for key, value in stats.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, bool):
            STAT.labels(component, path).set(1.0 if value else 0.0)
        elif isinstance(value, int | float):
            STAT.labels(component, path).set(float(value))
        elif isinstance(value, dict):
            export_stats(component, value, path)
