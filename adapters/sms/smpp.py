"""The SMPP provider: keeps one transceiver session bound (reconnecting with capped,
jittered back-off), submits each segment as a submit_sm, turns deliver_sm into receipts
or inbound messages.

Statuses: throttling, a full queue, a system error or a lost session are temporary (the
service retries later); anything else the SMSC refuses is permanent. A session lost while
a submit_sm was outstanding is ambiguous (the SMSC may have taken it) and counted as
temporary: see the service's note on the at-least-once window. A long text whose later
part is refused temporarily is resent whole, with the same concatenation reference, so
the handset can recognise the parts it already has.

Inbound long texts are joined in memory (``Reassembler``): parts are acknowledged as they
arrive, so a hub that stops between the parts of one text loses that incomplete text.
"""

from __future__ import annotations

import asyncio
import random
import time

import structlog

from adapters.sms.smpp_client import BindRefused, SessionClosed, SessionConfig, SmppSession
from hub.config import SmsSettings
from hub.errors import NotReadyError
from hub.sms.metrics import SmsCounters
from hub.sms.ports import OutboundSms, SmsSink, SubmitError
from hub.tasks import cancel_and_wait
from protocols.sms import (
    TAG_MESSAGE_STATE,
    TAG_RECEIPTED_MESSAGE_ID,
    CommandStatus,
    DeliverSm,
    Reassembler,
    SmsRejected,
    SubmitSm,
    decode_message_state,
    decode_part,
    decode_receipted_message_id,
    encode_message,
    parse_receipt,
)
from protocols.sms.smpp_pdus import REGISTERED_DELIVERY_RECEIPT

log = structlog.get_logger(__name__)

NAME = "smpp"
RECONNECT_MIN_DELAY = 0.1
TEMPORARY_STATUSES = frozenset(
    {
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
    }
)
TON_INTERNATIONAL = 1
TON_UNKNOWN = 0
NPI_ISDN = 1


