"""polymarket-pipeline core: config, Avro codec, embedded registry and ClickHouse, CLI."""

__version__ = "0.1.0"
