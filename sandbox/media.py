"""Files: a store with Telegram-like file ids and paths, and small valid fake media.

The fake JPEGs are real, decodable images of the requested size (flat grey), so code that
inspects photos (size checks, thumbnails, an image library) behaves as with real uploads.
"""

from __future__ import annotations

import mimetypes
import random
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FileStore",
    "StoredFile",
    "fake_bytes",
    "image_size",
    "make_jpeg",
    "photo_size_ladder",
]

_STD_QUANT = bytes([1] * 64)


def make_jpeg(width: int, height: int, label: str = "") -> bytes:
    """Return a valid baseline greyscale JPEG of ``width`` x ``height`` pixels.

    Every 8x8 block has only a zero DC difference and an end-of-block code, so the
    entropy-coded data is two bits per block; ``label`` goes in a comment segment so
    different fake photos have different bytes.
    """
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise ValueError("JPEG dimensions must be 1..65535")

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + _STD_QUANT
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    # One Huffman code ("0", length 1) per table: DC category 0 and AC end-of-block.
    counts = b"\x01" + b"\x00" * 15
    dht_dc = b"\x00" + counts + b"\x00"
    dht_ac = b"\x10" + counts + b"\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = blocks * 2
    data = bytearray(bits // 8)
    if bits % 8:
        # Pad the final byte with 1-bits, as the JPEG spec requires.
        data.append((1 << (8 - bits % 8)) - 1)
    parts = [
        b"\xff\xd8",
        segment(0xFFE0, jfif),
        segment(0xFFFE, (label or "sandbox").encode("utf-8")),
        segment(0xFFDB, dqt),
        segment(0xFFC0, sof),
        segment(0xFFC4, dht_dc),
        segment(0xFFC4, dht_ac),
        segment(0xFFDA, sos),
        bytes(data),
        b"\xff\xd9",
    ]
    return b"".join(parts)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a JPEG, PNG, GIF or WebP image; None if it is not one."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def photo_size_ladder(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram keeps for a photo: 90, 320, 800, 1280 and 2560 px on the long side."""
    longest = max(width, height, 1)
    sizes: list[tuple[int, int]] = []
    for side in (90, 320, 800, 1280, 2560):
        scale = min(side / longest, 1.0)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size not in sizes:
            sizes.append(size)
        if scale >= 1.0:
            break
    return sizes


def fake_bytes(kind: str, label: str = "", size: int = 2048) -> bytes:
    """Plausible bytes for media the simulator cannot really make (video, voice, sticker…)."""
    headers = {
        "video": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
        "animation": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
        "voice": b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead",
        "audio": b"ID3\x04\x00\x00\x00\x00\x00\x00",
        "sticker": (
            b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x10\x00\x00\x00\xff\x01\x00\xff\x01\x00"
        ),
    }
    head = headers.get(kind, b"")
    body = (label or kind).encode("utf-8")
    padding = max(0, size - len(head) - len(body))
    return head + body + b"\x00" * padding


_ID_PREFIX = {
    "photo": "AgACAgUAAxkBAAI",
    "document": "BQACAgUAAxkBAAI",
    "video": "BAACAgUAAxkBAAI",
    "voice": "AwACAgUAAxkBAAI",
    "audio": "CQACAgUAAxkBAAI",
    "animation": "CgACAgUAAxkBAAI",
    "sticker": "CAACAgUAAxkBAAI",
    "video_note": "DQACAgUAAxkBAAI",
}
_DIRS = {
    "photo": "photos",
    "document": "documents",
    "video": "videos",
    "voice": "voice",
    "audio": "music",
    "animation": "animations",
    "sticker": "stickers",
    "video_note": "video_notes",
}
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass
class StoredFile:
    """One file the simulator knows, with the bytes a download returns."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    url: str | None = None
    file_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


class FileStore:
    """All files, by file_id and by the file_path getFile hands out."""

    def __init__(self, rng: random.Random) -> None:
        """Create an empty store; ids come from ``rng`` so a seed reproduces them."""
        self._rng = rng
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = 0

    def _token(self, length: int) -> str:
        return "".join(self._rng.choice(_ALPHABET) for _ in range(length))

    def add(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        url: str | None = None,
    ) -> StoredFile:
        """Store bytes under a new file_id and return the record."""
        self._counter += 1
        file_id = _ID_PREFIX.get(kind, "BQACAgUAAxkBAAI") + self._token(60)
        unique = "AQAD" + self._token(12)
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0]
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            kind=kind,
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            url=url,
        )
        self._by_id[file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """The file with this id, or None."""
        return self._by_id.get(file_id)

    def assign_path(self, stored: StoredFile) -> str:
        """Give the file a download path (once), as getFile does."""
        if stored.file_path is None:
            self._counter += 1
            ext = ""
            if stored.file_name and "." in stored.file_name:
                ext = "." + stored.file_name.rsplit(".", 1)[1]
            elif stored.kind == "photo":
                ext = ".jpg"
            elif stored.kind == "voice":
                ext = ".oga"
            elif stored.kind in ("video", "animation", "video_note"):
                ext = ".mp4"
            elif stored.kind == "sticker":
                ext = ".webp"
            stored.file_path = f"{_DIRS.get(stored.kind, 'documents')}/file_{self._counter}{ext}"
            self._by_path[stored.file_path] = stored
        return stored.file_path

    def by_path(self, path: str) -> StoredFile | None:
        """The file getFile gave this path to, or None."""
        return self._by_path.get(path)

    def all(self) -> list[StoredFile]:
        """Every stored file, oldest first."""
        return list(self._by_id.values())
