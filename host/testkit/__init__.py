"""Helpers shared by tests/ and bench/: synthetic streams, firmware runs on a virtual board, probes."""
