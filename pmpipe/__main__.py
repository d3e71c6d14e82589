"""`python -m pmpipe` is the `pmpipe` command."""

from pmpipe.cli import main

main()
