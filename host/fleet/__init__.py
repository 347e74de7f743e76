"""Beyond one host: publish boards' decoded streams to MQTT, collect the fleet into Parquet (docs/fleet.md)."""
