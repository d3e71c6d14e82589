"""polymarket-pipeline core: configuration, Avro codec, embedded registry/ClickHouse, supervisor, CLI."""

__version__ = "0.1.0"
