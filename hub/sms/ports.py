"""The contract between the SMS service and its providers (adapters/sms).

A provider submits one message and returns the provider's id of every part it submitted;
it reports receipts and inbound messages back through :class:`SmsSink`. HTTP gateways,
SMPP and later CMPP all fit: CMPP's ``Submit`` / ``Deliver`` (with its 8-octet msg_id
written in decimal by some gateways) map onto the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """A message ready to submit: ``ref`` is its concatenation reference (stable across
    attempts, so a handset can recognise a resent part)."""

    id: str
    to: str
    sender: str
    text: str
    ref: int
    max_segments: int


class SubmitError(Exception):
    """A submission failed; ``temporary`` says whether trying again later may work."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary


class SmsProvider(Protocol):
    """One way of sending SMS."""

    name: str

    @property
    def ready(self) -> bool:
        """Able to submit right now."""

    async def submit(self, message: OutboundSms) -> list[str]:
        """Submit ``message``; return the provider id of each part, in order. Raises
        :class:`SubmitError` and nothing else."""


class ReceiptOutcome(StrEnum):
    """What became of a receipt: a metrics label."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    INTERIM = "interim"
    UNKNOWN_ID = "unknown_id"
    AMBIGUOUS = "ambiguous"


class SmsSink(Protocol):
    """What the SMS service offers a provider for traffic from the gateway."""

    async def receipt(
        self, provider_id: str, state: str, *, error: str | None = None
    ) -> ReceiptOutcome:
        """Apply a delivery receipt (state: sent, delivered, failed, expired, unknown).
        Returns once committed; raises ``NotReadyError`` if the database is unreachable."""
        ...

    async def inbound(
        self, sender: str, recipient: str, text: str, *, provider: str, provider_id: str | None
    ) -> str:
        """Store an inbound message and publish sms.received; returns its id. Returns
        once committed (a provider acknowledges only then)."""
        ...
