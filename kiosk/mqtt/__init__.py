"""Enrollments synced from administrators and events reported back, over MQTT."""