class SmppProvider:
    """Sends through an SMSC over SMPP 3.4 and feeds receipts and MO back to the sink."""

    name = NAME

    def __init__(self, settings: SmsSettings, sink: SmsSink, counters: SmsCounters) -> None:
        self._settings = settings
        self._sink = sink
        self._counters = counters
        self._session: SmppSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._reassembler = Reassembler()
        self._stopping = False
        self.reconnects = 0

    @property
    def ready(self) -> bool:
        """A session is bound."""
        return self._session is not None and self._session.open_

    def _config(self) -> SessionConfig:
        s = self._settings
        return SessionConfig(
            host=s.smpp_host,
            port=s.smpp_port,
            system_id=s.system_id,
            password=s.smpp_password.get_secret_value(),
            system_type=s.system_type,
            window=s.window,
            enquire_link_interval=s.enquire_link_interval,
            response_timeout=s.response_timeout,
        )

    async def _connect(self) -> SmppSession:
        session = SmppSession(self._config(), self._on_deliver, self._counters.rejected)
        await session.open()
        return session

    async def start(self, on_up: asyncio.Event) -> None:
        """Bind once (raises NotReadyError), then keep the session up in the background;
        ``on_up`` is set each time a session is bound again."""
        self._stopping = False
        try:
            self._session = await self._connect()
        except (OSError, TimeoutError, BindRefused, SessionClosed) as err:
            raise NotReadyError(f"SMSC {self._settings.smpp_host}:{self._settings.smpp_port}: "
                                f"{err or type(err).__name__}") from err  # fmt: skip
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(on_up), name="smpp supervisor"
        )

    async def _supervise(self, on_up: asyncio.Event) -> None:
        while not self._stopping:
            session = self._session
            if session is not None:
                await session.closed.wait()
                await session.close(session.close_reason)
                log.warning("SMSC session lost; reconnecting", reason=session.close_reason)
            self._session = None
            attempt = 0
            while not self._stopping:
                attempt += 1
                delay = min(self._settings.reconnect_max_delay,
                            RECONNECT_MIN_DELAY * 2 ** min(attempt, 16))  # fmt: skip
                await asyncio.sleep(random.uniform(delay / 2, delay))
                try:
                    self._session = await self._connect()
                except (OSError, TimeoutError, BindRefused, SessionClosed) as err:
                    log.debug("SMSC still unreachable", error=str(err) or type(err).__name__)
                    continue
                self.reconnects += 1
                log.info("SMSC session bound again", attempts=attempt)
                on_up.set()
                break

    async def stop(self) -> None:
        """Unbind and stop reconnecting; safe to call twice."""
        self._stopping = True
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
            self._supervisor = None
        if self._session is not None:
            await self._session.close("stopping")
            self._session = None

    async def submit(self, message: OutboundSms) -> list[str]:
        """Submit every segment; the SMSC's ids in order."""
        try:
            segments = encode_message(message.text, max_segments=message.max_segments,
                                      ref=message.ref)  # fmt: skip
        except SmsRejected as err:
            raise SubmitError(str(err), temporary=False) from err
        international = message.to.startswith("+")
        ids: list[str] = []
        for segment in segments:
            session = self._session
            if session is None or not session.open_:
                raise SubmitError("no SMSC session", temporary=True)
            pdu = SubmitSm(
                sequence=0,
                source_addr=message.sender,
                dest_addr_ton=TON_INTERNATIONAL if international else TON_UNKNOWN,
                dest_addr_npi=NPI_ISDN,
                destination_addr=message.to.lstrip("+"),
                esm_class=segment.esm_class_bits,
                registered_delivery=REGISTERED_DELIVERY_RECEIPT,
                data_coding=int(segment.data_coding),
                short_message=segment.short_message,
            )
            try:
                resp = await session.submit(pdu)
            except (SessionClosed, TimeoutError) as err:
                raise SubmitError(f"SMSC: {err or 'no response'}", temporary=True) from err
            if resp.status != CommandStatus.ESME_ROK:
                temporary = resp.status in TEMPORARY_STATUSES
                raise SubmitError(f"SMSC refused: {_status_name(resp.status)}", temporary=temporary)
            if not resp.message_id:
                raise SubmitError("SMSC accepted without a message id", temporary=False)
            ids.append(resp.message_id)
        return ids

    async def _on_deliver(self, pdu: DeliverSm) -> int:
        try:
            if pdu.is_receipt:
                return await self._receipt(pdu)
            return await self._mobile_originated(pdu)
        except NotReadyError:
            return CommandStatus.ESME_RX_T_APPN

    async def _receipt(self, pdu: DeliverSm) -> int:
        try:
            tlv_id = pdu.tlv(TAG_RECEIPTED_MESSAGE_ID)
            tlv_state = pdu.tlv(TAG_MESSAGE_STATE)
            receipt = parse_receipt(
                pdu.short_message,
                receipted_message_id=decode_receipted_message_id(tlv_id) if tlv_id else None,
                message_state=decode_message_state(tlv_state) if tlv_state else None,
            )
        except (SmsRejected, ValueError) as err:
            self._counters.rejected("bad_receipt")
            log.warning("unreadable receipt from the SMSC", error=str(err))
            return CommandStatus.ESME_RX_P_APPN
        await self._sink.receipt(receipt.message_id, receipt.state.value, error=receipt.error)
        return CommandStatus.ESME_ROK

    async def _mobile_originated(self, pdu: DeliverSm) -> int:
        try:
            part = decode_part(pdu.short_message, data_coding=pdu.data_coding,
                               esm_class=pdu.esm_class)  # fmt: skip
        except SmsRejected as err:
            self._counters.rejected(f"bad_mo_{err.reason.value}")
            log.warning("unreadable inbound SMS", error=str(err))
            return CommandStatus.ESME_RX_P_APPN
        text = self._reassembler.add(pdu.source_addr, part, now=time.monotonic())
        if text is None:
            return CommandStatus.ESME_ROK
        await self._sink.inbound(
            pdu.source_addr, pdu.destination_addr, text, provider=NAME, provider_id=None
        )
        return CommandStatus.ESME_ROK


def _status_name(status: int) -> str:
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"
