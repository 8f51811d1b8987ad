"""A test SMSC: an asyncio TCP server speaking SMPP 3.4 with protocols/sms.

It binds any transceiver, answers submit_sm with ids it writes in upper-case hex, and can
send deliver_sm receipts (their id written in decimal with leading zeros, as some SMSCs
do), inbound messages and raw bytes. It can be told to refuse submissions temporarily
(ESME_RTHROTTLED) or permanently, and to go down and come back on the same port.
Everything it receives is recorded; tests wait on ``wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from protocols.sms import (
    BindTransceiver,
    BindTransceiverResp,
    CommandStatus,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MalformedPdu,
    Pdu,
    PduFramer,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode_pdu,
    encode_message,
    encode_pdu,
)

WAIT = 15.0
FIRST_ID = 0xA0000000
ESM_RECEIPT = 0x04


@dataclass
class Submitted:
    """One accepted submit_sm and the id the SMSC gave it."""

    pdu: SubmitSm
    message_id: str


@dataclass(eq=False)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bound: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class TestSmsc:
    """The server; ``start`` it, then point the hub's ``smpp_port`` at ``port``."""

    __test__ = False

    refuse: int | None = None
    """When set, submit_sm is answered with this status (e.g. ESME_RTHROTTLED)."""
    refuse_count: int | None = None
    """How many submissions ``refuse`` applies to (None: until cleared)."""
    answer_limit: int | None = None
    """When set, submissions past this many are recorded in ``held`` and never answered
    (an SMSC that took a message but whose answer never reached the client)."""
    submitted: list[Submitted] = field(default_factory=list)
    held: list[SubmitSm] = field(default_factory=list)
    refused: int = 0
    binds: int = 0
    received: list[Pdu] = field(default_factory=list)
    """Every PDU a client sent (responses to our deliver_sm included)."""
    port: int = 0
    _server: asyncio.Server | None = None
    _conns: set[_Conn] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_ID))
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port the first time, the same port afterwards)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def go_down(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._conns):
            conn.writer.close()
            if conn.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(conn.task), WAIT)
        self._conns.clear()

    async def close(self) -> None:
        """Go down for good."""
        await self.go_down()

    def _notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` holds, woken by each PDU the SMSC receives."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def bound(self) -> int:
        """Sessions currently bound."""
        return sum(1 for c in self._conns if c.bound)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(reader, writer, task=asyncio.current_task())  # type: ignore[arg-type]
        self._conns.add(conn)
        framer = PduFramer()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    self._handle(conn, frame)
        except (ConnectionError, MalformedPdu):
            pass
        finally:
            self._conns.discard(conn)
            writer.close()
            self._notify()

    def _handle(self, conn: _Conn, frame: bytes) -> None:
        try:
            pdu = decode_pdu(frame)
        except MalformedPdu as err:
            if err.sequence is not None:
                conn.writer.write(encode_pdu(GenericNack(err.sequence, err.nack_status)))
            return
        self.received.append(pdu)
        if isinstance(pdu, BindTransceiver):
            conn.bound = True
            self.binds += 1
            conn.writer.write(encode_pdu(BindTransceiverResp(pdu.sequence, system_id="testsmsc")))
        elif isinstance(pdu, SubmitSm):
            self._submit(conn, pdu)
        elif isinstance(pdu, EnquireLink):
            conn.writer.write(encode_pdu(EnquireLinkResp(pdu.sequence)))
        elif isinstance(pdu, Unbind):
            conn.writer.write(encode_pdu(UnbindResp(pdu.sequence)))
        self._notify()

    def _submit(self, conn: _Conn, pdu: SubmitSm) -> None:
        if self.refuse is not None:
            self.refused += 1
            status = self.refuse
            if self.refuse_count is not None:
                self.refuse_count -= 1
                if self.refuse_count <= 0:
                    self.refuse = self.refuse_count = None
            conn.writer.write(encode_pdu(SubmitSmResp(pdu.sequence, status)))
            return
        if self.answer_limit is not None and len(self.submitted) >= self.answer_limit:
            self.held.append(pdu)
            return
        message_id = format(next(self._ids), "X")
        self.submitted.append(Submitted(pdu, message_id))
        conn.writer.write(encode_pdu(SubmitSmResp(pdu.sequence, message_id=message_id)))

    def _writer(self) -> asyncio.StreamWriter:
        conn = next((c for c in self._conns if c.bound), None)
        if conn is None:
            raise RuntimeError("no bound session")
        return conn.writer

    def deliver(self, pdu: DeliverSm) -> int:
        """Send a deliver_sm to the bound client (sequence assigned here); its sequence."""
        seq = next(self._seq)
        self._writer().write(encode_pdu(_with_seq(pdu, seq)))
        return seq

    def deliver_receipt(self, written_id: str, stat: str, err: str = "000") -> int:
        """A receipt in SMPP 3.4 Appendix B text for ``written_id``."""
        text = (
            f"id:{written_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:2611231200 done date:2611231201 stat:{stat} err:{err} text:"
        )
        return self.deliver(
            DeliverSm(
                0,
                source_addr="13800000000",
                destination_addr="10690000",
                esm_class=ESM_RECEIPT,
                short_message=text.encode(),
            )
        )

    def deliver_mo(self, source: str, text: str, *, dest: str = "10690000", ref: int = 7) -> None:
        """An inbound message, split into concatenated parts if it is long."""
        for segment in encode_message(text, ref=ref):
            self.deliver(
                DeliverSm(
                    0,
                    source_addr=source,
                    destination_addr=dest,
                    esm_class=segment.esm_class_bits,
                    data_coding=int(segment.data_coding),
                    short_message=segment.short_message,
                )
            )

    def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes to the bound client."""
        self._writer().write(data)

    def responses_to(self, sequence: int) -> list[Pdu]:
        """What the client answered to our PDU ``sequence``."""
        return [p for p in self.received if p.sequence == sequence and p.command_id & 0x80000000]


def _with_seq(pdu: DeliverSm, seq: int) -> DeliverSm:
    return replace(pdu, sequence=seq)


def decimal_id(hex_id: str, width: int = 20) -> str:
    """The SMSC's hex id written in decimal with leading zeros (as receipts may write it)."""
    return str(int(hex_id, 16)).zfill(width)


STATUS_THROTTLED = CommandStatus.ESME_RTHROTTLED
STATUS_BAD_DEST = CommandStatus.ESME_RINVDSTADR
