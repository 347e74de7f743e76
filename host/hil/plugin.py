"""pytest plugin: one hardware-in-the-loop suite for real boards and virtual boards.

Registered through the `pytest11` entry point, so it loads in every pytest run where the project
is installed. See docs/hil.md.

Options (each fixture resolves test parameter -> command line -> default, checked with `is None`):

    --port auto|virtual|PATH   board to test; "virtual" (default) starts a private virtual board per
                               xdist worker; "auto" finds the one USB board that looks like --board;
                               PATH1,PATH2,... gives xdist worker gwN the N-th board (-n = count)
    --board NAME               board definition from boards/ (default: virtual); emulated_rp2040
                               with the default port starts a private emulated Pico per worker
                               (the UF2 of --rp2-image or $PAGERLESS_RP2_UF2), timed by its clock
    --firmware IMAGE           flash this MicroPython image first (host/flash.py; real boards)
    --no-deploy                do not deploy firmware/ (the board already runs the app)
    --soak / --soak-minutes N  run the soak tests (marker `soak`), N minutes (default 5)
    --hil-seed N               seed of the virtual board and of the soak's random faults (default 1)
    --hil-reports DIR          captured serial logs, one per test (default: reports/hil)

Fixtures: `dut` (Dut, the device under test: deployed once per session, reset per test, its port
captured to a log and a recording), `traffic` (Traffic: expect/collect/send/status/physical/stats),
`virtual_board` (the board's fault API: the VirtualBoard, or the EmulatedBoard of
--board emulated_rp2040; skipped on real hardware), the option fixtures `hil_port`, `hil_board`,
`hil_firmware`, `hil_seed`, `hil_config` (device config overrides for one test) and `soak_minutes`.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from host.hil.report import PROPERTY, LinkSummary
from host.hil.dut import Dut
from host.hil.target import EMULATED, VIRTUAL, Target, TargetError, clear_faults

DEFAULTS = {"port": VIRTUAL, "board": VIRTUAL, "seed": 1, "soak_minutes": 5.0, "reports": "reports/hil"}
LOG_KEY = pytest.StashKey[Path]()
HIL_FIXTURES = {"dut", "traffic", "virtual_board"}


# -- options -------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hil", "pagerless hardware-in-the-loop (docs/hil.md)")
    g.addoption("--port", default=None,
                help="board to test: auto | virtual | a device path (default: virtual, a private "
                     "virtual board per worker); several boards in parallel: PATH1,PATH2 with -n 2, "
                     "worker gwN takes the N-th")
    g.addoption("--board", default=None, help="board definition from boards/ (default: virtual)")
    g.addoption("--firmware", default=None, metavar="IMAGE",
                help="flash this MicroPython image first with host/flash.py (real boards)")
    g.addoption("--no-deploy", action="store_true", default=None,
                help="do not deploy firmware/ first (the board already runs the app)")
    g.addoption("--soak", action="store_true", default=None, help="run the soak tests (marker soak)")
    g.addoption("--soak-minutes", type=float, default=None, metavar="N",
                help="soak length in minutes (implies --soak; default 5)")
    g.addoption("--hil-seed", type=int, default=None, metavar="N",
                help="seed of the virtual board and of the soak's random faults (default 1)")
    g.addoption("--app-config", default=None, metavar="FILE",
                help="app config to deploy as /config.json (default: firmware/config.json); this "
                     "repository's suite sets tests/hil/app_config.json in pyproject's addopts")
    g.addoption("--hil-reports", default=None, metavar="DIR",
                help="folder for captured serial logs (default: reports/hil under the rootdir)")


def resolve(request: pytest.FixtureRequest, name: str, option: str, default=None):
    """Test parameter (indirect parametrize), then the command line, then the default.
    Each step is taken only when the previous one `is None`, so 0, False and "" are values."""
    value = getattr(request, "param", None)
    if value is None:
        value = request.config.getoption(option)
    if value is None:
        value = default
    return value


def _cli(config: pytest.Config, option: str, default=None):
    value = config.getoption(option)
    return default if value is None else value


@pytest.fixture
def hil_port(request) -> str:
    return worker_port(str(resolve(request, "port", "port", DEFAULTS["port"])), worker_id())


def worker_port(spec: str, worker: str) -> str:
    """This worker's board from a comma-separated --port list: gwN takes the N-th entry, a run
    without xdist the first. One board per worker: two workers on one port would fight over it."""
    ports_ = [p.strip() for p in spec.split(",")]
    if len(ports_) == 1:
        return ports_[0]
    if any(not p for p in ports_) or len(set(ports_)) != len(ports_):
        pytest.fail(f"--port {spec}: a list needs distinct, non-empty ports", pytrace=False)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    if index >= len(ports_):
        pytest.fail(f"--port lists {len(ports_)} boards but xdist worker {worker} needs one more "
                    f"(run with -n {len(ports_)} at most)", pytrace=False)
    return ports_[index]


@pytest.fixture
def hil_board(request) -> str:
    return str(resolve(request, "board", "board", DEFAULTS["board"]))


@pytest.fixture
def hil_firmware(request) -> str | None:
    return resolve(request, "firmware", "firmware", None)


@pytest.fixture
def hil_seed(request) -> int:
    return int(resolve(request, "seed", "hil_seed", DEFAULTS["seed"]))


@pytest.fixture
def hil_config(request) -> dict:
    """Device config overrides for one test (merged over firmware/config.json, deployed for the
    test and restored after it): @pytest.mark.parametrize("hil_config", [{...}], indirect=True)."""
    value = getattr(request, "param", None)
    return {} if value is None else dict(value)


@pytest.fixture
def soak_minutes(request) -> float:
    return float(resolve(request, "soak_minutes", "soak_minutes", DEFAULTS["soak_minutes"]))


# -- targets: one per (port, board, firmware) per worker, for the whole run------------------------------
def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class TargetPool:
    """The boards of one pytest run on one worker: each found or started, flashed and deployed on
    first use, remembered (or its setup error remembered) for every later test, torn down at the end."""

    def __init__(self, config: pytest.Config, tmp_factory: pytest.TempPathFactory) -> None:
        self.config = config
        self.tmp_factory = tmp_factory
        self.targets: dict[tuple, Target | TargetError] = {}
        reports = _cli(config, "hil_reports", None)
        self.reports = Path(reports) if reports is not None else Path(config.rootpath) / DEFAULTS["reports"]

    def target(self, port: str, board: str, firmware: str | None, seed: int) -> Target:
        deploy = not _cli(self.config, "no_deploy", False)
        key = (port, board, firmware, deploy, seed if port == VIRTUAL else None)
        t = self.targets.get(key)
        if t is None:
            n = len(self.targets)
            name = f"hil-{worker_id()}" + (f"-{n}" if n else "")
            workdir = self.tmp_factory.mktemp(name) if port == VIRTUAL else None
            app_config = _cli(self.config, "app_config", None)
            tgt = Target(port, board, firmware=firmware, deploy=deploy, seed=seed, workdir=workdir, name=name,
                         app_config=Path(app_config) if app_config is not None else None,
                         image=_rp2_image(self.config))
            try:
                t = tgt.setup()
            except Exception as exc:  # noqa: BLE001 - remembered: every test of this target reports it
                tgt.teardown()
                t = TargetError(f"{type(exc).__name__}: {exc}" if not isinstance(exc, TargetError) else str(exc))
            self.targets[key] = t
        if isinstance(t, TargetError):
            pytest.fail(f"board under test unavailable ({port}, {board}): {t}", pytrace=False)
        return t

    def close(self) -> None:
        for t in self.targets.values():
            if isinstance(t, Target):
                t.teardown()


def _rp2_image(config: pytest.Config) -> str | None:
    """--rp2-image (this repository's tests/conftest.py declares it); else $PAGERLESS_RP2_UF2."""
    try:
        return config.getoption("rp2_image")
    except ValueError:
        return None


@pytest.fixture(scope="session")
def hil_target_pool(request, tmp_path_factory):
    pool = TargetPool(request.config, tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture
def hil_target(hil_target_pool, hil_port, hil_board, hil_firmware, hil_seed) -> Target:
    """The run's board for this test's options: found or started, flashed and deployed once."""
    return hil_target_pool.target(hil_port, hil_board, hil_firmware, hil_seed)


def log_name(nodeid: str) -> str:
    name = nodeid.split("/")[-1].replace("::", "__")
    return re.sub(r"[^\w.\-\[\]=]+", "_", name)[:180] + ".log"


def merge_config(base: dict, over: dict) -> dict:
    """`over` merged into `base`, recursively. A list of named objects (the config's "streams")
    can be patched by name: {"streams": {"imu": {"period_us": 1000}}}; a list replaces it."""
    out = dict(base)
    for k, v in over.items():
        cur = out.get(k)
        if isinstance(v, dict) and isinstance(cur, dict):
            out[k] = merge_config(cur, v)
        elif isinstance(v, dict) and isinstance(cur, list) and all(isinstance(x, dict) and "name" in x for x in cur):
            unknown = set(v) - {x["name"] for x in cur}
            if unknown:
                raise ValueError(f"config override names unknown {k}: {sorted(unknown)}")
            out[k] = [merge_config(x, v[x["name"]]) if x["name"] in v else x for x in cur]
        else:
            out[k] = v
    return out


@pytest.fixture
def dut(request, hil_target_pool, hil_target, hil_config):
    """The device under test, reset for this test, its serial port captured to <reports>/<test>.log
    (named in the failure message) and recorded to <reports>/<test>.rec (`monitor replay` opens it).
    See host.hil.dut.Dut."""
    log_path = hil_target_pool.reports / log_name(request.node.nodeid)
    request.node.stash[LOG_KEY] = log_path
    b = Dut(hil_target, log_path)
    b.note(f"test {request.node.nodeid} on {hil_target.board_name} at {hil_target.port} "
           f"(worker {worker_id()})")
    b.open()
    try:
        if hil_target.faults is not None:
            clear_faults(hil_target.faults)
        if hil_config:
            cfg = merge_config(b.base_config(), hil_config)
            b.override_file("config.json", json.dumps(cfg).encode())
        b.reset()
        yield b
    finally:
        try:
            counters = dict(b.traffic.counters(), board=f"{hil_target.name} {hil_target.port}")
            request.node.user_properties.append((PROPERTY, json.dumps(counters)))
        finally:
            b.close()


@pytest.fixture
def traffic(dut):
    """The device's frames since its reset, and commands to it (host.hil.traffic.Traffic)."""
    return dut.traffic


@pytest.fixture
def virtual_board(hil_target):
    """The simulated board behind the test (its fault API, `boots`, `chip(kind).truth()`): the
    VirtualBoard, or the EmulatedBoard of --board emulated_rp2040; skipped on real hardware.
    Every fault is undone at teardown."""
    vb = hil_target.faults
    if vb is None:
        pytest.skip(f"needs a simulated board's fault injection; this run targets {hil_target.port}")
    yield vb
    clear_faults(vb)


# -- collection: soak opt-in, fault injection only on simulated boards ---------------------------
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    soak = _cli(config, "soak", False) or _cli(config, "soak_minutes", None) is not None
    port = _cli(config, "port", DEFAULTS["port"])
    emulated = _cli(config, "board", DEFAULTS["board"]) == EMULATED
    skip_soak = pytest.mark.skip(reason="soak test: opt in with --soak (or --soak-minutes N)")
    slow = pytest.mark.timeout(3600)  # the emulator runs at 0.01-0.05x; the first test also deploys
    skip_fault = pytest.mark.skip(reason="fault injection needs the virtual board or --board emulated_rp2040; "
                                         f"this run targets --port {port}")
    for item in items:
        if emulated and HIL_FIXTURES & set(item.fixturenames):
            item.add_marker(slow)
        if not soak and item.get_closest_marker("soak"):
            item.add_marker(skip_soak)
        if port != VIRTUAL and item.get_closest_marker("fault_injection") and HIL_FIXTURES & set(item.fixturenames):
            item.add_marker(skip_fault)


# -- reports -------------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    log = item.stash.get(LOG_KEY, None)
    if log is None or not report.failed:
        return
    note = f"serial log: {log}"
    report.sections.append(("HIL captured serial log", f"{note}\n" + _tail(log)))
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and note not in crash.message:
        crash.message = f"{crash.message} [{note}]"
    elif isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:  # skip/xfail-style tuple
        path, line, msg = report.longrepr
        report.longrepr = (path, line, f"{msg} [{note}]")
    elif isinstance(report.longrepr, str):
        report.longrepr = f"{report.longrepr}\n[{note}]"


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(log not written)"
    return "\n".join(lines[-n:])


class _LinkReporter:
    """Collects each test's `hil_link` property (from xdist workers too) for the summary."""

    def __init__(self) -> None:
        self.summary = LinkSummary()
        self.figures: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and report.user_properties:
            self.summary.add(report.nodeid, report.user_properties)
            for name, value in report.user_properties:
                if name == "hil_figures":
                    self.figures[report.nodeid] = value

    def pytest_terminal_summary(self, terminalreporter) -> None:
        lines = self.summary.lines()
        if lines:
            terminalreporter.write_sep("-", "HIL link statistics (frames ok, CRC errors, seq gaps vs device drops)")
            for line in lines:
                terminalreporter.write_line(line)
        for nodeid, value in sorted(self.figures.items()):
            terminalreporter.write_line(f"{nodeid.split('::', 1)[-1]}: {value}")


MARKERS = (
    "fault_injection: needs a simulated board's fault injection (skipped on real hardware)",
    "soak: long randomised-fault run; opt in with --soak",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:  # for users' own suites; this repo's pyproject declares them too
        config.addinivalue_line("markers", line)
    if not config.pluginmanager.has_plugin("hil-link-reporter"):
        config.pluginmanager.register(_LinkReporter(), "hil-link-reporter")
