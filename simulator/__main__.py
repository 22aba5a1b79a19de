"""`python -m simulator` is the `relcomm` command."""

from simulator.cli import main

raise SystemExit(main())
