"""Broker URLs: ``mqtt://[user:pass@]host[:port][?protocol=3.1.1]`` and ``mqtts://``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

MQTT_PORT = 1883
MQTTS_PORT = 8883
SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
PROTOCOLS = ("5", "3.1.1")

ProtocolVersion = Literal["5", "3.1.1"]


class BadBrokerUrl(ValueError):
    """The broker URL cannot be used."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to talk to it, as far as the URL says."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    protocol: ProtocolVersion | None = None
    """Set by ``?protocol=``: overrides the configured version (the embedded broker
    speaks 3.1.1 only, and says so in the URL it hands out)."""

    def url(self) -> str:
        """The URL without credentials (safe to log)."""
        scheme = "mqtts" if self.tls else "mqtt"
        query = f"?protocol={self.protocol}" if self.protocol else ""
        return f"{scheme}://{self.host}:{self.port}{query}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse a broker URL; raises BadBrokerUrl."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise BadBrokerUrl(f"unsupported MQTT URL scheme {parts.scheme!r} (mqtt:// or mqtts://)")
    tls = SCHEMES[parts.scheme]
    if not parts.hostname:
        raise BadBrokerUrl("MQTT URL has no host")
    try:
        port = parts.port or (MQTTS_PORT if tls else MQTT_PORT)
    except ValueError as err:
        raise BadBrokerUrl(f"bad port in MQTT URL: {err}") from None
    protocol: ProtocolVersion | None = None
    for value in parse_qs(parts.query).get("protocol", []):
        if value == "5":
            protocol = "5"
        elif value == "3.1.1":
            protocol = "3.1.1"
        else:
            raise BadBrokerUrl(f"protocol must be one of {PROTOCOLS}, not {value!r}")
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        protocol=protocol,
    )
