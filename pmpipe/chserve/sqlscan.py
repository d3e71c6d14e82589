"""A small ClickHouse SQL lexer: just enough to route an HTTP request without parsing it.

The server needs three answers before it hands text to chdb: where an `INSERT ... FORMAT x`
statement ends and its data begins (so the data can be streamed), which output format a query
names in its `FORMAT` clause (for the X-ClickHouse-Format header), and whether a statement
asks for the Kafka table engine (refused). Strings, quoted identifiers, heredocs and comments
are skipped the way ClickHouse's lexer skips them, so a keyword inside a literal never counts.

Inputs are `str`; binary request bodies are scanned as latin-1 text so that character offsets
equal byte offsets.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass


class Kind(enum.Enum):
    WORD = "word"  # bare identifier, keyword or number
    QUOTED = "quoted"  # "identifier" or `identifier`
    STRING = "string"  # 'literal' or $heredoc$
    PUNCT = "punct"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    start: int
    end: int
    complete: bool = True  # False when the input ends inside the token

    def is_word(self, *words: str) -> bool:
        return self.kind is Kind.WORD and self.text.upper() in words


_HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")
_OPEN = "([{"
_CLOSE = ")]}"


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_" or ord(c) >= 128


def tokenize(sql: str) -> Iterator[Token]:
    """Tokens of `sql`, comments and whitespace dropped. Never raises: an unterminated quote
    or comment yields a token with complete=False (or ends the stream for a comment)."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) or (c == "#" and i + 1 < n and sql[i + 1] in " !"):
            newline = sql.find("\n", i)
            if newline < 0:
                return
            i = newline + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            if i < 0:
                return
        elif c in "'\"`":
            end, complete = _skip_quoted(sql, i, c)
            kind = Kind.STRING if c == "'" else Kind.QUOTED
            yield Token(kind, sql[i:end], i, end, complete)
            i = end
        elif c == "$" and (m := _HEREDOC.match(sql, i)):
            close = sql.find(m.group(0), m.end())
            complete = close >= 0
            end = close + len(m.group(0)) if complete else n
            yield Token(Kind.STRING, sql[i:end], i, end, complete)
            i = end
        elif _is_word_char(c):
            j = i + 1
            while j < n and _is_word_char(sql[j]):
                j += 1
            yield Token(Kind.WORD, sql[i:j], i, j)
            i = j
        else:
            yield Token(Kind.PUNCT, c, i, i + 1)
            i += 1


def _skip_block_comment(sql: str, i: int) -> int:
    """Index after the (nestable) /* */ comment starting at i, or -1 if it is unterminated."""
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return -1


def _skip_quoted(sql: str, i: int, quote: str) -> tuple[int, bool]:
    """End of the quoted token at i (backslash escapes and doubled quotes), and whether the
    closing quote was found."""
    j, n = i + 1, len(sql)
    while j < n:
        c = sql[j]
        if c == "\\":
            j += 2
        elif c == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
            else:
                return j + 1, True
        else:
            j += 1
    return n, False


# --- INSERT with inline data ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertSplit:
    """`INSERT ... FORMAT fmt` (or `... VALUES`) followed by data at `data_offset`."""

    statement: str  # the INSERT without its FORMAT clause / VALUES keyword
    fmt: str
    data_offset: int


class SplitStatus(enum.Enum):
    SPLIT = "split"  # statement and data located
    NEED_MORE = "need_more"  # the statement may continue past the end of the buffer
    NOT_INSERT = "not_insert"  # the first statement is not an INSERT
    NO_DATA = "no_data"  # an INSERT without inline data (INSERT ... SELECT, or malformed)


_TABLE_PREFIX = {"INTO", "TABLE", "FUNCTION"}


