"""A faithful local Polymarket for tests, benchmarks and the offline demo.

One aiohttp server serves Gamma (/gamma), the CLOB (/clob), the Data API (/data) and the
market WebSocket (/ws/market) from a seeded simulation of binary markets: books that follow a
random walk, trades that consume them, new and resolved markets, the published rate limits,
switchable faults, and the ground truth of every fill and market as JSON lines.

| module | role |
|---|---|
| config, clock | settings (world, faults), simulated time |
| ids, book, model | identifiers, the compact order book and its wire form, markets and fills |
| engine, trades | the seeded event-driven simulation, the Data API's fill store |
| gamma_json, gamma_routes, clob_routes, data_routes | the HTTP APIs |
| ws_messages, ws | market-channel events, subscriptions and fan-out |
| ratelimit, faults, cursors, state | limits, fault injection, pagination cursors, shared state |
| truth, server, cli | ground truth, the server and its loop, `pmpipe simulate` |
"""

from producers.simulator.config import Faults, SimConfig

__all__ = ["Faults", "SimConfig"]
