"""Case attachments on disk: size- and type-checked while streaming, written off the event
loop, published by rename so a half-written file is never served."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hub.errors import HubError

MAGIC_BYTES = 16
"""How much of the start of a file the type checks look at."""


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


def _text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # The check may cut a multi-byte character at its end: only that is forgiven.
        return err.start >= len(head) - 3
    return b"\x00" not in head


_ZIP = _starts(b"PK\x03\x04")
_OLE = _starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
ACCEPTED: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": _starts(b"\xff\xd8\xff"),
    "image/png": _starts(b"\x89PNG\r\n\x1a\n"),
    "image/gif": _starts(b"GIF87a", b"GIF89a"),
    "image/webp": lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP",
    "video/mp4": lambda head: head[4:8] == b"ftyp",
    "application/pdf": _starts(b"%PDF-"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/msword": _OLE,
    "application/vnd.ms-excel": _OLE,
    "text/plain": _text,
}
"""Content types accepted, each with the check its first bytes must pass."""


class AttachmentError(HubError):
    """An upload refused."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message, status)


@dataclass(frozen=True, slots=True)
class Stored:
    """What was written."""

    size: int
    sha256: str


class AttachmentStore:
    """Files under ``root/<case id>/<attachment id>``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, case_id: str, attachment_id: str) -> Path:
        """Where an attachment's bytes live (ids are ULIDs: no path tricks possible)."""
        return self.root / case_id / attachment_id

    async def save(
        self, case_id: str, attachment_id: str, content_type: str, chunks: AsyncIterator[bytes]
    ) -> Stored:
        """Stream ``chunks`` to disk; refuse a type we do not take, content that is not of
        the declared type (415), or more than ``max_bytes`` (413)."""
        check = ACCEPTED.get(content_type)
        if check is None:
            raise AttachmentError(
                415, "case.attachment_type", f"{content_type} is not accepted; accepted: "
                + ", ".join(sorted(ACCEPTED)),
            )  # fmt: skip
        final = self.path(case_id, attachment_id)
        partial = final.with_suffix(".part")
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        handle = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise AttachmentError(
                        413,
                        "case.attachment_too_large",
                        f"attachments are limited to {self.max_bytes} bytes",
                    )
                if len(head) < MAGIC_BYTES:
                    head += chunk[: MAGIC_BYTES - len(head)]
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
            if size == 0 or not check(head):
                raise AttachmentError(
                    415, "case.attachment_type", f"the content is not {content_type}"
                )
            await asyncio.to_thread(_flush, handle)
        except BaseException:
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(partial.replace, final)
        return Stored(size=size, sha256=digest.hexdigest())

    async def discard(self, case_id: str, attachment_id: str) -> None:
        """Remove a stored file whose row was not committed."""
        await asyncio.to_thread(self.path(case_id, attachment_id).unlink, missing_ok=True)


def _flush(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
