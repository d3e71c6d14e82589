-- Base tables: one per topic the sink stores, plus the sink's progress table.
--
-- Rules (see clickhouse/README.md):
--   * Column names equal the Avro field names of schemas/<topic>.avsc, so the sink inserts a
--     batch as one Avro object container with `INSERT INTO t (<writer fields>) FORMAT Avro`.
--   * Columns that are not Avro fields are MATERIALIZED (never DEFAULT), so even an insert
--     without a column list maps every column by name.
--   * {database} and {table_settings...} are rendered by pmpipe/migrations.py; on
--     self-hosted/embedded ClickHouse {table_settings} carries
--     non_replicated_deduplication_window so insert_deduplication_token works; on ClickHouse
--     Cloud (replicated) it is left out and the replicated window applies.

-- polymarket.markets: one row per observed version of a market's metadata.
-- ReplacingMergeTree(version): the newest observation (producer receive time) wins on merge
-- and with FINAL; version is MATERIALIZED from received_ts, so replays keep the same version.
CREATE TABLE IF NOT EXISTS {database}.markets
(
    condition_id      String,
    market_id         String,
    question_id       Nullable(String) CODEC(ZSTD(1)),
    slug              String CODEC(ZSTD(1)),
    question          String CODEC(ZSTD(3)),
    description       Nullable(String) CODEC(ZSTD(3)),
    outcomes          Array(String) CODEC(ZSTD(1)),
    outcome_prices    Array(Decimal(18, 6)) CODEC(ZSTD(1)),
    token_ids         Array(String) CODEC(ZSTD(1)),
    event_id          Nullable(String),
    event_slug        Nullable(String) CODEC(ZSTD(1)),
    event_title       Nullable(String) CODEC(ZSTD(1)),
    category          LowCardinality(Nullable(String)),
    tags              Array(LowCardinality(String)),
    active            Bool,
    closed            Bool,
    archived          Bool,
    accepting_orders  Bool,
    enable_order_book Bool,
    neg_risk          Bool,
    tick_size         Nullable(Decimal(18, 6)),
    min_order_size    Nullable(Decimal(18, 6)),
    volume            Nullable(Decimal(18, 6)),
    volume_24h        Nullable(Decimal(18, 6)),
    liquidity         Nullable(Decimal(18, 6)),
    start_date        Nullable(DateTime64(3, 'UTC')),
    end_date          Nullable(DateTime64(3, 'UTC')),
    created_at        Nullable(DateTime64(3, 'UTC')),
    updated_at        Nullable(DateTime64(3, 'UTC')),
    closed_time       Nullable(DateTime64(3, 'UTC')),
    source_ts         DateTime64(3, 'UTC'),
    received_ts       DateTime64(6, 'UTC'),
    raw_json          Nullable(String) CODEC(ZSTD(3)),
    version           DateTime64(6, 'UTC') MATERIALIZED received_ts,
    INDEX idx_token_ids token_ids TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
ORDER BY condition_id
{table_settings};

-- polymarket.prices: top-of-book observations (REST polls) and WS level changes.
CREATE TABLE IF NOT EXISTS {database}.market_prices
(
    token_id         String CODEC(ZSTD(1)),
    condition_id     Nullable(String) CODEC(ZSTD(1)),
    source           LowCardinality(String),
    kind             LowCardinality(String),
    best_bid         Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    best_ask         Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    mid              Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    spread           Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    last_trade_price Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    last_trade_side  LowCardinality(Nullable(String)),
    change_side      LowCardinality(Nullable(String)),
    change_price     Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    change_size      Nullable(Decimal(18, 6)) CODEC(ZSTD(1)),
    order_hash       Nullable(String) CODEC(ZSTD(1)),
    source_ts        DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    received_ts      DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(source_ts)
ORDER BY (token_id, source_ts)
{table_settings};

-- polymarket.trades: one row per fill. source = 'data_api' (authoritative, counted in the
-- volume/OHLCV rollups) or 'ws' (low latency, stored but kept out of the rollups).
CREATE TABLE IF NOT EXISTS {database}.market_trades
(
    trade_key        String CODEC(ZSTD(3)),
    token_id         String CODEC(ZSTD(1)),
    condition_id     Nullable(String) CODEC(ZSTD(1)),
    transaction_hash Nullable(String) CODEC(ZSTD(1)),
    side             LowCardinality(String),
    price            Decimal(18, 6) CODEC(ZSTD(1)),
    size             Decimal(18, 6) CODEC(ZSTD(1)),
    fee_rate_bps     Nullable(Int32),
    proxy_wallet     Nullable(String) CODEC(ZSTD(1)),
    outcome          LowCardinality(Nullable(String)),
    outcome_index    Nullable(Int32),
    occurrence       Int32,
    source           LowCardinality(String),
    source_ts        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    received_ts      DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    INDEX idx_trade_key trade_key TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(source_ts)
ORDER BY (token_id, source_ts)
{table_settings};

-- polymarket.books: one row per token and snapshot; each side is a pair of aligned arrays,
-- best level first. The table keeps the depth it is given; the sink writes through
-- orderbook_snapshots_in below, which caps it.
CREATE TABLE IF NOT EXISTS {database}.orderbook_snapshots
(
    token_id         String CODEC(ZSTD(1)),
    condition_id     Nullable(String) CODEC(ZSTD(1)),
    source           LowCardinality(String),
    bid_prices       Array(Decimal(18, 6)) CODEC(ZSTD(3)),
    bid_sizes        Array(Decimal(18, 6)) CODEC(ZSTD(3)),
    ask_prices       Array(Decimal(18, 6)) CODEC(ZSTD(3)),
    ask_sizes        Array(Decimal(18, 6)) CODEC(ZSTD(3)),
    hash             Nullable(String) CODEC(ZSTD(1)),
    hash_ok          Nullable(Bool),
    tick_size        Nullable(Decimal(18, 6)),
    min_order_size   Nullable(Decimal(18, 6)),
    neg_risk         Nullable(Bool),
    last_trade_price Nullable(Decimal(18, 6)),
    source_ts        DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    received_ts      DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    best_bid         Nullable(Decimal(18, 6)) MATERIALIZED if(empty(bid_prices), NULL, bid_prices[1]),
    best_ask         Nullable(Decimal(18, 6)) MATERIALIZED if(empty(ask_prices), NULL, ask_prices[1]),
    bid_levels       UInt32 MATERIALIZED length(bid_prices),
    ask_levels       UInt32 MATERIALIZED length(ask_prices)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(source_ts)
ORDER BY (token_id, source_ts)
{table_settings};

-- The sink inserts polymarket.books into orderbook_snapshots_in (Null engine: stores nothing);
-- this view keeps the best {book_depth} levels per side (0 = every level) and writes them to
-- orderbook_snapshots, so depth is capped inside ClickHouse, off the sink's Python hot path.
-- {book_depth} is a migration parameter (default 0); change it later with
-- ALTER TABLE orderbook_snapshots_mv MODIFY QUERY (README: book depth).
CREATE TABLE IF NOT EXISTS {database}.orderbook_snapshots_in
(
    token_id         String,
    condition_id     Nullable(String),
    source           String,
    bid_prices       Array(Decimal(18, 6)),
    bid_sizes        Array(Decimal(18, 6)),
    ask_prices       Array(Decimal(18, 6)),
    ask_sizes        Array(Decimal(18, 6)),
    hash             Nullable(String),
    hash_ok          Nullable(Bool),
    tick_size        Nullable(Decimal(18, 6)),
    min_order_size   Nullable(Decimal(18, 6)),
    neg_risk         Nullable(Bool),
    last_trade_price Nullable(Decimal(18, 6)),
    source_ts        DateTime64(3, 'UTC'),
    received_ts      DateTime64(6, 'UTC')
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.orderbook_snapshots_mv
TO {database}.orderbook_snapshots AS
SELECT
    token_id,
    condition_id,
    source,
    if({book_depth} = 0, bid_prices, arraySlice(bid_prices, 1, {book_depth})) AS bid_prices,
    if({book_depth} = 0, bid_sizes, arraySlice(bid_sizes, 1, {book_depth})) AS bid_sizes,
    if({book_depth} = 0, ask_prices, arraySlice(ask_prices, 1, {book_depth})) AS ask_prices,
    if({book_depth} = 0, ask_sizes, arraySlice(ask_sizes, 1, {book_depth})) AS ask_sizes,
    hash,
    hash_ok,
    tick_size,
    min_order_size,
    neg_risk,
    last_trade_price,
    source_ts,
    received_ts
FROM {database}.orderbook_snapshots_in;

-- polymarket.events: market lifecycle events and pipeline continuity events (gaps are data).
-- token_id is NULL for connection-wide events (their tokens are in token_ids), hence
-- allow_nullable_key.
CREATE TABLE IF NOT EXISTS {database}.market_events
(
    event_type       LowCardinality(String),
    category         LowCardinality(String),
    token_id         Nullable(String) CODEC(ZSTD(1)),
    condition_id     Nullable(String) CODEC(ZSTD(1)),
    market_id        Nullable(String),
    token_ids        Array(String) CODEC(ZSTD(3)),
    connection_id    Nullable(String) CODEC(ZSTD(1)),
    gap_start        Nullable(DateTime64(3, 'UTC')),
    gap_end          Nullable(DateTime64(3, 'UTC')),
    old_tick_size    Nullable(Decimal(18, 6)),
    new_tick_size    Nullable(Decimal(18, 6)),
    winning_token_id Nullable(String),
    winning_outcome  Nullable(String),
    detail           Nullable(String) CODEC(ZSTD(3)),
    source           LowCardinality(String),
    source_ts        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    received_ts      DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(source_ts)
ORDER BY (token_id, source_ts)
{table_settings:allow_nullable_key = 1};

-- polymarket.ws_raw: every WebSocket frame as received, for re-normalisation beyond the
-- broker's retention. Daily partitions so the TTL drops whole parts.
-- TTL: {ws_raw_ttl_days} is a migration parameter (default 30); change it later with
-- ALTER TABLE ws_raw_frames MODIFY TTL toDateTime(received_ts) + INTERVAL N DAY.
CREATE TABLE IF NOT EXISTS {database}.ws_raw_frames
(
    connection_id String CODEC(ZSTD(1)),
    seq           Int64 CODEC(Delta, ZSTD(1)),
    url           LowCardinality(String),
    shard         Int32,
    is_binary     Bool,
    payload       String CODEC(ZSTD(3)),
    source_ts     Nullable(DateTime64(3, 'UTC')),
    received_ts   DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_ts)
ORDER BY (connection_id, seq)
TTL toDateTime(received_ts) + INTERVAL {ws_raw_ttl_days} DAY
{table_settings:ttl_only_drop_parts = 1};

-- The sink's exactly-once bookkeeping: one row per batch (offset range) and state, written
-- before the batch's inserts ('pending') and after its offsets are committed ('committed').
-- Latest state per range: SELECT ... FROM sink_progress FINAL. No deduplication window here:
-- every write must land. Old ranges expire after 30 days.
CREATE TABLE IF NOT EXISTS {database}.sink_progress
(
    incarnation  String,
    topic        LowCardinality(String),
    partition    UInt32,
    first_offset UInt64,
    last_offset  UInt64,
    state        LowCardinality(String),
    updated_at   DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (incarnation, topic, partition, first_offset)
TTL toDateTime(updated_at) + INTERVAL 30 DAY;
