"""On-board sensor drivers: one module per chip, bus injected (see docs/architecture.md)."""
