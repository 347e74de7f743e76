"""Talking to a board: its typed definition, finding its port, the serial link, the raw REPL."""
