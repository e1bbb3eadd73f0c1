"""`python -m vpnsim.tunnel.bench`: the same command as `vpnsim bench tunnels`."""

import sys

from vpnsim.tunnel.bench.cli import main

sys.exit(main())
