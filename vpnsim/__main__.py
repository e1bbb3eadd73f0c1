"""`python -m vpnsim` is the `vpnsim` command."""

from vpnsim.cli import main

raise SystemExit(main())
