"""What the host knows about each sensor kind: channels, units, conversion, simulated chip."""
