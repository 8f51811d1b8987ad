"""Grid phones' location pipeline, end to end: MQTT in, database, console pushes, events."""
