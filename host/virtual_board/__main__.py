"""`python -m host.virtual_board`: the virtual board's command line (host/virtual_board/cli.py)."""
import sys

from host.virtual_board.cli import main

sys.exit(main())
