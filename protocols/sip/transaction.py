"""SIP transactions (RFC 3261 17, RFC 6026) as pure state: time is an argument."""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass

from protocols.sip.errors import SipParseError
from protocols.sip.message import MAGIC_COOKIE, SipRequest, SipResponse, is_provisional

TIMER_FACTOR = 64  # Timers B, F, H, J and L are all 64*T1
TIMER_C = 180.0  # RFC 3261 16.6: an INVITE may wait this long for its final answer
_HEAP_SLACK = 4  # rebuild the lazy heap once it holds this many times the live entries
_HEAP_MIN_REBUILD = 1024

ServerKey = tuple[str, ...]


@dataclass(frozen=True)
class TimerConfig:
    """RFC 3261 timer base values in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


@dataclass(frozen=True)
class NewRequest:
    """A request the caller must handle (and later answer through respond)."""


@dataclass(frozen=True)
class Retransmission:
    """A duplicate request: resend ``response`` to ``destination`` if there is one."""

    response: bytes | None
    destination: object | None


@dataclass(frozen=True)
class AckAbsorbed:
    """An ACK for a non-2xx final response: the transaction consumed it."""


ServerMatch = NewRequest | Retransmission | AckAbsorbed


def server_key(request: SipRequest) -> ServerKey:
    """The RFC 3261 17.2.3 matching key of a request (ACK maps to its INVITE)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by.lower(), method)
    # RFC 2543 peers: no usable branch, so match on the dialog-ish identifiers instead.
    number, _ = request.cseq
    return ("2543", request.call_id, str(number), request.from_tag or "", str(via), method)


@dataclass
class _ServerEntry:
    method: str
    expires: float | None
    response: bytes | None = None
    destination: object | None = None
    invite_error: bool = False
    acked: bool = False
    reliable: bool = False
    retransmit_at: float | None = None
    interval: float = 0.0
    generation: int = 0
    ack_id: tuple[str, int] | None = None  # (Call-ID, CSeq) of a 2xx awaiting its ACK

    @property
    def deadline(self) -> float | None:
        """The earliest of expiry and the next retransmission."""
        times = [t for t in (self.expires, self.retransmit_at) if t is not None]
        return min(times) if times else None


class ServerTransactions:
    """Every server transaction of one endpoint: matching, absorbing and retransmitting."""

    def __init__(self, timers: TimerConfig = TimerConfig(), max_entries: int = 100000) -> None:
        self._timers = timers
        self._max_entries = max_entries
        self._entries: OrderedDict[ServerKey, _ServerEntry] = OrderedDict()
        self._heap: list[tuple[float, int, int, ServerKey]] = []
        self._counter = itertools.count()
        self._awaiting_ack: dict[tuple[str, int], ServerKey] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _schedule(self, key: ServerKey, entry: _ServerEntry) -> None:
        entry.generation += 1
        deadline = entry.deadline
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._counter), entry.generation, key))
        if len(self._heap) > max(_HEAP_MIN_REBUILD, _HEAP_SLACK * len(self._entries)):
            self._heap = [item for item in self._heap if self._live(item)]
            heapq.heapify(self._heap)

    def _live(self, item: tuple[float, int, int, ServerKey]) -> bool:
        entry = self._entries.get(item[3])
        return entry is not None and entry.generation == item[2]

    def _insert(self, key: ServerKey, entry: _ServerEntry) -> None:
        while len(self._entries) >= self._max_entries:
            self._drop(next(iter(self._entries)))
        self._entries[key] = entry

    def _drop(self, key: ServerKey) -> None:
        entry = self._entries.pop(key)
        if entry.ack_id is not None:
            self._awaiting_ack.pop(entry.ack_id, None)

    def _ack_for_2xx(self, ack: SipRequest) -> None:
        """Stop retransmitting the 2xx this ACK acknowledges (RFC 3261 13.3.1.4)."""
        key = self._awaiting_ack.pop((ack.call_id, ack.cseq[0]), None)
        entry = self._entries.get(key) if key is not None else None
        if key is not None and entry is not None:
            entry.retransmit_at = None
            entry.ack_id = None
            self._schedule(key, entry)

    def receive(self, request: SipRequest, now: float) -> ServerMatch:
        """Match an incoming request against the existing server transactions."""
        key = server_key(request)
        entry = self._entries.get(key)
        if request.method == "ACK":
            if entry is None or not entry.invite_error:
                self._ack_for_2xx(request)
                return NewRequest()  # ACK for a 2xx belongs to the dialog layer
            if not entry.acked:
                entry.acked = True
                entry.retransmit_at = None
                # Timer I: linger to absorb ACK retransmissions on unreliable transports.
                entry.expires = now + (0.0 if entry.reliable else self._timers.t4)
                self._schedule(key, entry)
            return AckAbsorbed()
        if entry is not None:
            if entry.response is None:
                return Retransmission(None, None)
            return Retransmission(entry.response, entry.destination)
        entry = self._new_entry(key, request, now)
        self._schedule(key, entry)
        return NewRequest()

    def _new_entry(self, key: ServerKey, request: SipRequest, now: float) -> _ServerEntry:
        # A request nobody answers must not stay forever: drop it when the client has
        # certainly given up (Timer F for non-INVITE, Timer C for INVITE).
        horizon = TIMER_C if request.method == "INVITE" else TIMER_FACTOR * self._timers.t1
        entry = _ServerEntry(method=request.method, expires=now + horizon)
        self._insert(key, entry)
        return entry

    def respond(
        self,
        request: SipRequest,
        response: bytes,
        destination: object,
        now: float,
        reliable: bool,
        final: bool,
        invite_error: bool = False,
    ) -> None:
        """Record the response sent for a request so duplicates get it again."""
        key = server_key(request)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._new_entry(key, request, now)
        entry.response = response
        entry.destination = destination
        entry.reliable = reliable
        if not final:
            self._schedule(key, entry)
            return
        long_wait = now + TIMER_FACTOR * self._timers.t1
        if request.method == "INVITE" and invite_error:
            entry.invite_error = True
            entry.expires = long_wait  # Timer H: give up waiting for the ACK
            if not reliable:
                entry.interval = self._timers.t1  # Timer G
                entry.retransmit_at = now + entry.interval
        elif request.method == "INVITE":
            # RFC 6026 Accepted state: answer retransmitted INVITEs with the 2xx (Timer L);
            # over UDP also resend the 2xx until its ACK arrives (RFC 3261 13.3.1.4).
            entry.expires = long_wait
            if not reliable:
                entry.interval = self._timers.t1
                entry.retransmit_at = now + entry.interval
                entry.ack_id = (request.call_id, request.cseq[0])
                self._awaiting_ack[entry.ack_id] = key
        else:
            entry.expires = now if reliable else long_wait  # Timer J
        self._schedule(key, entry)

    def due(self, now: float) -> list[tuple[bytes, object]]:
        """Responses to retransmit now; transactions whose time is up are dropped."""
        resend: list[tuple[bytes, object]] = []
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)
            if not self._live(item):
                continue
            key = item[3]
            entry = self._entries[key]
            if entry.expires is not None and entry.expires <= now:
                self._drop(key)
                continue
            if entry.retransmit_at is not None and entry.retransmit_at <= now:
                if entry.response is not None:
                    resend.append((entry.response, entry.destination))
                entry.interval = min(entry.interval * 2, self._timers.t2)
                entry.retransmit_at = now + entry.interval
            self._schedule(key, entry)
        return resend

    def next_deadline(self) -> float | None:
        """When due() next has something to do, or None."""
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None


