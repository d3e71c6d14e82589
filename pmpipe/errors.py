"""The one root error type of the project, with optional context fields."""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose.

    Context fields (topic, partition, offset, component) are optional and end up in the
    message so a log line alone tells where the failure happened.
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        component: str | None = None,
    ) -> None:
        self.message = message
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.component = component
        super().__init__(self.__str__())

    def __str__(self) -> str:
        ctx = [
            f"{name}={value}"
            for name, value in (
                ("component", self.component),
                ("topic", self.topic),
                ("partition", self.partition),
                ("offset", self.offset),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(ctx)})" if ctx else self.message


class ConfigError(PipelineError):
    """A setting is missing or invalid; the message names the env var."""


class SchemaCompatibilityError(PipelineError):
    """A schema change is not BACKWARD compatible with what the registry holds."""
