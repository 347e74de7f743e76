"""pagerless HIL: a pytest plugin (host/hil/plugin.py) that runs one test suite against real boards
and virtual boards. `Board` and `Stream` are what its `board` and `stream` fixtures give a test."""
from host.hil.stream import HilError, Stream
from host.hil.target import Board, Target, TargetError

__all__ = ["Board", "HilError", "Stream", "Target", "TargetError"]
