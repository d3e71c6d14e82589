"""`python -m producers.simulator [OPTIONS]`: the same command as `pmpipe simulate`."""

from __future__ import annotations

from producers.simulator.cli import simulate_command

if __name__ == "__main__":
    simulate_command(prog_name="python -m producers.simulator")
