"""The firmware's version: the one place it is written (HELLO quotes it)."""

FIRMWARE_VERSION = "0.1.0"
