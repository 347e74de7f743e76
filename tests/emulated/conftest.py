"""Fixtures for the emulated RP2040 (host/emulated_rp2040): skipped, with one reason, without a UF2."""
from __future__ import annotations

import time

import pytest

from host.emulated_rp2040.image import MISSING, image_path


@pytest.fixture(scope="session")
def rp2_image(request):
    path = image_path(request.config.getoption("--rp2-image", default=None))
    if path is None:
        pytest.skip(MISSING)
    return path


@pytest.fixture
def erp_factory(rp2_image, tmp_path, pagerless_home):
    """Start emulated boards (registered under a private PAGERLESS_HOME); all stopped at teardown."""
    from host.emulated_rp2040.board import EmulatedBoard

    boards = []

    def make(directory=None, **kw):
        b = EmulatedBoard(directory or tmp_path / f"erp-{len(boards)}", image=rp2_image, **kw)
        boards.append(b)
        return b.start()

    yield make
    for b in boards:
        b.stop()


@pytest.fixture
def exec_when_back():
    """Run code in the raw REPL with bounded waits, retried while the board resets and comes back
    (mpremote's own transport can wait forever for a banner lost in a reset)."""
    from host.device.raw_repl import RawRepl
    from host.errors import DeviceError

    def run(port: str, code: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while True:
            try:
                with RawRepl(port, timeout=5.0) as repl:
                    return repl.exec(code, timeout=min(timeout, 10.0)).decode(errors="replace")
            except DeviceError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.3)

    return run
