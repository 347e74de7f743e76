import sys

from host.fleet.cli import main

sys.exit(main())
