"""Protobuf's wire format read (and written) by hand: varints and the fields of one message.

TensorBoard event files and W&B transaction logs are protobuf messages. mltop reads the few
fields it needs straight off the wire instead of depending on protobuf and each tool's
generated classes (hundreds of MB for two small readers), so both readers share this one
decoder: one place decides what a truncated or over-long varint is, and one loop walks fields.

Fields come as spans and positions into the caller's buffer, not copies, because the event
decoder walks millions of them; a reader that wants bytes slices what it keeps.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "MAX_VARINT_BYTES",
    "WireError",
    "encode_len_field",
    "encode_varint",
    "iter_spans",
    "read_varint",
    "signed64",
]

#: A varint carries at most 64 bits, seven to a byte: ten bytes.
MAX_VARINT_BYTES = 10
_MASK64 = (1 << 64) - 1

#: Wire types: varint, fixed 64-bit, length-delimited, fixed 32-bit (groups, 3 and 4, are gone).
VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message; the message says what is wrong."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it.

    Bits past the 64th are dropped, as protobuf's own decoders do. A varint still going after
    :data:`MAX_VARINT_BYTES` bytes, or cut off by the end of ``buf``, raises :class:`WireError`.
    """
    try:
        byte = buf[pos]
        if byte < 0x80:
            return byte, pos + 1
        result = byte & 0x7F
        shift = 7
        pos += 1
        while True:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result & _MASK64, pos
            shift += 7
            if shift >= 7 * MAX_VARINT_BYTES:
                raise WireError("varint too long")
    except IndexError:
        raise WireError("truncated varint") from None


def signed64(value: int) -> int:
    """An int64 field's value: the varint read as two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_spans(
    buf: bytes, pos: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int | tuple[int, int]]]:
    """(field number, wire type, value) of each field of the message in ``buf[pos:end]``.

    The value is the integer of a varint, the ``(start, stop)`` span of a length-delimited
    field, and the start of a fixed64 or fixed32 field's bytes. A field running past ``end``
    or an unknown wire type raises :class:`WireError`.
    """
    if end is None:
        end = len(buf)
    while pos < end:
        key = buf[pos]
        pos += 1
        if key & 0x80:
            key, pos = read_varint(buf, pos - 1)
        number, wire = key >> 3, key & 7
        if wire == LEN:
            n, pos = read_varint(buf, pos)
            stop = pos + n
            if stop > end:
                raise WireError("field runs past the end of its message")
            yield number, wire, (pos, stop)
            pos = stop
        elif wire == VARINT:
            value, pos = read_varint(buf, pos)
            yield number, wire, value
        elif wire == FIXED64:
            if pos + 8 > end:
                raise WireError("field runs past the end of its message")
            yield number, wire, pos
            pos += 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise WireError("field runs past the end of its message")
            yield number, wire, pos
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire}")
    if pos != end:
        raise WireError("message overruns its length")


def encode_varint(value: int) -> bytes:
    """``value`` as a varint; a negative one as its 64-bit two's complement (ten bytes)."""
    value &= _MASK64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_len_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: key, length, bytes (a string or an embedded message)."""
    return encode_varint(number << 3 | LEN) + encode_varint(len(payload)) + payload
