-- Kafka-engine path (self-hosted ClickHouse only), rendered by `pmpipe kafka-engine-ddl`
-- (pmpipe/kafka_engine.py). Never applied by `pmpipe migrate`: a Kafka-engine table needs a
-- reachable broker, and creating one in chdb damages its data directory.
--
-- Messages the Kafka tables could not decode (kafka_handle_error_mode = 'stream': bad
-- Confluent header, unknown schema id, registry unreachable, a value that does not fit its
-- column) land here with their coordinates and raw bytes, from every topic. Kept 30 days,
-- like the polymarket.dlq topic. The deduplication window is the one of every data table
-- (a redelivered identical block is dropped; `pmpipe migrate` also refuses databases whose
-- MergeTree tables lack it).
CREATE TABLE IF NOT EXISTS {database}.{errors_table}
(
    topic       LowCardinality(String),
    partition   UInt64,
    offset      UInt64,
    message_ts  Nullable(DateTime64(3, 'UTC')),
    error       String,
    raw_message String CODEC(ZSTD(3)),
    received_ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_ts)
ORDER BY (topic, partition, offset)
TTL toDateTime(received_ts) + INTERVAL 30 DAY
{table_settings};
