"""The repo root is on sys.path (pytest rootdir conftest), so tests import `host`, `firmware` and
`bench` as the installed tools do. The HIL plugin (host/hil/plugin.py) is registered through the
`pytest11` entry point in pyproject.toml, so it loads in any pytest run in the venv."""
