"""Reading an OSC packet from the network, for the few addresses we serve: checked before anything is parsed.

The OSC input is a UDP port anyone on the network can reach, so a packet is hostile
until proven otherwise. python-osc is not used for input: it turns an address pattern
into a regular expression (a pattern of thousands of ``*`` backtracks for minutes
inside C code, holding the GIL) and its bundle parser loops forever on a negative
element size. Here:

- a packet is at most ``MAX_PACKET`` bytes, a multiple of 4;
- an address is matched as a plain string against the ones we serve (no patterns);
  anything else is ignored without looking further;
- a bundle holds at most ``MAX_ELEMENTS`` elements, each of a positive size, a multiple
  of 4, inside the packet, nested at most ``MAX_DEPTH`` deep;
- only the first argument is read, and only if it is a number (``i h f d``, or ``T``/``F``);
  it must be finite. For the addresses in ``lists`` every argument is read instead (none to
  ``MAX_ARGS``, each an ``i``, ``f`` or ``d``, finite), as a tuple.

``read_packet(data, addresses)`` returns ``[(address, value), ...]`` for the messages
we serve, in packet order, or raises ``BadPacket(reason)``. Every path is O(size of
the packet), with no recursion deeper than ``MAX_DEPTH``.
"""
from __future__ import annotations

import math
import struct

MAX_PACKET = 1024          # bytes; a valence or arousal message is 32-48 bytes
MAX_ELEMENTS = 32          # in one bundle
MAX_DEPTH = 2              # a bundle in a bundle, no deeper
MAX_ADDRESS = 128          # bytes of an address
MAX_ARGS = 16              # arguments read from a list message (a chord's pitch classes)
BUNDLE = b"#bundle\0"


class BadPacket(ValueError):
    """A packet that breaks OSC's rules or our limits; the message says which (one short line)."""


def read_packet(data: bytes, addresses: frozenset[str] | set[str],
                lists: frozenset[str] | set[str] = frozenset()) -> list[tuple[str, float | tuple[float, ...]]]:
    """The (address, first numeric argument) of each message in ``data`` whose address is one of ``addresses``;
    (address, all its numeric arguments as a tuple) for one in ``lists``."""
    if len(data) > MAX_PACKET:
        raise BadPacket(f"{len(data)} bytes, more than {MAX_PACKET}")
    if len(data) == 0 or len(data) % 4:
        raise BadPacket(f"{len(data)} bytes, not a positive multiple of 4")
    out: list[tuple[str, float]] = []
    _element(memoryview(data), (addresses, lists), out, 0)
    return out


def _element(buf: memoryview, addresses, out: list, depth: int) -> None:
    if buf[:8] == BUNDLE:
        _bundle(buf, addresses, out, depth)
    elif buf[:1] == b"/":
        found = _message(buf, addresses)
        if found is not None:
            out.append(found)
    else:
        raise BadPacket("neither a message (/...) nor a bundle (#bundle)")


def _bundle(buf: memoryview, addresses, out: list, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise BadPacket(f"bundles nested deeper than {MAX_DEPTH}")
    if len(buf) < 16:
        raise BadPacket("a bundle shorter than its header")
    pos, n = 16, 0                         # '#bundle\0' + an 8-byte time tag (ignored: we act at once)
    while pos < len(buf):
        n += 1
        if n > MAX_ELEMENTS:
            raise BadPacket(f"more than {MAX_ELEMENTS} elements in a bundle")
        if pos + 4 > len(buf):
            raise BadPacket("a bundle element size cut short")
        (size,) = struct.unpack_from(">i", buf, pos)
        pos += 4
        if size <= 0 or size % 4 or pos + size > len(buf):
            raise BadPacket(f"bundle element size {size} is not a positive multiple of 4 inside the packet")
        _element(buf[pos:pos + size], addresses, out, depth + 1)
        pos += size


def _string(buf: memoryview, pos: int, limit: int) -> tuple[bytes, int]:
    """An OSC string at ``pos`` (NUL-terminated, padded to 4): its bytes and the position after the padding."""
    end = bytes(buf[pos:pos + limit + 1]).find(b"\0")
    if end < 0:
        raise BadPacket(f"a string without its NUL within {limit} bytes")
    s = bytes(buf[pos:pos + end])
    return s, pos + ((end + 4) & ~3)


def _message(buf: memoryview, served) -> tuple[str, float | tuple[float, ...]] | None:
    addresses, lists = served
    raw, pos = _string(buf, 0, MAX_ADDRESS)
    try:
        address = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadPacket("an address that is not ASCII") from None
    if address not in addresses and address not in lists:
        return None                                  # not ours: ignored, not parsed further
    if pos >= len(buf):
        raise BadPacket(f"{address}: no type tags")
    tags, pos = _string(buf, pos, len(buf) - pos)
    if tags[:1] != b",":
        raise BadPacket(f"{address}: type tags do not start with ','")
    if address in lists:
        return address, _numbers(buf, pos, address, tags[1:])
    if len(tags) < 2:
        raise BadPacket(f"{address}: no argument")
    tag = tags[1:2]
    if tag in (b"T", b"F"):
        return address, 1.0 if tag == b"T" else 0.0
    fmt = {b"i": ">i", b"h": ">q", b"f": ">f", b"d": ">d"}.get(tag)
    if fmt is None:
        raise BadPacket(f"{address}: first argument of type {tag!r} is not a number")
    if pos + struct.calcsize(fmt) > len(buf):
        raise BadPacket(f"{address}: argument cut short")
    (value,) = struct.unpack_from(fmt, buf, pos)
    value = float(value)
    if not math.isfinite(value):
        raise BadPacket(f"{address}: argument {value} is not finite")
    return address, value


def _numbers(buf: memoryview, pos: int, address: str, tags: bytes) -> tuple[float, ...]:
    if len(tags) > MAX_ARGS:
        raise BadPacket(f"{address}: {len(tags)} arguments, more than {MAX_ARGS}")
    out = []
    for tag in tags:
        fmt = {ord("i"): ">i", ord("f"): ">f", ord("d"): ">d"}.get(tag)
        if fmt is None:
            raise BadPacket(f"{address}: an argument of type {chr(tag)!r} is not a number")
        if pos + struct.calcsize(fmt) > len(buf):
            raise BadPacket(f"{address}: arguments cut short")
        (value,) = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        if not math.isfinite(value):
            raise BadPacket(f"{address}: argument {value} is not finite")
        out.append(float(value))
    return tuple(out)


def message(address: str, *args: float | int) -> bytes:
    """An OSC message with int (``i``) or float (``f``) arguments, as bytes (for tests and tools)."""
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)
    tags = "," + "".join("i" if isinstance(a, int) else "f" for a in args)
    body = b"".join(struct.pack(">i" if isinstance(a, int) else ">f", a) for a in args)
    return pad(address.encode()) + pad(tags.encode()) + body


def bundle(*elements: bytes) -> bytes:
    """An OSC bundle (time tag 'immediately') of already-encoded elements."""
    return BUNDLE + struct.pack(">Q", 1) + b"".join(struct.pack(">i", len(e)) + e for e in elements)
