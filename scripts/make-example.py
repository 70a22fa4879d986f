#!/usr/bin/env python3
"""Builds examples/PP-EXAMPLE.zip: a small born-digital transfer package of real files.

Only the standard library is used, and timestamps are fixed, so the zip is reproducible.
"""
import io
import json
import struct
import wave
import zipfile
import zlib
from pathlib import Path

from minimal_pdf import one_page_pdf

FIXED = (2024, 5, 17, 10, 30, 0)


def png(width=32, height=16):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 8 % 256, y * 16 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def pdf():
    return one_page_pdf("1.4", b"BT /F1 18 Tf 36 72 Td (Letter from the archive, 1901) Tj ET", 144)


def wav():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", (i * 937) % 20000 - 10000) for i in range(4000)))
    return buf.getvalue()


FILES = {
    "objects/letters/1901-letter.pdf": pdf(),
    "objects/images/plan.png": png(),
    "objects/audio/interview-excerpt.wav": wav(),
    "objects/notes/transcript.txt": "Interview transcript\n\nQ: When did the collection begin?\nA: In 1901, with a single letter.\n".encode(),
    "objects/notes/catalogue entry (draft).html": b"<!DOCTYPE html>\n<html><head><title>Draft</title></head><body><p>Draft catalogue entry.</p></body></html>\n",
    "objects/data/inventory.json": json.dumps({"items": [{"id": 1, "title": "Letter"}, {"id": 2, "title": "Plan"}]}, indent=2).encode() + b"\n",
    "objects/data/empty-placeholder.txt": b"",
    "metadata/metadata.csv": "filename,dc.identifier,dc.title,dc.creator,dc.date\nobjects/,PP/EXA/1,\"Example papers, 1901–1950\",Example Family,1901-1950\n".encode(),
}


def main():
    target = Path(__file__).resolve().parent.parent / "examples" / "PP-EXAMPLE.zip"
    target.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(FILES):
            info = zipfile.ZipInfo(name, FIXED)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, FILES[name])
    print(target)


if __name__ == "__main__":
    main()
