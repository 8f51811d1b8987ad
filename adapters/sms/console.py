"""The embedded default provider: logs each message and reports it delivered."""

from __future__ import annotations

import structlog

from hub.sms.ports import OutboundSms, SmsSink
from hub.tasks import TaskRegistry

log = structlog.get_logger(__name__)

NAME = "console"


class ConsoleProvider:
    """Writes messages to the log; every message is delivered at once."""

    name = NAME

    def __init__(self, sink: SmsSink, tasks: TaskRegistry) -> None:
        self._sink = sink
        self._tasks = tasks

    @property
    def ready(self) -> bool:
        """Always."""
        return True

    async def submit(self, message: OutboundSms) -> list[str]:
        """Log the message; a receipt follows once the submission is recorded."""
        log.info("SMS (console)", to=message.to, sender=message.sender, text=message.text)
        provider_id = f"console-{message.id}"
        self._tasks.spawn(self._sink.receipt(provider_id, "delivered"), name="console receipt")
        return [provider_id]
