"""The evidence a HIL test leaves: its capture is a monitor recording (`<test>.rec` beside the log)
that the monitor's loader opens and that decodes to the very frames the test saw."""
from __future__ import annotations

import pytest

from firmware import wire
from host import monitor
from host.device.recording import Kind
from host.monitoring.export import load
from host.protocol.decoder import Decoder
from host.protocol.frames import Frame

pytestmark = [pytest.mark.virtual_board]


def _key(f: Frame) -> tuple:
    return f.type, f.boot_id, f.seq, f.stream, bytes(f.body)


def test_the_capture_is_a_recording_the_monitor_replays_frame_for_frame(dut, traffic, capsys):
    traffic.collect(1.0)
    token = traffic.commands.token + 1
    assert traffic.ping().ok
    dut.capture.pause()  # the reader is parked: every byte read so far is decoded and recorded
    try:
        dut.capture.sync()
        seen, _ = dut.capture.frames_since(0)
        loaded = load(dut.capture.recording_path, keep=True)
    finally:
        dut.capture.resume()

    assert dut.capture.recording_path == dut.log_path.with_suffix(".rec")
    assert loaded.report.clean and loaded.meta[0]["tool"] == "hil"
    dec = Decoder()
    replayed = [f for r in loaded.records if r.kind == Kind.RX for f in dec.feed(r.payload) if isinstance(f, Frame)]
    assert replayed and [_key(f) for f in replayed] == [_key(f) for f in seen]
    sent = [f for r in loaded.records if r.kind == Kind.TX for f in Decoder().feed(r.payload)]
    assert [(f.command().opcode, f.seq) for f in sent][-1] == (wire.OP_PING, token)

    # the monitor's session (what replay, stats and export show) has this boot's DATA, in order
    boot = dut.boot_id
    data = [(f.stream, f.seq) for f in seen if f.type == wire.T_DATA and f.boot_id == boot]
    assert data and [(b.stream, b.seq) for b in loaded.batches if b.boot_id == boot] == data

    assert monitor.main(["stats", str(dut.capture.recording_path)]) == 0
    assert "frames" in capsys.readouterr().out
