-- Rollups fed by materialized views, stored as -State columns in AggregatingMergeTree
-- targets and read back with -Merge (directly or through the *_candles / *_totals / latest
-- read views below).
--
-- * Only source = 'data_api' trades feed the OHLCV and volume rollups: WebSocket trades are the
--   same fills seen earlier, so each fill counts once.
-- * open/close are argMin/argMax by (source_ts, trade_key): Data API times have second
--   precision, and the trade_key tie-break makes candles independent of batch boundaries and
--   insert order (a replay gives the same candle).
-- * notional = price * size, computed in Decimal(38, 12): exact, and it cannot overflow
--   (an overflow would fail the insert into market_trades itself).
-- * The targets carry {table_settings} (the deduplication window) because, with
--   deduplicate_blocks_in_dependent_materialized_views = 1, a redelivered batch is dropped
--   in each view's target as well as in the source table.

CREATE TABLE IF NOT EXISTS {database}.ohlcv_1m
(
    token_id String CODEC(ZSTD(1)),
    bucket   DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    open     AggregateFunction(argMin, Decimal(18, 6), Tuple(DateTime64(3, 'UTC'), String)),
    high     AggregateFunction(max, Decimal(18, 6)),
    low      AggregateFunction(min, Decimal(18, 6)),
    close    AggregateFunction(argMax, Decimal(18, 6), Tuple(DateTime64(3, 'UTC'), String)),
    volume   AggregateFunction(sum, Decimal(18, 6)),
    notional AggregateFunction(sum, Decimal(38, 12)),
    trades   AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (token_id, bucket)
{table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.ohlcv_1m_mv TO {database}.ohlcv_1m AS
SELECT
    token_id,
    toStartOfMinute(source_ts) AS bucket,
    argMinState(price, (source_ts, trade_key)) AS open,
    maxState(price) AS high,
    minState(price) AS low,
    argMaxState(price, (source_ts, trade_key)) AS close,
    sumState(size) AS volume,
    sumState(CAST(price AS Decimal(38, 6)) * size) AS notional,
    countState() AS trades
FROM {database}.market_trades
WHERE source = 'data_api'
GROUP BY token_id, bucket;

CREATE TABLE IF NOT EXISTS {database}.ohlcv_1h
(
    token_id String CODEC(ZSTD(1)),
    bucket   DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    open     AggregateFunction(argMin, Decimal(18, 6), Tuple(DateTime64(3, 'UTC'), String)),
    high     AggregateFunction(max, Decimal(18, 6)),
    low      AggregateFunction(min, Decimal(18, 6)),
    close    AggregateFunction(argMax, Decimal(18, 6), Tuple(DateTime64(3, 'UTC'), String)),
    volume   AggregateFunction(sum, Decimal(18, 6)),
    notional AggregateFunction(sum, Decimal(38, 12)),
    trades   AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (token_id, bucket)
{table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.ohlcv_1h_mv TO {database}.ohlcv_1h AS
SELECT
    token_id,
    toStartOfHour(source_ts) AS bucket,
    argMinState(price, (source_ts, trade_key)) AS open,
    maxState(price) AS high,
    minState(price) AS low,
    argMaxState(price, (source_ts, trade_key)) AS close,
    sumState(size) AS volume,
    sumState(CAST(price AS Decimal(38, 6)) * size) AS notional,
    countState() AS trades
FROM {database}.market_trades
WHERE source = 'data_api'
GROUP BY token_id, bucket;

CREATE TABLE IF NOT EXISTS {database}.volume_daily
(
    token_id     String CODEC(ZSTD(1)),
    day          Date,
    condition_id SimpleAggregateFunction(any, Nullable(String)),
    volume       AggregateFunction(sum, Decimal(18, 6)),
    notional     AggregateFunction(sum, Decimal(38, 12)),
    trades       AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (token_id, day)
{table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.volume_daily_mv TO {database}.volume_daily AS
SELECT
    token_id,
    toDate(source_ts) AS day,
    any(condition_id) AS condition_id,
    sumState(size) AS volume,
    sumState(CAST(price AS Decimal(38, 6)) * size) AS notional,
    countState() AS trades
FROM {database}.market_trades
WHERE source = 'data_api'
GROUP BY token_id, day;

-- Latest quote and trade per token. Each field is the latest non-NULL value by
-- (source_ts, received_ts) for quotes and (source_ts, trade_key) for trades: argMax over a
-- Nullable argument skips NULLs, and a field with no value at all merges to NULL (the quotes
-- view leaves the trade columns empty and vice versa). Trades of every source count here (the
-- WebSocket is the freshest), unlike in the volume rollups.
CREATE TABLE IF NOT EXISTS {database}.market_latest_price
(
    token_id         String,
    best_bid         AggregateFunction(argMax, Nullable(Decimal(18, 6)), Tuple(DateTime64(3, 'UTC'), DateTime64(6, 'UTC'))),
    best_ask         AggregateFunction(argMax, Nullable(Decimal(18, 6)), Tuple(DateTime64(3, 'UTC'), DateTime64(6, 'UTC'))),
    mid              AggregateFunction(argMax, Nullable(Decimal(18, 6)), Tuple(DateTime64(3, 'UTC'), DateTime64(6, 'UTC'))),
    spread           AggregateFunction(argMax, Nullable(Decimal(18, 6)), Tuple(DateTime64(3, 'UTC'), DateTime64(6, 'UTC'))),
    quote_ts         AggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    last_trade_price AggregateFunction(argMax, Nullable(Decimal(18, 6)), Tuple(DateTime64(3, 'UTC'), String)),
    last_trade_side  AggregateFunction(argMax, Nullable(String), Tuple(DateTime64(3, 'UTC'), String)),
    last_trade_ts    AggregateFunction(max, Nullable(DateTime64(3, 'UTC')))
)
ENGINE = AggregatingMergeTree
ORDER BY token_id
{table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.market_latest_price_quotes_mv
TO {database}.market_latest_price AS
SELECT
    token_id,
    argMaxState(best_bid, (source_ts, received_ts)) AS best_bid,
    argMaxState(best_ask, (source_ts, received_ts)) AS best_ask,
    argMaxState(mid, (source_ts, received_ts)) AS mid,
    argMaxState(spread, (source_ts, received_ts)) AS spread,
    maxState(CAST(source_ts AS Nullable(DateTime64(3, 'UTC')))) AS quote_ts
FROM {database}.market_prices
GROUP BY token_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.market_latest_price_trades_mv
TO {database}.market_latest_price AS
SELECT
    token_id,
    argMaxState(CAST(price AS Nullable(Decimal(18, 6))), (source_ts, trade_key)) AS last_trade_price,
    argMaxState(CAST(side AS Nullable(String)), (source_ts, trade_key)) AS last_trade_side,
    maxState(CAST(source_ts AS Nullable(DateTime64(3, 'UTC')))) AS last_trade_ts
FROM {database}.market_trades
GROUP BY token_id;

-- Read views: finished (finalised) values. Filter on token_id and bucket/day in the outer
-- query; the predicates are pushed into the view's GROUP BY keys.
CREATE VIEW IF NOT EXISTS {database}.ohlcv_1m_candles AS
SELECT
    token_id,
    bucket,
    argMinMerge(open) AS open,
    maxMerge(high) AS high,
    minMerge(low) AS low,
    argMaxMerge(close) AS close,
    sumMerge(volume) AS volume,
    sumMerge(notional) AS notional,
    countMerge(trades) AS trades,
    if(volume = 0, NULL, toFloat64(notional) / toFloat64(volume)) AS vwap
FROM {database}.ohlcv_1m
GROUP BY token_id, bucket;

CREATE VIEW IF NOT EXISTS {database}.ohlcv_1h_candles AS
SELECT
    token_id,
    bucket,
    argMinMerge(open) AS open,
    maxMerge(high) AS high,
    minMerge(low) AS low,
    argMaxMerge(close) AS close,
    sumMerge(volume) AS volume,
    sumMerge(notional) AS notional,
    countMerge(trades) AS trades,
    if(volume = 0, NULL, toFloat64(notional) / toFloat64(volume)) AS vwap
FROM {database}.ohlcv_1h
GROUP BY token_id, bucket;

CREATE VIEW IF NOT EXISTS {database}.volume_daily_totals AS
SELECT
    token_id,
    day,
    any(condition_id) AS condition_id,
    sumMerge(volume) AS volume,
    sumMerge(notional) AS notional,
    countMerge(trades) AS trades
FROM {database}.volume_daily
GROUP BY token_id, day;

-- Tokens with quotes but no trades (or the reverse) get NULL for the missing fields.
CREATE VIEW IF NOT EXISTS {database}.latest_prices AS
SELECT
    token_id,
    argMaxMerge(best_bid) AS best_bid,
    argMaxMerge(best_ask) AS best_ask,
    argMaxMerge(mid) AS mid,
    argMaxMerge(spread) AS spread,
    maxMerge(quote_ts) AS quote_ts,
    argMaxMerge(last_trade_price) AS last_trade_price,
    argMaxMerge(last_trade_side) AS last_trade_side,
    maxMerge(last_trade_ts) AS last_trade_ts
FROM {database}.market_latest_price
GROUP BY token_id;
