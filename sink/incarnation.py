"""The log incarnation: which log an offset belongs to.

Offsets only identify a record within one log. The embedded broker (Tansu, memory storage)
starts empty with a fresh cluster id at every start; a topic deleted and created again on a
stable cluster (Redpanda) restarts at offset 0 with a new topic id. The incarnation of a topic
is `<cluster id>/<topic id>` (just the cluster id when the broker reports no topic ids), and
it prefixes every deduplication token and progress row, so a fresh log is neither skipped nor
deduplicated away.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaException, TopicCollection, Uuid
from confluent_kafka.admin import AdminClient

from sink.errors import UnavailableError

__all__ = ["Incarnations", "topic_id_text"]

log = logging.getLogger(__name__)

_ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"


def topic_id_text(uuid: Uuid | None) -> str:
    """A Kafka topic id in its base64 form; '' for none / the all-zero id (not supported)."""
    text = str(uuid) if uuid is not None else ""
    return "" if text in ("", _ZERO_UUID) else text


class Incarnations:
    """Cluster and topic ids through an admin client: its own connection, so a metadata request
    does not queue behind the consumer's long-polling fetches (~100 ms on Tansu). Thread-safe
    for `changed()` (the flush worker calls it)."""

    def __init__(self, admin: AdminClient, timeout_secs: float = 10.0) -> None:
        self._admin = admin
        self._timeout = timeout_secs
        self.cluster_id: str | None = None
        self._topic_ids: dict[str, str] = {}

    def current_cluster_id(self, topic: str | None = None) -> str:
        """The cluster id from a fresh metadata request (`UnavailableError` if none answers)."""
        try:
            metadata = self._admin.list_topics(topic, timeout=self._timeout)
        except KafkaException as e:
            raise UnavailableError(
                f"broker metadata unavailable: {e.args[0]}", component="sink"
            ) from e
        return str(metadata.cluster_id or "")

    def changed(self, topic: str | None = None) -> bool:
        """Whether the broker now reports another cluster id than the one incarnations use."""
        return self.cluster_id is not None and self.current_cluster_id(topic) != self.cluster_id

    def refresh(self, topics: Iterable[str]) -> None:
        """Read the cluster id and the topic ids again (after an assignment or a change)."""
        names = sorted(set(topics))
        cluster_id = self.current_cluster_id(names[0] if names else None)
        ids: dict[str, str] = {}
        if names:
            try:
                futures = self._admin.describe_topics(
                    TopicCollection(names), request_timeout=self._timeout
                )
            except KafkaException as e:
                raise UnavailableError(
                    f"cannot describe topics: {e.args[0]}", component="sink"
                ) from e
            for name, future in futures.items():
                try:
                    ids[name] = topic_id_text(future.result(self._timeout).topic_id)
                except (KafkaException, TimeoutError) as e:
                    log.warning("no topic id for %s (%s): incarnation = cluster id", name, e)
                    ids[name] = ""
        if cluster_id != self.cluster_id:
            log.info("log incarnation cluster_id=%s (was %s)", cluster_id, self.cluster_id)
        self.cluster_id = cluster_id
        self._topic_ids.update(ids)

    def of(self, topic: str) -> str:
        if self.cluster_id is None:
            raise UnavailableError("log incarnation not read yet", topic=topic, component="sink")
        topic_id = self._topic_ids.get(topic, "")
        return f"{self.cluster_id}/{topic_id}" if topic_id else self.cluster_id
