#!/usr/bin/env python3
"""Writes a mixed corpus of real files for the identification and characterization tests
and benchmarks: images (Pillow), PDFs, fonts (from the system, where there are any), audio,
XML, HTML, JSON, text, compressed files and office documents made the way their
applications lay them out.

    make-corpus.py DIR [COPIES]

COPIES (default 1) repeats the corpus with variations, for benchmarks.
"""
import bz2
import gzip
import io
import json
import os
import random
import shutil
import struct
import sys
import tarfile
import wave
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

from minimal_pdf import one_page_pdf


def picture(mode, size, seed):
    rnd = random.Random(seed)
    img = Image.new("RGB", size, (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        d.rectangle([x, y, x + rnd.randrange(1, 40), y + rnd.randrange(1, 40)], fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    return img.convert(mode)


def images(out, n):
    sizes = [(64, 48), (200, 120), (17, 33), (640, 480)]
    for i, size in enumerate(sizes):
        s = n * 100 + i
        picture("RGB", size, s).save(out / f"img/photo-{s}.png")
        picture("RGBA", size, s).save(out / f"img/alpha-{s}.png")
        picture("L", size, s).save(out / f"img/grey-{s}.png")
        picture("P", size, s).save(out / f"img/palette-{s}.png")
        picture("RGB", size, s).save(out / f"img/photo-{s}.jpg", quality=85)
        picture("L", size, s).save(out / f"img/grey-{s}.jpg", quality=70)
        picture("RGB", size, s).save(out / f"img/progressive-{s}.jpg", progressive=True)
        picture("P", size, s).save(out / f"img/anim-{s}.gif")
        picture("RGB", size, s).save(out / f"img/bitmap-{s}.bmp")
        picture("RGB", size, s).save(out / f"img/plain-{s}.tif")
        picture("RGB", size, s).save(out / f"img/lzw-{s}.tif", compression="tiff_lzw")
        picture("RGB", size, s).save(out / f"img/scan-{s}.pdf")
    frames = [picture("P", (50, 50), n * 7 + k) for k in range(3)]
    frames[0].save(out / f"img/animated-{n}.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)


def pdf(version, text):
    return one_page_pdf(version, f"BT /F1 14 Tf 20 60 Td ({text}) Tj ET".encode(), 100)


def audio(out, n):
    for ch, width, rate in [(1, 2, 8000), (2, 2, 44100), (1, 1, 22050)]:
        with wave.open(str(out / f"audio/tone-{n}-{ch}-{width}-{rate}.wav"), "wb") as w:
            w.setnchannels(ch)
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(bytes((i * 7 + n) % 256 for i in range(rate // 10 * ch * width)))


def office(path, parts):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts:
            if name == "mimetype":
                z.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_STORED)
            else:
                z.writestr(name, data)


CT = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/{part}" ContentType="{ctype}"/></Types>'
RELS = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{part}"/></Relationships>'


def documents(out, n):
    office(out / f"office/letter-{n}.docx", [
        ("[Content_Types].xml", CT.format(part="word/document.xml", ctype="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")),
        ("_rels/.rels", RELS.format(part="word/document.xml")),
        ("word/document.xml", '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Letter %d</w:t></w:r></w:p></w:body></w:document>' % n),
    ])
    office(out / f"office/accounts-{n}.xlsx", [
        ("[Content_Types].xml", CT.format(part="xl/workbook.xml", ctype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")),
        ("_rels/.rels", RELS.format(part="xl/workbook.xml")),
        ("xl/workbook.xml", '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>'),
    ])
    office(out / f"office/talk-{n}.pptx", [
        ("[Content_Types].xml", CT.format(part="ppt/presentation.xml", ctype="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml")),
        ("_rels/.rels", RELS.format(part="ppt/presentation.xml")),
        ("ppt/presentation.xml", '<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>'),
    ])
    manifest = '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="{mt}"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    content = '<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" office:version="1.2"><office:body/></office:document-content>'
    for ext, mt in [("odt", "application/vnd.oasis.opendocument.text"), ("ods", "application/vnd.oasis.opendocument.spreadsheet")]:
        office(out / f"office/odf-{n}.{ext}", [("mimetype", mt), ("META-INF/manifest.xml", manifest.format(mt=mt)), ("content.xml", content)])


def texts(out, n):
    (out / f"text/notes-{n}.txt").write_text(f"Notes {n}\nA plain text file, line two.\n" * (n + 3))
    (out / f"text/utf8-{n}.txt").write_text(f"Café, naïve, Ünïcode — {n}\n" * 5, encoding="utf-8")
    (out / f"text/table-{n}.csv").write_text("id,name\n" + "".join(f"{i},item {i}\n" for i in range(n + 5)))
    (out / f"text/data-{n}.json").write_text(json.dumps({"n": n, "items": list(range(n + 3))}, indent=2))
    (out / f"text/record-{n}.xml").write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<record id="{n}"><title>Item {n}</title></record>\n')
    (out / f"text/page-{n}.html").write_text(f"<!DOCTYPE html>\n<html><head><title>Page {n}</title></head><body><p>Hello</p></body></html>\n")
    (out / f"text/old-{n}.html").write_text(f'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n<html><head><title>Old {n}</title></head><body><p>Hello</p></body></html>\n')
    (out / f"text/drawing-{n}.svg").write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{10 + n}" height="10"><rect width="5" height="5"/></svg>\n')
    (out / f"text/letter-{n}.rtf").write_text("{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}}\\f0 Letter %d\\par}\n" % n)


def compressed(out, n):
    payload = (f"compressed payload {n}\n" * 200).encode()
    (out / f"packed/data-{n}.gz").write_bytes(gzip.compress(payload))
    (out / f"packed/data-{n}.bz2").write_bytes(bz2.compress(payload))
    with zipfile.ZipFile(out / f"packed/bundle-{n}.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", payload)
        z.writestr("b/c.txt", payload[:100])
    with tarfile.open(out / f"packed/bundle-{n}.tar", "w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))


def fonts(out, n):
    found = sorted(p for p in Path("/usr/share/fonts").rglob("*") if p.suffix.lower() in (".ttf", ".otf")) if Path("/usr/share/fonts").exists() else []
    for p in found[n * 3:n * 3 + 3]:
        shutil.copy(p, out / "fonts" / p.name)


def main():
    out = Path(sys.argv[1])
    copies = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for sub in ["img", "pdf", "audio", "office", "text", "packed", "fonts"]:
        (out / sub).mkdir(parents=True, exist_ok=True)
    for n in range(copies):
        images(out, n)
        for v in ["1.3", "1.4", "1.5", "1.6", "1.7"]:
            (out / f"pdf/doc-{n}-{v}.pdf").write_bytes(pdf(v, f"Document {n} in PDF {v}"))
        audio(out, n)
        documents(out, n)
        texts(out, n)
        compressed(out, n)
        fonts(out, n)
    count = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"{count} files in {out}")


if __name__ == "__main__":
    main()
