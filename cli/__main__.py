"""`python -m cli`: the same as the `sovd-sim` console script."""

import sys

from cli.main import main

sys.exit(main())
