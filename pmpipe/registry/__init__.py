"""Embedded Confluent-compatible schema registry (AVRO only) for the all-in-one mode.

- `pmpipe.registry.server`: the REST API (aiohttp): `make_app`, `run`, `RegistryThread`;
  `python -m pmpipe.registry.server` runs it standalone.
- `pmpipe.registry.store`: the persistent state (one JSON file, atomically rewritten) and the
  registry rules (ids, versions, soft deletes, compatibility levels).
- `pmpipe.registry.compat`: Avro validation, identity and compatibility checks
  (`check_compatibility`, `check_level`).

The package itself imports nothing, so `python -m pmpipe.registry.server` runs cleanly and
`compat` can be used without loading aiohttp.
"""
