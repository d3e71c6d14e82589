-- One topic of the Kafka-engine path (self-hosted ClickHouse only), rendered once per topic by
-- `pmpipe kafka-engine-ddl` (pmpipe/kafka_engine.py). Never applied by `pmpipe migrate`.
--
--   {kafka_table}      Kafka engine: the consumer (AvroConfluent, schemas from the registry)
--   {consumer_view}    the only view on the Kafka table: everything it reads -> {stream_table}
--   {stream_table}     Null engine: stores nothing, fans each block out to the two views below
--   {rows_view}        decoded rows -> {target_table}, the table the Python sink writes
--   {errors_view}      undecodable messages (_error, _raw_message) -> {errors_table}
--
-- The Kafka table starts consuming as soon as a view reads it, so {consumer_view} is created
-- last, when both routes exist (nothing is read while only one of them does). Pause the topic
-- with DETACH TABLE {database}.{consumer_view}; resume with ATTACH TABLE.
--
-- Columns: one per Avro field of the topic's schema, by name, with the ClickHouse type of the
-- Avro type (never DEFAULT/MATERIALIZED columns: the Kafka engine has none).
-- input_format_avro_allow_missing_fields: a record written with an older schema version that
-- lacks a field added since (with a default) fills that column with its default, as the Python
-- sink does.
CREATE TABLE IF NOT EXISTS {database}.{kafka_table}
(
{kafka_columns}
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = {brokers},
    kafka_topic_list = {topic},
    kafka_group_name = {group},
    kafka_format = 'AvroConfluent',
    format_avro_schema_registry_url = {registry_url},
    kafka_num_consumers = {consumers},
    kafka_thread_per_consumer = {thread_per_consumer},
    kafka_handle_error_mode = 'stream',
    input_format_avro_allow_missing_fields = 1;

CREATE TABLE IF NOT EXISTS {database}.{stream_table}
(
{stream_columns}
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{rows_view}
TO {database}.{target_table} AS
SELECT
{field_list}
FROM {database}.{stream_table}
WHERE length(_error) = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{errors_view}
TO {database}.{errors_table} AS
SELECT
    _topic AS topic,
    _partition AS partition,
    _offset AS offset,
    _timestamp_ms AS message_ts,
    _error AS error,
    _raw_message AS raw_message,
    now64(6, 'UTC') AS received_ts
FROM {database}.{stream_table}
WHERE length(_error) > 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{consumer_view}
TO {database}.{stream_table} AS
SELECT
{field_list},
{virtual_list}
FROM {database}.{kafka_table};