def split_insert(text: str, final: bool) -> tuple[SplitStatus, InsertSplit | None]:
    """Locate where an INSERT's data starts in `text`, the beginning of a request.

    `final` says whether `text` is the whole request; without it, an answer that more bytes
    could change is NEED_MORE. The data start follows ClickHouse's parser: after the format
    name, skip spaces/tabs, then one optional CR and one optional LF.
    """
    tokens = tokenize(text)
    first = next(tokens, None)
    if first is None:
        return (SplitStatus.NOT_INSERT if final else SplitStatus.NEED_MORE), None
    if not first.is_word("INSERT"):
        if not final and first.kind is Kind.WORD and first.end == len(text):
            return SplitStatus.NEED_MORE, None  # "INS" | "ERT ..."
        return SplitStatus.NOT_INSERT, None
    depth = 0
    previous = first
    for token in tokens:
        if not token.complete:
            break
        if token.kind is Kind.PUNCT and token.text in _OPEN:
            depth += 1
        elif token.kind is Kind.PUNCT and token.text in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and token.kind is Kind.WORD and not _names_a_table(previous):
            keyword = token.text.upper()
            if keyword in ("SELECT", "WITH"):
                return SplitStatus.NO_DATA, None
            if keyword == "VALUES":
                statement = text[: token.start].rstrip()
                return SplitStatus.SPLIT, InsertSplit(statement, "Values", token.end)
            if keyword == "FORMAT":
                return _split_after_format(text, token, tokens, final)
        previous = token
    return (SplitStatus.NO_DATA if final else SplitStatus.NEED_MORE), None


def _names_a_table(previous: Token) -> bool:
    return previous.text == "." or previous.is_word(*_TABLE_PREFIX)


def _split_after_format(
    text: str, fmt_token: Token, tokens: Iterator[Token], final: bool
) -> tuple[SplitStatus, InsertSplit | None]:
    name = next(tokens, None)
    if name is None or (name.end == len(text) and not final):
        return (SplitStatus.NO_DATA if final else SplitStatus.NEED_MORE), None
    if name.kind not in (Kind.WORD, Kind.QUOTED):
        return SplitStatus.NO_DATA, None
    fmt = name.text.strip('`"') if name.kind is Kind.QUOTED else name.text
    pos, n = name.end, len(text)
    while pos < n and text[pos] in " \t\f":
        pos += 1
    if pos == n and not final:
        return SplitStatus.NEED_MORE, None  # a newline may still follow
    if pos < n and text[pos] == "\r":
        pos += 1
        if pos == n and not final:
            return SplitStatus.NEED_MORE, None
    if pos < n and text[pos] == "\n":
        pos += 1
    statement = text[: fmt_token.start].rstrip()
    return SplitStatus.SPLIT, InsertSplit(statement, fmt, pos)


# --- FORMAT clause of a query ---------------------------------------------------------------


def format_clause(sql: str, known_formats: dict[str, str]) -> str | None:
    """The output format named by a top-level `FORMAT name` clause, canonically spelled.

    `known_formats` maps lower-cased format names to their canonical spelling; a word after
    FORMAT that is not a format (`SELECT x AS format FROM t`) does not count.
    """
    depth = 0
    tokens = list(tokenize(sql))
    for index, token in enumerate(tokens):
        if token.kind is Kind.PUNCT and token.text in _OPEN:
            depth += 1
        elif token.kind is Kind.PUNCT and token.text in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and token.is_word("FORMAT") and index + 1 < len(tokens):
            name = tokens[index + 1]
            following = tokens[index + 2] if index + 2 < len(tokens) else None
            if following is not None and following.text == "(":
                continue  # format(...) is a function call
            canonical = known_formats.get(name.text.strip('`"').lower())
            if canonical is not None:
                return canonical
    return None


# --- refused engines --------------------------------------------------------------------------

REFUSED_ENGINES = frozenset({"KAFKA"})


def refused_engine(sql: str) -> str | None:
    """The name of a refused table engine (Kafka) that `sql` asks for via `ENGINE [=] name`."""
    tokens = [t for t in tokenize(sql) if t.kind is not Kind.STRING]
    for index, token in enumerate(tokens):
        if not token.is_word("ENGINE"):
            continue
        following = tokens[index + 1 : index + 3]
        if following and following[0].text == "=":
            following = following[1:]
        if following and following[0].text.strip('`"').upper() in REFUSED_ENGINES:
            return following[0].text.strip('`"')
    return None
