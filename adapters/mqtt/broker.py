"""The embedded MQTT broker (amqtt) for a hub started with no ``HUB_MQTT_URL``.

It exists so ``make run`` works on a bare machine; production uses Mosquitto or EMQX. When
the configured port is taken (a Mosquitto on 1883 on the development machines) the broker
starts on a free port instead and says which: it never fails the hub over the port.

amqtt speaks MQTT 3.1.1 only, so the URL handed back carries ``?protocol=3.1.1`` and the
adapter speaks 3.1.1 to it whatever ``mqtt.protocol`` says. amqtt marks anonymous clients'
sessions as not persistent: messages published while the hub is away are not queued by the
embedded broker (it stops with the hub anyway).
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import structlog
from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.errors import BrokerError  # type: ignore[import-untyped]

from hub.config import MqttSettings

log = structlog.get_logger(__name__)

EMBEDDED_PROTOCOL = "3.1.1"
QUIET_LOGGERS = ("amqtt", "transitions")
"""amqtt logs every connection and state change at INFO; the hub logs what matters."""
START_ATTEMPTS = 3
"""Free ports tried when another process grabs the probed port before the broker binds."""


class EmbeddedBroker:
    """A running amqtt broker; ``stop`` is safe to call twice."""

    def __init__(self, broker: Any, host: str, port: int) -> None:
        self._broker: Any = broker
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """The URL the adapter connects to."""
        return f"mqtt://{self.host}:{self.port}?protocol={EMBEDDED_PROTOCOL}"

    async def stop(self) -> None:
        """Shut the broker down (disconnects its clients)."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
            log.info("embedded mqtt broker stopped", port=self.port)


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port (probed with a bind, as the broker binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str) -> int:
    """A port on ``host`` nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _quiet_amqtt() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # No $SYS publisher and no packet/event loggers: only anonymous authentication.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _address_in_use(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            return True
        cause = cause.__cause__
    return False


async def start_embedded_broker(settings: MqttSettings) -> tuple[EmbeddedBroker, str]:
    """Start the embedded broker on ``embedded_host:embedded_port`` or, if that port is
    taken (or 0), on a free one. Returns the broker and the URL to connect to."""
    _quiet_amqtt()
    host = settings.embedded_host
    port = settings.embedded_port
    if port == 0:
        port = free_port(host)
    elif not port_is_free(host, port):
        chosen = free_port(host)
        log.warning(
            "mqtt port taken; embedded broker uses a free port instead",
            wanted=f"{host}:{port}",
            port=chosen,
        )
        port = chosen
    for attempt in range(1, START_ATTEMPTS + 1):
        broker = Broker(_config(host, port))
        try:
            await broker.start()
        except BrokerError as err:
            if not _address_in_use(err) or attempt == START_ATTEMPTS:
                raise
            port = free_port(host)
            continue
        embedded = EmbeddedBroker(broker, host, port)
        log.info("embedded mqtt broker started", url=embedded.url)
        return embedded, embedded.url
    raise AssertionError("unreachable")  # the loop returns or raises


async def stop_embedded_broker(broker: EmbeddedBroker) -> None:
    """Stop a broker from start_embedded_broker (safe twice)."""
    await broker.stop()
