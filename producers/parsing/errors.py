"""The one error type of the parsing layer: what is wrong, and where in the payload."""

from __future__ import annotations

from typing import Any

from pmpipe.errors import PipelineError

__all__ = ["ParseError"]


class ParseError(PipelineError):
    """A payload item that cannot become a record.

    `path` is a JSON-path-like location inside the payload that was handed to the parser
    (`$[3].price_changes[1].size`), `reason` says what is wrong with it and `item` is the
    smallest self-contained piece of the payload that was dropped (the market, book, trade row
    or WebSocket event), so a caller can send it to the DLQ and keep the rest.
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        item: Any = None,
        component: str | None = None,
    ) -> None:
        self.path = path
        self.reason = reason
        self.item = item
        super().__init__(f"{path}: {reason}", component=component)

    def at(self, prefix: str) -> ParseError:
        """The same error located inside a larger document (`prefix` replaces the leading `$`)."""
        rest = self.path[1:] if self.path.startswith("$") else self.path
        return ParseError(prefix + rest, self.reason, item=self.item, component=self.component)

    def with_item(self, item: Any) -> ParseError:
        """The same error, carrying `item` unless it already carries a (smaller) one."""
        if self.item is not None:
            return self
        return ParseError(self.path, self.reason, item=item, component=self.component)
