"""MQTT adapter against real brokers: the shared Mosquitto, private ones, the embedded one."""
