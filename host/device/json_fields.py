"""Typed fields out of parsed JSON, collecting one problem line per mistake instead of stopping at
the first: the user fixes a hand-written file (board.json) in one edit, not one run per typo."""

from __future__ import annotations

import json
from typing import Any, Callable


class FieldReader:
    """Reads fields out of one parsed file; every problem line starts with `where` (the file)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[str] = []

    def problem(self, name: str, wrong: str, expected: str) -> None:
        self.problems.append(f"{self.where}: {name}: {wrong}; expected {expected}")

    def known(self, obj: dict, at: str, keys: tuple[str, ...]) -> None:
        for key in obj:
            if key not in keys and key != "comment":
                self.problem(_join(at, key), "is not a known field", f"one of {', '.join(keys)}")

    def take(self, obj: dict, at: str, key: str, ok: Callable[[Any], bool], expected: str, required: bool = True,
             default: Any = None) -> Any:
        """obj[key] when `ok` accepts it; otherwise a problem line (unless absent and not required) and `default`."""
        if key not in obj:
            if required:
                self.problem(_join(at, key), "missing", expected)
            return default
        value = obj[key]
        if not ok(value):
            self.problem(_join(at, key), f"is {describe(value)}", expected)
            return default
        return value

    def integer(self, obj: dict, at: str, key: str, *, required: bool = True, lo: int | None = None,
                hi: int | None = None, default: int | None = None, expected: str | None = None) -> Any:
        if expected is None:
            expected = "an integer" + (f" in {lo}..{hi}" if hi is not None else f" >= {lo}" if lo is not None else "")
        return self.take(obj, at, key, lambda v: isinstance(v, int) and not isinstance(v, bool)
                         and (lo is None or v >= lo) and (hi is None or v <= hi), expected, required, default)

    def text(self, obj: dict, at: str, key: str, *, required: bool = True, default: str | None = None) -> Any:
        return self.take(obj, at, key, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string",
                         required, default)

    def obj(self, obj: dict, at: str, key: str, *, required: bool = True) -> Any:
        return self.take(obj, at, key, lambda v: isinstance(v, dict), "an object", required, None)

    def items(self, obj: dict, key: str) -> list[tuple[str, dict]]:
        """(field path, entry) of each well-formed object in the list `key` (absent: none)."""
        seq = self.take(obj, "", key, lambda v: isinstance(v, list), "a list", False, [])
        out = []
        for i, entry in enumerate(seq):
            if isinstance(entry, dict):
                out.append((f"{key}[{i}]", entry))
            else:
                self.problem(f"{key}[{i}]", f"is {describe(entry)}", "an object")
        return out


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def describe(v: Any) -> str:
    """A wrong value as a problem line shows it: its JSON type and, for a scalar, the value itself."""
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    kind = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}.get(
        type(v), type(v).__name__)
    return f"{kind} ({json.dumps(v)[:40]})" if isinstance(v, (str, int, float)) else kind
