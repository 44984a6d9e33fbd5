"""An image's size from its header, before any pixel is decoded: a 168 KB PNG can say 32000 x 32000.

``size(data)`` reads the width and height that JPEG, PNG, BMP, WebP and TIFF files declare (the formats
``capture.IMAGE_EXTENSIONS`` names); ``check(data, label)`` refuses, in one line, a file whose header is
none of those or declares more than ``MAX_PIXELS``. No Pillow: OpenCV alone decodes, and it has no
header-only read, so the few bytes are read here.
"""
from __future__ import annotations

import struct

MAX_PIXELS = 150_000_000        # a 12000 x 9000 museum scan (108 MP) passes; its RGB is 324 MB


class HeaderError(ValueError):
    """An image refused from its header alone."""


def size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by the header, or None when it is not one of the five formats."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            return _tiff(data)
    except (struct.error, IndexError):
        return None
    return None


def check(data: bytes, label: str, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The declared (width, height), or HeaderError naming the file: unknown format, or too many pixels."""
    wh = size(data)
    if wh is None or min(wh) < 1:
        raise HeaderError(f"{label}: not a JPEG, PNG, BMP, WebP or TIFF image, or its header is corrupt")
    w, h = wh
    if w * h > max_pixels:
        raise HeaderError(f"{label}: {w} x {h} pixels ({w * h / 1e6:.0f} MP) is more than {max_pixels / 1e6:.0f} MP; "
                          "scale it down to render it")
    return w, h


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:                          # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):     # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):   # a start of frame
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker in (0xD9, 0xDA) or length < 2:     # end of image, or the scan began without a frame
            return None
        i += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and data[20] == 0x2F:
        b = int.from_bytes(data[21:25], "little")
        return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    """The first page's ImageWidth (256) and ImageLength (257): the page OpenCV decodes."""
    e = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(e + "H", data[2:4])[0] == 43
    if big:
        off = struct.unpack(e + "Q", data[8:16])[0]
        count, entry, at = struct.unpack(e + "Q", data[off:off + 8])[0], 20, off + 8
    else:
        off = struct.unpack(e + "I", data[4:8])[0]
        count, entry, at = struct.unpack(e + "H", data[off:off + 2])[0], 12, off + 2
    found = {}
    for k in range(min(count, 4096)):
        p = at + k * entry
        tag, kind = struct.unpack(e + "HH", data[p:p + 4])
        value = data[p + 4 + (8 if big else 4):p + entry]
        if tag in (256, 257):
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt:
                found[tag] = struct.unpack_from(e + fmt, value)[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None
