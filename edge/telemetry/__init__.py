"""Performance telemetry: metrics, system probes, history, alert rules."""
