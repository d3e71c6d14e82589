"""Ground truth: every fill and every market change, as JSON lines under DATA_DIR/truth/.

`trades.jsonl`: one line per fill (what the Data API serves and the WebSocket announced), with
the `trade_key` the parsers derive for it (pmpipe.records.trade_key), so a test can compare
sets. `markets.jsonl`: one line per market created (the initial catalogue included), updated
(trades change volume and cached prices; tick size changes) or resolved. Files are appended to
(a restarted simulator keeps the previous run's lines; transaction hashes never repeat across
runs) and flushed by `flush()`, which the server calls every second and at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from pmpipe.records import trade_key
from producers.simulator.book import price_text, size_text
from producers.simulator.engine import Listener
from producers.simulator.ids import iso_time
from producers.simulator.model import Fill, Market

__all__ = ["TruthWriter"]

log = logging.getLogger(__name__)


class TruthWriter(Listener):
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "truth"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.trades_path = self.dir / "trades.jsonl"
        self.markets_path = self.dir / "markets.jsonl"
        self._trades: list[bytes] = []
        self._markets: list[bytes] = []
        self.trades_written = 0
        self.markets_written = 0

    # --- listener ------------------------------------------------------------------------------
    def on_trade(
        self, market: Market, ts_ms: int, fills: Sequence[Fill], best_changed: bool
    ) -> None:
        for f in fills:
            price, size = price_text(f.price), size_text(f.size)
            self._trades.append(
                msgspec.json.encode(
                    {
                        "transaction_hash": f.tx_hash,
                        "token_id": f.token,
                        "condition_id": market.condition_id,
                        "market_id": market.id,
                        "side": f.side,
                        "price": price,
                        "size": size,
                        "timestamp": f.block_s,
                        "match_ts_ms": f.match_ms,
                        "occurrence": f.occurrence,
                        "fill_index": f.fill_index,
                        "outcome": market.outcomes[f.outcome],
                        "outcome_index": f.outcome,
                        "trade_key": trade_key(
                            f.tx_hash,
                            f.token,
                            side=f.side,
                            price=Decimal(price),
                            size=Decimal(size),
                            occurrence=f.occurrence,
                        ),
                    }
                )
            )
        self._market("updated", market, ts_ms)

    def on_tick_size_change(self, market: Market, ts_ms: int, old_tick: int) -> None:
        self._market("updated", market, ts_ms)

    def on_new_market(self, market: Market, ts_ms: int) -> None:
        self._market("created", market, ts_ms)

    def on_market_resolved(self, market: Market, ts_ms: int) -> None:
        self._market("resolved", market, ts_ms)

    def catalogue(self, markets: Sequence[Market], ts_ms: int) -> None:
        """The initial markets, as 'created' lines."""
        for market in markets:
            self._market("created", market, ts_ms)

    # --- output --------------------------------------------------------------------------------
    def _market(self, change: str, market: Market, ts_ms: int) -> None:
        line: dict[str, Any] = {
            "change": change,
            "ts_ms": ts_ms,
            "market_id": market.id,
            "condition_id": market.condition_id,
            "question_id": market.question_id,
            "token_ids": list(market.tokens),
            "event_id": market.event.id,
            "slug": market.slug,
            "question": market.question,
            "active": True,
            "closed": market.closed,
            "tick_size": price_text(market.tick),
            "neg_risk": market.neg_risk,
            "volume": market.volume,
            "updated_at": iso_time(market.updated_ms),
        }
        if market.closed:
            line["winning_token_id"] = market.tokens[market.winner]
        self._markets.append(msgspec.json.encode(line))

    def flush(self) -> None:
        for path, lines in ((self.trades_path, self._trades), (self.markets_path, self._markets)):
            if not lines:
                continue
            with path.open("ab") as f:
                f.write(b"\n".join(lines) + b"\n")
            if path is self.trades_path:
                self.trades_written += len(lines)
            else:
                self.markets_written += len(lines)
            lines.clear()
