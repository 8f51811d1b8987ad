"""Grid phones over MQTT: a paho-mqtt client on the event loop, and the embedded broker."""

from adapters.mqtt.adapter import MqttAdapter
from adapters.mqtt.broker import EmbeddedBroker, start_embedded_broker, stop_embedded_broker

__all__ = ["EmbeddedBroker", "MqttAdapter", "start_embedded_broker", "stop_embedded_broker"]
