"""Puts the repo root on sys.path so tests import `host` and `firmware` as the tools do."""
