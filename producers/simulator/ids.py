"""Deterministic identifiers and texts in Polymarket's formats.

Token ids are uint256 decimals of 76-78 digits, condition/question ids and transaction hashes
`0x` + 64 hex, wallets `0x` + 40 hex in mixed (checksum-like) case. Everything derives from the
seed, so a run is reproducible; transaction hashes also include the run's start time, so two
runs with the same seed never produce the same hash.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "Wallet",
    "hex32",
    "iso_time",
    "iso_time_pg",
    "question_text",
    "slugify",
    "token_id",
    "tx_hash",
    "wallet",
]

_TOKEN_MIN = 10**75  # 76 digits
_TOKEN_MAX = 2**256  # at most 78 digits

_SUBJECTS = (
    "Bitcoin",
    "Ethereum",
    "Solana",
    "the Fed",
    "NVIDIA",
    "Apple",
    "Taylor Swift",
    "Real Madrid",
    "the Lakers",
    "OpenAI",
    "SpaceX",
    "the S&P 500",
    "Gold",
    "Tesla",
    "the ECB",
    "Arsenal",
    "Kraken",
    "Rihanna",
    "the UK",
    "Japan",
)
_PREDICATES = (
    "reach a new all-time high",
    "announce a rate cut",
    "close above its January level",
    "win the final",
    "release a new album",
    "launch a new model",
    "complete an IPO",
    "be up more than 5%",
    "hold a press conference",
    "top the weekly chart",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WORDS = (
    "Scary",
    "Barrel",
    "Adored",
    "Disparity",
    "Comfortable",
    "Insulation",
    "Gregarious",
    "Thirst",
    "Supportive",
    "Basket",
    "Fringe",
    "Quiet",
    "Harbor",
    "Brisk",
    "Lantern",
    "Velvet",
)


def token_id(rng: random.Random) -> str:
    """A CLOB token id: a uint256 as a 76-78 digit decimal string."""
    return str(rng.randrange(_TOKEN_MIN, _TOKEN_MAX))


def hex32(rng: random.Random) -> str:
    """A condition or question id: 0x + 64 lower-case hex."""
    return f"0x{rng.getrandbits(256):064x}"


def tx_hash(seed: int, run_ms: int, number: int) -> str:
    """The hash of transaction `number` of the run started at `run_ms`."""
    digest = hashlib.sha256(f"tx:{seed}:{run_ms}:{number}".encode()).hexdigest()
    return "0x" + digest


@dataclass(frozen=True, slots=True)
class Wallet:
    address: str  # mixed case, as the Data API serves it
    name: str
    pseudonym: str


def wallet(seed: int, number: int) -> Wallet:
    """Wallet `number` of the simulated user pool (same seed -> same wallets)."""
    digest = hashlib.sha256(f"wallet:{seed}:{number}".encode()).hexdigest()
    case = hashlib.sha256(digest.encode()).hexdigest()
    address = "0x" + "".join(
        c.upper() if c.isalpha() and int(case[i], 16) >= 8 else c for i, c in enumerate(digest[:40])
    )
    a, b, c = (int(digest[i : i + 4], 16) for i in (40, 44, 48))
    first, second = _WORDS[a % len(_WORDS)], _WORDS[b % len(_WORDS)]
    return Wallet(address, f"trader{c % 100000}", f"{first}-{second}")


def question_text(rng: random.Random, end_ms: int) -> str:
    moment = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    subject = rng.choice(_SUBJECTS)
    predicate = rng.choice(_PREDICATES)
    return f"Will {subject} {predicate} by {_MONTHS[moment.month - 1]} {moment.day}?"


def slugify(text: str, suffix: str) -> str:
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return "-".join([*words, suffix])


def iso_time(ms: int) -> str:
    """Gamma's usual form: 2026-03-11T09:29:01.328428Z (microseconds, Z)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_time_pg(ms: int) -> str:
    """The Postgres-style form Gamma serves for closedTime: 2024-07-18 00:10:37.491895+00."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00")
