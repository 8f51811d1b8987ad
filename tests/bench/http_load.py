"""A lean HTTP/1.1 load generator: keep-alive connections on asyncio Protocols, each with
one request in flight, requests encoded before the clock starts.

A benchmark's load generator shares the machine's cores with the server it measures. An
aiohttp client spends a few hundred microseconds of CPU on every request; this one reads
only the status line and ``Content-Length``, so the server and its database get the CPU.
Only for servers that answer with ``Content-Length`` (aiohttp does for every body it has
whole); a chunked answer is an error.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import cast

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER_BYTES = 64 * 1024


class ResponseError(ConnectionError):
    """An answer this client cannot read, or a connection closed before it."""


def post_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One keep-alive ``POST`` of a JSON ``body``, ready to write."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """Sends requests one after the other, counting each answer's status."""

    def __init__(self, requests: Iterator[bytes], statuses: Counter[int]) -> None:
        self._requests = requests
        self._statuses = statuses
        self._buffer = bytearray()
        self._status = 0
        self._remaining = -1  # body bytes still expected; -1 while reading headers
        self._transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._next()

    def _next(self) -> None:
        request = next(self._requests, None)
        if request is None:
            assert self._transport is not None
            self._transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        assert self._transport is not None
        self._transport.write(request)

    def _fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._remaining < 0:
                end = self._buffer.find(_HEADER_END)
                if end < 0:
                    if len(self._buffer) > _MAX_HEADER_BYTES:
                        self._fail(ResponseError("response headers too long"))
                    return
                head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
                del self._buffer[: end + len(_HEADER_END)]
                try:
                    self._status = int(head[0].split(" ", 2)[1])
                except (IndexError, ValueError):
                    self._fail(ResponseError(f"not an HTTP status line: {head[0]!r}"))
                    return
                length = None
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "transfer-encoding":
                        self._fail(ResponseError(f"{value.strip()} answers are not supported"))
                        return
                if length is None:
                    self._fail(ResponseError(f"answer {self._status} has no Content-Length"))
                    return
                self._remaining = length
            if len(self._buffer) < self._remaining:
                return
            del self._buffer[: self._remaining]
            self._remaining = -1
            self._statuses[self._status] += 1
            self._next()
            if self.done.done():
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(exc or ResponseError("the server closed the connection mid-answer"))


async def send_all(
    host: str, port: int, requests: list[bytes], concurrency: int, timeout: float
) -> Counter[int]:
    """Send every request over ``concurrency`` keep-alive connections, one in flight on
    each; the count of each answer status. Any connection error or a run longer than
    ``timeout`` seconds raises."""
    statuses: Counter[int] = Counter()
    queue = iter(requests)
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(lambda: _Connection(queue, statuses), host, port)
        connections.append(protocol)
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(c.done for c in connections))
    return statuses
