"""Proof by invariant: the real firmware on a virtual board under a seeded random schedule of
faults (sensor unplug/replug, NACK storms, stuck bus, bit flips, dropped bytes, backpressure, port
loss, resets, hang), recorded by the monitor's live pipeline; the recording's sample ledger must
balance exactly with nothing unexplained and agree with the board's own ground truth (the pty
bridge's byte counters, the boots the runner made, the device's final STATUS).

A few seeds here; many in the soak (tests/hil/test_soak.py, --soak).  A failing seed is printed
and replays alone with `--seed N`."""
from __future__ import annotations

import pytest

from host.testkit import faultrun

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]

SEEDS = [1, 2, 3]
SPAN_S = 10.0


def seeds(config) -> list[int]:
    one = config.getoption("--seed", default=None)
    return [one] if one is not None else SEEDS


def pytest_generate_tests(metafunc):
    if "fault_seed" in metafunc.fixturenames:
        metafunc.parametrize("fault_seed", seeds(metafunc.config))


@pytest.mark.timeout(120)
def test_ledger_balances_against_ground_truth_under_random_faults(vboard, tmp_path, fault_seed):
    out = faultrun.run(vboard, fault_seed, SPAN_S, tmp_path, log=lambda text: None)
    print(faultrun.summary(out))
    bad = faultrun.check(out)
    assert not bad, f"seed {fault_seed} (replay: pytest {__file__} --seed {fault_seed}):\n" + "\n".join(bad) \
        + "\n" + faultrun.summary(out)
