"""Byte-level checks and incremental UTF-8 decoding of an uploaded file.

The first bytes are sniffed for what cannot be a text dialogue file (empty, binary, UTF-16/32);
the rest is decoded chunk by chunk so that memory stays flat whatever the file size.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from app.formats.errors import ErrorCode, FormatError

CHUNK_SIZE = 1 << 16

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian)"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian)"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian)"),
)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or .xlsx/.docx)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "an executable"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.xls/.doc)"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f")


def sniff(head: bytes) -> None:
    """Raise FormatError if the first bytes show an empty, binary or non-UTF-8 file."""
    if not head:
        raise FormatError(ErrorCode.EMPTY_FILE, "the file is empty (0 bytes)")
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise FormatError(
                ErrorCode.WRONG_ENCODING,
                f"expected UTF-8, found {name} (byte-order mark {bom.hex(' ').upper()}); "
                "save the file as UTF-8",
                offset=0,
            )
    for magic, name in _MAGIC:
        if head.startswith(magic):
            raise FormatError(
                ErrorCode.BINARY_FILE, f"expected a text file, found {name}", offset=0
            )
    sample = head[:4096]
    zeros = sample.count(0)
    if zeros:
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        # ASCII text in UTF-16 has a zero in every other byte
        if max(odd, even) * 4 >= len(sample) and min(odd, even) == 0:
            order = "little-endian" if odd else "big-endian"
            raise FormatError(
                ErrorCode.WRONG_ENCODING,
                f"expected UTF-8, found UTF-16 ({order}, no byte-order mark); "
                "save the file as UTF-8",
                offset=0,
            )
        raise FormatError(
            ErrorCode.BINARY_FILE,
            f"expected a text file, found binary data (NUL byte at offset {sample.index(0)})",
            offset=sample.index(0),
        )
    controls = sum(1 for b in sample if b < 0x20 and b not in _TEXT_CONTROLS)
    if controls * 10 > len(sample):
        raise FormatError(
            ErrorCode.BINARY_FILE,
            f"expected a text file, found binary data ({controls} control bytes in the first "
            f"{len(sample)})",
            offset=0,
        )


def guess_encoding(data: bytes) -> str:
    """Name the likely encoding of bytes that are not UTF-8, for the error message."""
    for cut in range(3):
        window = data[: len(data) - cut] if cut else data
        try:
            text = window.decode("gbk")
        except UnicodeDecodeError:
            continue
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return "GBK/GB18030 (Chinese)"
    return "Latin-1/Windows-1252"


class TextStream:
    """UTF-8 text of a binary stream, as chunks; records BOM and newline style on the way."""

    def __init__(self, raw: BinaryIO, chunk_size: int = CHUNK_SIZE) -> None:
        self._raw = raw
        self._chunk_size = chunk_size
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._bytes_read = 0
        self._lines = 0
        self._started = False
        self.bom = False
        self.newline = "\n"

    def __iter__(self) -> Iterator[str]:
        """Yield decoded text chunks; raise FormatError on a problem."""
        if self._started:
            raise RuntimeError("a TextStream can be iterated once")
        self._started = True
        first = True
        while True:
            data = self._raw.read(self._chunk_size)
            if first:
                sniff(data)
                if data.startswith(codecs.BOM_UTF8):
                    # Excel and Notepad write a UTF-8 BOM; it carries no content.
                    self.bom, data = True, data[len(codecs.BOM_UTF8) :]
                    self._bytes_read = len(codecs.BOM_UTF8)
            text = self._decode(data, final=not data)
            if first:
                if text.find("\r\n") + 1 == text.find("\n") > 0:
                    self.newline = "\r\n"
                first = False
            if text:
                yield text
            if not data:
                return

    def _decode(self, data: bytes, *, final: bool) -> str:
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            joined = exc.object
            offset = self._bytes_read - pending + exc.start
            line = self._lines + 1 + joined[: exc.start].count(b"\n")
            found = joined[exc.start : exc.start + 1].hex().upper()
            guess = guess_encoding(joined[max(0, exc.start - 40) : exc.start + 200])
            what = (
                "truncated at the end of the file"
                if final and exc.reason.startswith("unexpected end")
                else f"byte 0x{found} is not valid UTF-8"
            )
            raise FormatError(
                ErrorCode.WRONG_ENCODING,
                f"expected UTF-8, found {what}; the file looks like {guess} text: save it as UTF-8",
                line=line,
                offset=offset,
            ) from None
        self._bytes_read += len(data)
        self._lines += text.count("\n")
        return text


def iter_lines(chunks: Iterator[str]) -> Iterator[str]:
    """Split text chunks into lines, each keeping its line ending (only ``\\n`` splits)."""
    pending: list[str] = []  # a list, not str +=, so that a very long line stays linear
    for chunk in chunks:
        if "\n" not in chunk:
            pending.append(chunk)
            continue
        parts = chunk.split("\n")
        pending.append(parts[0])
        yield "".join(pending) + "\n"
        for part in parts[1:-1]:
            yield part + "\n"
        pending = [parts[-1]]
    if tail := "".join(pending):
        yield tail
