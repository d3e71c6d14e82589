"""`python -m sink`: the sink without the pmpipe CLI (same options as `pmpipe sink`)."""

from sink.run import main

main()
