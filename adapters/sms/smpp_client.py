"""An SMPP 3.4 transceiver session over asyncio streams; knows nothing of the hub.

One :class:`SmppSession` is one TCP connection: ``open`` connects and binds, ``submit``
sends a submit_sm and waits for its response (at most ``window`` outstanding, matched by
sequence number), a reader task answers enquire_link and unbind, hands deliver_sm PDUs
to a handler through a bounded queue (so a slow handler never stalls the responses the
reader must match) and answers each with the status the handler returns. Malformed PDUs
are answered with generic_nack and counted; a broken stream closes the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import structlog

from hub.tasks import cancel_and_wait
from protocols.sms import (
    BindTransceiver,
    BindTransceiverResp,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
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
    encode_pdu,
)

log = structlog.get_logger(__name__)

MAX_SEQUENCE = 0x7FFFFFFF
READ_CHUNK = 65536
DELIVER_QUEUE = 64
"""deliver_sm PDUs waiting for the handler; past this the reader stops reading."""
UNBIND_TIMEOUT = 2.0

DeliverHandler = Callable[[DeliverSm], Awaitable[int]]
"""Handles a deliver_sm; returns the command_status for its deliver_sm_resp."""


class SessionClosed(Exception):
    """The session is closed or was lost; outstanding requests fail with this."""


class BindRefused(Exception):
    """The SMSC answered the bind with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused (status 0x{status:02X})")
        self.status = status


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Connection parameters and timers."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 10.0


class SmppSession:
    """One bound transceiver connection."""

    def __init__(
        self,
        config: SessionConfig,
        on_deliver: DeliverHandler,
        on_malformed: Callable[[str], None],
    ) -> None:
        self._config = config
        self._on_deliver = on_deliver
        self._on_malformed = on_malformed
        self._sequence = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._window = asyncio.Semaphore(config.window)
        self._deliveries: asyncio.Queue[DeliverSm] = asyncio.Queue(DELIVER_QUEUE)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self.close_reason = ""

    @property
    def open_(self) -> bool:
        """Bound and not closed."""
        return self._writer is not None and not self.closed.is_set()

    def _next_sequence(self) -> int:
        seq = next(self._sequence)
        if seq > MAX_SEQUENCE:
            self._sequence = itertools.count(2)
            seq = 1
        return seq

    async def open(self) -> None:
        """Connect and bind_transceiver; raises OSError, TimeoutError, BindRefused."""
        cfg = self._config
        async with asyncio.timeout(cfg.connect_timeout):
            self._reader, self._writer = await asyncio.open_connection(cfg.host, cfg.port)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._read_loop(), name="smpp reader"))
        try:
            resp = await self._request(
                BindTransceiver(
                    sequence=self._next_sequence(),
                    system_id=cfg.system_id,
                    password=cfg.password,
                    system_type=cfg.system_type,
                )
            )
        except BaseException:
            await self.close("bind failed")
            raise
        if not isinstance(resp, BindTransceiverResp) or resp.status != CommandStatus.ESME_ROK:
            await self.close("bind refused")
            raise BindRefused(resp.status)
        self._tasks.append(loop.create_task(self._deliver_loop(), name="smpp deliveries"))
        self._tasks.append(loop.create_task(self._keepalive(), name="smpp enquire_link"))

    async def submit(self, pdu: SubmitSm) -> SubmitSmResp:
        """Send a submit_sm (its sequence is assigned here) and wait for the response.
        Raises SessionClosed, TimeoutError."""
        async with self._window:
            seq = self._next_sequence()
            resp = await self._request(_with_sequence(pdu, seq))
        if isinstance(resp, GenericNack):
            return SubmitSmResp(sequence=seq, status=resp.status or CommandStatus.ESME_RSYSERR)
        if not isinstance(resp, SubmitSmResp):
            raise SessionClosed(f"unexpected answer {type(resp).__name__}")
        return resp

    async def _request(self, pdu: Pdu) -> Pdu:
        if self._writer is None or self.closed.is_set():
            raise SessionClosed(self.close_reason or "not connected")
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[pdu.sequence] = future
        try:
            self._writer.write(encode_pdu(pdu))
            async with asyncio.timeout(self._config.response_timeout):
                return await future
        finally:
            self._pending.pop(pdu.sequence, None)

    def _send(self, pdu: Pdu) -> None:
        if self._writer is not None and not self.closed.is_set():
            self._writer.write(encode_pdu(pdu))

    async def _read_loop(self) -> None:
        assert self._reader is not None
        framer = PduFramer()
        reason = "connection closed by the SMSC"
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    break
                try:
                    frames = framer.feed(data)
                except MalformedPdu as err:
                    self._on_malformed(err.reason.value)
                    reason = f"unframeable stream: {err}"
                    break
                for frame in frames:
                    if not await self._dispatch(frame):
                        reason = "unbound by the SMSC"
                        return
        except (OSError, asyncio.IncompleteReadError) as err:
            reason = f"connection lost: {err}"
        finally:
            self._lost(reason)

    async def _dispatch(self, frame: bytes) -> bool:
        try:
            pdu = decode_pdu(frame)
        except MalformedPdu as err:
            self._on_malformed(err.reason.value)
            log.warning("malformed PDU from the SMSC", error=str(err))
            if err.sequence is not None:
                self._send(GenericNack(sequence=err.sequence, status=err.nack_status))
            return True
        future = self._pending.get(pdu.sequence)
        if pdu.command_id & 0x80000000 and future is not None and not future.done():
            future.set_result(pdu)
        elif isinstance(pdu, DeliverSm):
            await self._deliveries.put(pdu)
        elif isinstance(pdu, EnquireLink):
            self._send(EnquireLinkResp(sequence=pdu.sequence))
        elif isinstance(pdu, Unbind):
            self._send(UnbindResp(sequence=pdu.sequence))
            return False
        elif not pdu.command_id & 0x80000000:
            self._on_malformed("unexpected_command")
            self._send(GenericNack(sequence=pdu.sequence, status=CommandStatus.ESME_RINVCMDID))
        return True

    async def _deliver_loop(self) -> None:
        while True:
            pdu = await self._deliveries.get()
            try:
                status = await self._on_deliver(pdu)
            except Exception:
                log.exception("deliver_sm handler failed")
                status = CommandStatus.ESME_RX_T_APPN
            self._send(DeliverSmResp(sequence=pdu.sequence, status=status))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self._config.enquire_link_interval)
            try:
                await self._request(EnquireLink(sequence=self._next_sequence()))
            except (TimeoutError, SessionClosed):
                self._lost("enquire_link unanswered")
                if self._writer is not None:
                    self._writer.close()
                return

    def _lost(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SessionClosed(reason))

    async def close(self, reason: str = "closed") -> None:
        """Unbind (briefly) and close; safe to call twice."""
        if self._writer is not None and not self.closed.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(UNBIND_TIMEOUT):
                    await self._request(Unbind(sequence=self._next_sequence()))
        self._lost(reason)
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


def _with_sequence(pdu: SubmitSm, sequence: int) -> SubmitSm:
    return replace(pdu, sequence=sequence)
