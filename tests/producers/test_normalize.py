"""`pmpipe normalize`: every market-data capture normalises; CLI output and error reporting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from producers.normalize import NormalizeError, normalize_command, normalize_file
from tests.producers import RECEIVED_TS, captures_dir, fixture_path

# Files under captures/ that are not Polymarket market data (or that no record type holds).
NOT_MARKET_DATA = {
    "PROVENANCE.md": "provenance notes",
    "set_b/gamma_keyset/vtrade_manifest.json": "capture manifest",
    "set_a/extra_rust_test_data/rtds_crypto_prices_subscribe.json": "RTDS",
    "set_a/extra_rust_test_data/rtds_crypto_prices_update.json": "RTDS",
    "set_a/extra_rust_test_data/rtds_equity_prices_subscribe.json": "RTDS",
    "set_a/extra_rust_test_data/rtds_equity_prices_update.json": "RTDS",
    "set_a/ws_messages/trades.json": "user-channel trade (authenticated channel)",
    "set_a/http_responses/market.json": "CLOB market object",
    "set_a/http_responses/markets.json": "CLOB market objects page",
    "set_a/extra_rust_test_data/clob_market_closed_binary_accepting_false.json": "CLOB market",
    "set_a/extra_rust_test_data/clob_market_closed_binary_accepting_true.json": "CLOB market",
    "set_b/clob_other/gopolymarket_clob_market_by_condition.json": "CLOB market object",
    "set_b/clob_other/gopolymarket_clob_markets_compact.json": "CLOB compact market object",
    "set_b/clob_other/trebuchet_clob_markets_compact.json": "CLOB compact market objects",
    "set_a/http_responses/price_history.json": "prices history",
    "set_b/clob_prices_history/ccxt_prices_history_fetchOHLCV.json": "prices history",
    "set_b/clob_prices_history/ra1nty_price_history.json": "prices history",
    "set_a/extra_rust_test_data/gamma_tags.json": "tags",
    "set_a/extra_rust_test_data/search_response.json": "search",
    "set_b/gamma_search/ra1nty_public_search.json": "search",
    "set_b/gamma_search/trebuchet_gamma_public_search.json": "search",
    "set_b/clob_prices/ra1nty_last_trade_price.json": (
        "GET /last-trade-price: no PriceUpdate field holds a last trade price, and without a "
        "size it is not a Trade"
    ),
    "set_b/ws_market/polypy_messages_hash.orig.txt": (
        "annotated notes (labels between JSON lines), not a frame log; its frames are "
        "polypy_oct2025_book_pricechange_restbook_sequence.json"
    ),
}

# token of the single-token GET /midpoint capture: the book of the same CLI's fixtures
RA1NTY_TOKEN = "94242206871221370391055736153305071391564432448684801902267396130896523340261"


def source_of(relative: str) -> str:
    """The normalize SOURCE of a capture, from its folder and file name."""
    folder, name = relative.rsplit("/", 1)
    if folder.endswith(("ws_market", "ws_messages")) or name.startswith("ws_"):
        return "ws-market"
    if "book" in name:
        return "clob-books"
    if "trades" in name:
        return "data-trades"
    if folder.endswith("clob_prices"):
        return "clob-prices"
    if "event" in name:
        return "gamma-events"
    if "gamma" in folder or "gamma" in name or "market" in name:
        return "gamma-markets"
    raise AssertionError(f"no source for capture {relative}")


def test_every_market_data_capture_normalises() -> None:
    root = captures_dir()
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert set(NOT_MARKET_DATA) <= set(files), "a skipped capture no longer exists"
    checked: dict[str, int] = {}
    for relative in files:
        if relative in NOT_MARKET_DATA:
            continue
        source = source_of(relative)
        try:
            rows = list(
                normalize_file(
                    source, root / relative, received_ts=RECEIVED_TS, token_id=RA1NTY_TOKEN
                )
            )
        except NormalizeError as e:
            pytest.fail(f"{relative} ({source}): {e}")
        assert rows, f"{relative} ({source}) gave no record"
        checked[relative] = len(rows)
    assert len(checked) >= 60
    assert checked["set_b/ws_market/weather_last_trade_price_tape.jsonl"] == 40
    assert checked["set_b/clob_book/trebuchet_clob_books_POST_books.json"] == 10


def test_capture_sources_are_what_the_folders_say() -> None:
    assert source_of("set_b/gamma_keyset/vtrade_events_keyset_limit1.json") == "gamma-events"
    assert source_of("set_b/gamma_keyset/vtrade_markets_keyset_limit1.json") == "gamma-markets"
    assert source_of("set_a/http_responses/orderbook_history.json") == "clob-books"
    assert source_of("set_a/extra_rust_test_data/ws_quotes.json") == "ws-market"
    assert source_of("set_b/clob_prices/ra1nty_midpoint.json") == "clob-prices"


# --------------------------------------------------------------------------------------------
# CLI


def run(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(normalize_command, [*args, "--received-ts", str(RECEIVED_TS)])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, rows, result.stderr


def test_cli_prints_one_json_line_per_record() -> None:
    code, rows, err = run("clob-books", str(fixture_path("clob_books_post.json")))
    assert (code, err) == (0, "")
    assert [r["record"] for r in rows] == ["BookSnapshot", "BookSnapshot"]
    first = rows[0]
    assert first["topic"] == "polymarket.books"
    assert (
        first["key"]
        == first["token_id"]
        == ("11019686559003253359318459636510036787281809199165975947920974072245914352862")
    )
    assert first["bid_sizes"] == ["6258600.88", "11871148.13"]
    assert first["hash_ok"] is True
    assert first["received_ts"] == RECEIVED_TS


@pytest.mark.parametrize(
    ("source", "fixture", "records"),
    [
        ("gamma-markets", "gamma_market.json", ["Market"]),
        ("gamma-markets", "gamma_markets_keyset.json", ["Market"]),
        ("gamma-events", "gamma_event.json", ["Market", "Market"]),
        ("gamma-events", "gamma_events_keyset.json", ["Market"]),
        ("clob-books", "clob_book.json", ["BookSnapshot"]),
        ("data-trades", "data_trades_v1.json", ["Trade"] * 3),
        ("data-trades", "data_trades_v2.json", ["Trade"]),
        ("ws-market", "ws_book_array.json", ["BookSnapshot"] * 2),
        ("ws-market", "ws_price_change.json", ["PriceUpdate"] * 2),
        ("ws-market", "ws_last_trade_price_tx.jsonl", ["Trade"] * 3),
        ("ws-market", "ws_new_market.json", ["MarketEvent"]),
    ],
)
def test_cli_on_fixtures(source: str, fixture: str, records: list[str]) -> None:
    code, rows, err = run(source, str(fixture_path(fixture)))
    assert (code, err) == (0, "")
    assert [r["record"] for r in rows] == records


def test_decimals_and_token_ids_are_strings() -> None:
    _, rows, _ = run("ws-market", str(fixture_path("ws_price_change.json")))
    assert rows[0]["change_price"] == "0.03"
    assert rows[0]["change_size"] == "23391.25"
    assert isinstance(rows[0]["token_id"], str)
    assert rows[0]["key"] == rows[0]["token_id"]


def test_ws_frame_lines_with_control_messages(tmp_path: Path) -> None:
    book = fixture_path("ws_book_no_event_type.json").read_text().replace("\n", "")
    frames = tmp_path / "frames.txt"
    frames.write_text(f"PONG\n{book}\n\nNO NEW ASSETS\n")
    code, rows, err = run("ws-market", str(frames))
    assert (code, err) == (0, "")
    assert [r["record"] for r in rows] == ["BookSnapshot"]
    as_array = tmp_path / "frames.json"
    as_array.write_text(json.dumps(["PONG", json.loads(book), [json.loads(book)]]))
    code, rows, _ = run("ws-market", str(as_array))
    assert (code, [r["record"] for r in rows]) == (0, ["BookSnapshot", "BookSnapshot"])


def test_malformed_item_one_line_error_with_path(tmp_path: Path) -> None:
    trades = json.loads(fixture_path("data_trades_v1.json").read_text())
    trades[1]["price"] = "cheap"
    bad = tmp_path / "trades.json"
    bad.write_text(json.dumps(trades))
    code, rows, err = run("data-trades", str(bad))
    assert code == 1
    assert len(rows) == 2  # the good rows are still printed
    assert err == f"error: {bad}: $[1].price: not a decimal number: 'cheap'\n"
    assert "Traceback" not in err


def test_malformed_ws_line_is_located(tmp_path: Path) -> None:
    frames = tmp_path / "tape.jsonl"
    frames.write_text('PONG\n{"event_type": "book", "asset_id": "1"\nPING?\n')
    code, rows, err = run("ws-market", str(frames))
    assert (code, rows) == (1, [])
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {frames}: line 2: $: invalid JSON")
    assert lines[1].startswith(f"error: {frames}: line 3: $: not JSON")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "$: invalid JSON: Expecting property name enclosed in double quotes"),
        ('"just a string"', "$: expected a market, an array or a keyset page"),
    ],
)
def test_invalid_files_exit_1(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, rows, err = run("gamma-markets", str(bad))
    assert (code, rows) == (1, [])
    assert err.startswith(f"error: {bad}: {message}")
    assert err.count("\n") == 1


def test_missing_file_exit_1(tmp_path: Path) -> None:
    code, _, err = run("clob-books", str(tmp_path / "absent.json"))
    assert code == 1
    assert err.startswith(f"error: {tmp_path / 'absent.json'}: $: cannot read the file")


def test_clob_prices_shapes(tmp_path: Path) -> None:
    token = "11019686559003253359318459636510036787281809199165975947920974072245914352862"
    poll = tmp_path / "poll.json"
    poll.write_text(
        json.dumps(
            {
                "prices": {token: {"BUY": 0.09, "SELL": ".08"}},
                "midpoints": {token: "0.085"},
                "spreads": {token: "0.01"},
            }
        )
    )
    code, rows, _ = run("clob-prices", str(poll))
    assert code == 0
    assert [(r["best_bid"], r["best_ask"], r["mid"], r["spread"]) for r in rows] == [
        ("0.08", "0.09", "0.085", "0.01")
    ]
    bare = tmp_path / "midpoints.json"
    bare.write_text(json.dumps({token: "0.085"}))
    code, rows, err = run("clob-prices", str(bare))
    assert (code, rows) == (1, [])
    assert "pass --endpoint" in err
    code, rows, _ = run("clob-prices", str(bare), "--endpoint", "midpoints")
    assert (code, rows[0]["mid"]) == (0, "0.085")
    single = tmp_path / "midpoint.json"
    single.write_text('{"mid": "0.0005"}')
    code, rows, _ = run("clob-prices", str(single), "--token-id", token)
    assert (code, rows[0]["token_id"], rows[0]["mid"]) == (0, token, "0.0005")
