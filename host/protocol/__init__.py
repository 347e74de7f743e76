"""The wire protocol on the host, one module per job.

The frame format itself is defined once, in ``firmware/wire.py``, for the board and the host
(docs/protocol.md describes it); these modules build on it and never lay a frame out again.

- ``frames``: what a frame is once decoded: ``Frame`` and ``DeviceText``, the typed bodies
  (``DataBlock``, ``Status``, ``StreamStatus``, ``Event``, ``Ack``, ``Command``, ``StreamInfo``),
  ``FrameError``, and COBS (the ``cobs`` package, adapted to the project's contract).
- ``decoder``: ``Decoder``, bytes in; frames, device text and counted losses out.  No I/O.
  Beside it: ``checks`` (``check_frame``, the rules a CRC-good frame must also meet) and
  ``bootstate`` (``BootState``, what the decoder knows of one boot: streams, seqs, clock).
- ``fields``: ``unpack_fields``, a DATA block's samples as a list of Python values per field
  (for callers that want plain values rather than the session's numpy arrays).
- ``linkstats``: ``LinkStats``, the decoder's raw counters (the verdict over them is the sample
  ledger's, ``host.monitoring.ledger``).
- ``encoder``: ``encode_*``, frames built on the host: commands for a board, and device frames
  for tests, benches and demos, byte-identical to what a board sends.
- ``commands``: the board's command set as calls (``Commands.set_period(...)``) over a send callable.

Import each name from the module that defines it; this package re-exports nothing.
"""
