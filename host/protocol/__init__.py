"""The wire protocol on the host: frame value types, the decoder, the encoder, link statistics and the command API.

The frame format itself is defined once, in firmware/wire.py, for both sides."""
