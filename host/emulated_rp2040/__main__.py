"""`python -m host.emulated_rp2040`: the emulated Pico's command line (host/emulated_rp2040/cli.py)."""
import sys

from host.emulated_rp2040.cli import main

sys.exit(main())
