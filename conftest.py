"""Puts the repo root on sys.path so tests import `host` and `firmware` as the tools do, and loads
the HIL plugin (host/hil/plugin.py: --port/--board/--soak options, board/stream/virtual_board fixtures)."""

pytest_plugins = ["host.hil.plugin"]