class ClientTransaction:
    """One client transaction (RFC 3261 17.1): retransmission and timeout bookkeeping."""

    def __init__(
        self,
        request: SipRequest,
        data: bytes,
        reliable: bool,
        now: float,
        timers: TimerConfig = TimerConfig(),
    ) -> None:
        branch = request.branch
        if branch is None:
            raise SipParseError("a client transaction needs a Via branch")
        self.request = request
        self.data = data
        self.reliable = reliable
        self.invite = request.method == "INVITE"
        self.key: tuple[str, str] = (branch, request.method)
        self.final: SipResponse | None = None
        self.provisional: SipResponse | None = None
        self._timers = timers
        self._interval = timers.t1
        self._retransmit_at: float | None = None if reliable else now + timers.t1
        self._timeout_at = now + TIMER_FACTOR * timers.t1  # Timer B / F
        self._now = now

    def matches(self, response: SipResponse) -> bool:
        """True when the response belongs to this transaction (RFC 3261 17.1.3)."""
        try:
            return response.branch == self.key[0] and response.cseq[1] == self.key[1]
        except SipParseError:
            return False

    def receive(self, response: SipResponse, now: float | None = None) -> bool:
        """Take a matching response; True when it is (or a final was already) final."""
        if self.final is not None:
            return True
        if is_provisional(response.status):
            self.provisional = response
            if self.invite:
                # Proceeding: INVITE retransmissions stop; Timer B gives way to Timer C.
                self._retransmit_at = None
                self._timeout_at = (self._now if now is None else now) + TIMER_C
            elif self._retransmit_at is not None:
                self._interval = self._timers.t2
            return False
        self.final = response
        self._retransmit_at = None
        return True

    def retransmit_due(self, now: float) -> bytes | None:
        """The request bytes when Timer A / E fires now, else None."""
        self._now = now
        if self.final is not None or self._retransmit_at is None or now < self._retransmit_at:
            return None
        if self.invite:
            self._interval *= 2  # Timer A doubles without a cap
        else:
            cap = self._timers.t2
            self._interval = cap if self.provisional else min(self._interval * 2, cap)
        self._retransmit_at = now + self._interval
        return self.data

    def timed_out(self, now: float) -> bool:
        """True when no final response came in time (Timer B / F)."""
        self._now = now
        return self.final is None and now >= self._timeout_at

    def next_deadline(self) -> float | None:
        """The next time retransmit_due or timed_out may change its answer."""
        if self.final is not None:
            return None
        if self._retransmit_at is None:
            return self._timeout_at
        return min(self._retransmit_at, self._timeout_at)
