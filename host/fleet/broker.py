"""A broker on 127.0.0.1 for the tests, the demo and the bench: amqtt (pure Python, PyPI) or
Debian's mosquitto, each in a child process so it can be killed and restarted like a real one.

    python -m host.fleet.broker --port 1883 [--passwd USER:PASSWORD]   (amqtt, until Ctrl-C)
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ("amqtt", "mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available(kind: str) -> str | None:
    """None when `kind` can run here, else why not."""
    if kind == "mosquitto":
        return None if shutil.which("mosquitto") else "mosquitto is not on PATH (apt-get install mosquitto)"
    try:
        import amqtt  # noqa: F401
    except ImportError:
        return "amqtt is not installed (pip install amqtt)"
    return None


class LocalBroker:
    """A broker process on 127.0.0.1:`port` (a free port by default).

    Args:
        kind: "amqtt" or "mosquitto".
        users: {user: password}; when given, anonymous clients are refused.
    """

    def __init__(self, kind: str = "amqtt", port: int | None = None, users: dict[str, str] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"broker kind {kind!r}: one of {', '.join(KINDS)}")
        self.kind = kind
        self.port = port if port is not None else free_port()
        self.users = users or {}
        self.dir = Path(tempfile.mkdtemp(prefix=f"pagerless-{kind}-"))
        self.proc: subprocess.Popen | None = None

    def url(self, prefix: str = "fleet") -> str:
        return f"mqtt://127.0.0.1:{self.port}/{prefix}"

    def _command(self) -> list[str]:
        if self.kind == "amqtt":
            cmd = [sys.executable, "-m", "host.fleet.broker", "--port", str(self.port)]
            for u, p in self.users.items():
                cmd += ["--passwd", f"{u}:{p}"]
            return cmd
        conf = self.dir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "max_queued_messages 100000",
                 f"allow_anonymous {'false' if self.users else 'true'}"]
        if self.users:
            pw = self.dir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            pw.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True, timeout=10)
            lines.append(f"password_file {pw}")
        conf.write_text("\n".join(lines) + "\n")
        return ["mosquitto", "-c", str(conf)]

    def start(self, timeout: float = 15.0) -> LocalBroker:
        self.proc = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "broker.log", "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited ({self.proc.returncode}): {self.log()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on 127.0.0.1:{self.port} within {timeout:g} s")

    def log(self) -> str:
        try:
            return (self.dir / "broker.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill it (as a crash would); its in-memory sessions and queues die with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down_s: float = 0.5) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


async def _serve(port: int, users: dict[str, str]) -> None:
    from amqtt.broker import Broker

    plugins: dict = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": not users}}
    if users:
        from pwdlib.hashers.argon2 import Argon2Hasher  # what amqtt's FileAuthPlugin checks against

        pw = Path(tempfile.mkdtemp(prefix="pagerless-amqtt-")) / "passwd"
        pw.write_text("".join(f"{u}:{Argon2Hasher().hash(p)}\n" for u, p in users.items()))
        plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {"password_file": str(pw)}
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}}, "plugins": plugins}
    broker = Broker(config)
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m host.fleet.broker", description="an amqtt broker on 127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--passwd", action="append", default=[], metavar="USER:PASSWORD",
                   help="accept only these users (default: anyone)")
    a = p.parse_args(argv)
    users = dict(x.split(":", 1) for x in a.passwd)
    os.environ.pop("PYTHONASYNCIODEBUG", None)  # any non-empty value (even "0") turns debug mode on
    try:
        asyncio.run(_serve(a.port, users), debug=False)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
