"""The GSM 03.38 (3GPP TS 23.038) default alphabet and its extension table, as code points.

Codes here are *unpacked*: one octet per septet, as SMPP carries GSM text in
``short_message`` for ``data_coding`` 0 (the SMSC packs septets for the air interface).
"""

from __future__ import annotations

ESCAPE = 0x1B
"""Escape to the extension table: an extension character costs two septets."""

BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""Index = septet value; index 0x1B is the escape, not a character."""

EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
"""Septet after an escape → character."""

assert len(BASIC_TABLE) == 128  # a table typo must fail at import

ENCODE: dict[str, bytes] = {
    ch: bytes([code]) for code, ch in enumerate(BASIC_TABLE) if code != ESCAPE
}
ENCODE.update({ch: bytes([ESCAPE, code]) for code, ch in EXTENSION_TABLE.items()})
"""Character → its unpacked GSM octets (one, or two for an extension character)."""


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the default alphabet or its extension."""
    return all(ch in ENCODE for ch in text)


def septet_count(text: str) -> int:
    """Septets ``text`` takes in the default alphabet (extension characters count two)."""
    return sum(len(ENCODE[ch]) for ch in text)


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM octets for ``text``; KeyError for a character outside the alphabet."""
    return b"".join(ENCODE[ch] for ch in text)


def decode_gsm7(data: bytes) -> str:
    """Text from unpacked GSM octets; ValueError for an octet above 0x7F.

    An escape followed by a code the extension table lacks shows the basic character for
    that code (TS 23.038 §6.2.1.1); a trailing lone escape is dropped.
    """
    out: list[str] = []
    escaped = False
    for octet in data:
        if octet > 0x7F:
            raise ValueError(f"octet 0x{octet:02X} is not a GSM septet")
        if escaped:
            escaped = False
            ext = EXTENSION_TABLE.get(octet)
            if ext is not None:
                out.append(ext)
                continue
            if octet == ESCAPE:
                continue  # escape-escape is reserved: show nothing for it
            out.append(BASIC_TABLE[octet])
        elif octet == ESCAPE:
            escaped = True
        else:
            out.append(BASIC_TABLE[octet])
    return "".join(out)
