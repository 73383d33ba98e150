"""MQTT publisher (availability, events outbox, telemetry, commands) and Home Assistant discovery."""
