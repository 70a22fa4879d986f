#!/usr/bin/env python3
"""Builds files with known properties, made by the real tools (Pillow, ImageMagick, Ghostscript),
and broken copies of them, for the tests that hold Vellum's validation and characterization to
the truth. Writes the files and `expected.json` into OUT:

    {"files": [{"name": ..., "made_by": ..., "validation": "Pass" | "Fail" | "partial pass" | null,
                "properties": {"width": "64", ...}, "absent": ["page_count"]}],
     "missing_tools": [...]}

A tool that is not installed is listed in `missing_tools` and its files are left out; the test
decides whether that may pass (it may not in CI).
"""
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib

import PIL
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
files = []
missing = []
rng = random.Random(17)


def add(name, data, made_by, validation, properties=None, absent=()):
    if data is not None:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    files.append(
        {
            "name": name,
            "made_by": made_by,
            "validation": validation,
            "properties": {k: str(v) for k, v in (properties or {}).items()},
            "absent": list(absent),
        }
    )


def pillow(image, fmt, **options):
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def gradient(mode, size):
    """A picture with detail in it, so compressed data is not trivially short."""
    image = Image.new(mode, size)
    points = [(x, y) for y in range(size[1]) for x in range(size[0])]
    if mode == "L":
        image.putdata([(x * 7 + y * 3) % 256 for x, y in points])
    else:
        image.putdata([((x * 7 + y * 3) % 256, (x * 5) % 256, (y * 11) % 256) for x, y in points])
    return image


pil = f"Pillow {PIL.__version__}"

# --- Good files, Pillow ---------------------------------------------------------------------
rgb = gradient("RGB", (64, 48))
add("pillow-rgb8.tiff", pillow(rgb, "TIFF"), pil, "Pass",
    {"width": 64, "height": 48, "bit_depth": 8, "samples_per_pixel": 3})
add("pillow-rgb8-lzw.tiff", pillow(rgb, "TIFF", compression="tiff_lzw"), pil, "Pass",
    {"width": 64, "height": 48, "bit_depth": 8, "samples_per_pixel": 3})
add("pillow-gray8.tiff", pillow(gradient("L", (30, 20)), "TIFF"), pil, "Pass",
    {"width": 30, "height": 20, "bit_depth": 8, "samples_per_pixel": 1})
pages = [gradient("RGB", (20, 10)), gradient("RGB", (10, 20))]
add("pillow-two-pages.tiff", pillow(pages[0], "TIFF", save_all=True, append_images=pages[1:]), pil, "Pass",
    {"width": 20, "height": 10})
add("pillow-rgb.png", pillow(rgb, "PNG"), pil, "Pass",
    {"width": 64, "height": 48, "bit_depth": 8, "bits_per_pixel": 24})
add("pillow-rgba-interlaced.png", pillow(gradient("RGB", (33, 17)).convert("RGBA"), "PNG", interlace=1), pil,
    "Pass", {"width": 33, "height": 17, "bit_depth": 8, "bits_per_pixel": 32})
jpeg = pillow(rgb, "JPEG", quality=90)
add("pillow-rgb.jpg", jpeg, pil, "Pass", {"width": 64, "height": 48, "bit_depth": 8, "components": 3})
add("pillow-progressive.jpg", pillow(rgb, "JPEG", quality=80, progressive=True), pil, "Pass",
    {"width": 64, "height": 48, "components": 3})
photo = Image.effect_mandelbrot((157, 93), (-2, -1.2, 1, 1.2), 60).convert("RGB")
add("pillow-420-optimized.jpg", pillow(photo, "JPEG", quality=70, subsampling=2, optimize=True), pil, "Pass",
    {"width": 157, "height": 93, "components": 3})
add("pillow-420-progressive.jpg", pillow(photo, "JPEG", quality=95, subsampling=2, progressive=True), pil, "Pass",
    {"width": 157, "height": 93, "components": 3})
add("pillow-gray.jpg", pillow(gradient("L", (31, 9)), "JPEG"), pil, "Pass",
    {"width": 31, "height": 9, "components": 1})
frames = [gradient("RGB", (24, 16)).convert("P"), Image.new("P", (24, 16), 3), Image.new("P", (24, 16), 9)]
add("pillow-animated.gif", pillow(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50), pil,
    "Pass", {"width": 24, "height": 16})
add("pillow-rgb.bmp", pillow(gradient("RGB", (33, 17)), "BMP"), pil, "Pass",
    {"width": 33, "height": 17, "bits_per_pixel": 24})
add("pillow-lossy.webp", pillow(rgb, "WEBP", quality=80), pil, "Pass", {"width": 64, "height": 48})
add("pillow-lossless.webp", pillow(rgb, "WEBP", lossless=True), pil, "Pass", {"width": 64, "height": 48})
pdf_pages = [gradient("RGB", (40, 30)) for _ in range(3)]
add("pillow-three-pages.pdf", pillow(pdf_pages[0], "PDF", save_all=True, append_images=pdf_pages[1:]), pil,
    "partial pass", {"page_count": 3, "pdf_version": "1.4", "encrypted": "false"})

# Sound, by Python's own wave module: 2 channels, 22,050 Hz, 16 bits, half a second.
import wave
buf = io.BytesIO()
with wave.open(buf, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(22050)
    w.writeframes(bytes(rng.getrandbits(8) for _ in range(22050 * 2 * 2 // 2)))
add("python-wave.wav", buf.getvalue(), f"Python {sys.version.split()[0]} wave", "partial pass",
    {"channels": 2, "sample_rate": 22050, "bits_per_sample": 16, "duration_seconds": "0.500"})
# The same recording cut short: its RIFF header declares more than the file holds.
add("python-wave-cut.wav", buf.getvalue()[:-1000], f"Python {sys.version.split()[0]} wave, cut", "Fail")

# --- Good files, ImageMagick and Ghostscript -----------------------------------------------
convert = "/usr/bin/convert"  # /usr/local/bin/convert may be a stand-in on these machines
if os.access(convert, os.X_OK):
    im = subprocess.run([convert, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    im = "ImageMagick " + im.split()[2] if im.startswith("Version: ImageMagick") else "ImageMagick"

    def magick(name, *args, size="40x25", source="gradient:red-blue"):
        path = os.path.join(out, name)
        subprocess.run([convert, "-size", size, source, *args, path], check=True)
        return None

    add("imagemagick-rgb8.tif", magick("imagemagick-rgb8.tif", "-depth", "8", "-type", "TrueColor"), im, "Pass",
        {"width": 40, "height": 25, "bit_depth": 8, "samples_per_pixel": 3})
    add("imagemagick-rgb16-zip.tif", magick("imagemagick-rgb16-zip.tif", "-depth", "16", "-type", "TrueColor",
                                            "-compress", "zip"), im, "Pass",
        {"width": 40, "height": 25, "bit_depth": 16, "samples_per_pixel": 3})
    add("imagemagick-rgb16.png", magick("imagemagick-rgb16.png", "-depth", "16", "-type", "TrueColor"), im, "Pass",
        {"width": 40, "height": 25, "bit_depth": 16, "bits_per_pixel": 48})
    add("imagemagick-progressive.jpg", magick("imagemagick-progressive.jpg", "-interlace", "JPEG"), im, "Pass",
        {"width": 40, "height": 25, "components": 3})
    add("imagemagick.gif", magick("imagemagick.gif"), im, "Pass", {"width": 40, "height": 25})
    # A bilevel page as scanners write them (CCITT Group 4): the tiff crate does not decode
    # it, and the record says so.
    add("imagemagick-g4.tif", magick("imagemagick-g4.tif", "-monochrome", "-compress", "Group4", **dict(size="200x100", source="plasma:fractal")), im, "partial pass",
        {"width": 200, "height": 100, "bit_depth": 1, "samples_per_pixel": 1})
    # JPEG coding variants a scan walk must follow: subsampling, restart intervals, CMYK,
    # progressive with subsampling and restarts.
    noise = dict(size="123x77", source="plasma:fractal")
    add("imagemagick-420-restarts.jpg",
        magick("imagemagick-420-restarts.jpg", "-sampling-factor", "2x2", "-define", "jpeg:restart-interval=2",
               **noise), im, "Pass", {"width": 123, "height": 77, "components": 3})
    add("imagemagick-cmyk.jpg", magick("imagemagick-cmyk.jpg", "-colorspace", "CMYK", **noise), im, "Pass",
        {"width": 123, "height": 77, "components": 4})
    add("imagemagick-progressive-422-restarts.jpg",
        magick("imagemagick-progressive-422-restarts.jpg", "-interlace", "JPEG", "-sampling-factor", "2x1",
               "-define", "jpeg:restart-interval=1", **noise), im, "Pass", {"width": 123, "height": 77})
    add("imagemagick-progressive-gray.jpg",
        magick("imagemagick-progressive-gray.jpg", "-interlace", "JPEG", "-colorspace", "Gray", **noise), im, "Pass",
        {"width": 123, "height": 77, "components": 1})
else:
    missing.append("ImageMagick (/usr/bin/convert)")

gs = shutil.which("gs")
if gs:
    version = subprocess.run([gs, "--version"], capture_output=True, text=True).stdout.strip()
    path = os.path.join(out, "ghostscript-five-pages.pdf")
    subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pdfwrite", f"-sOutputFile={path}", "-c",
                    "/Helvetica findfont 20 scalefont setfont " +
                    " ".join(f"72 720 moveto (page {n}) show showpage" for n in range(1, 6))],
                   check=True)
    add("ghostscript-five-pages.pdf", None, f"Ghostscript {version}", "partial pass",
        {"page_count": 5, "encrypted": "false"})
else:
    missing.append("Ghostscript (gs)")

# --- Broken files: each is what a probe found called "well-formed" -------------------------
add("broken-sof-past-end.jpg", b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x00", "hand-built", "Fail")
add("broken-soi-app0-eoi.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9",
    "hand-built", "Fail")
add("broken-random-body.jpg", b"\xff\xd8" + bytes(rng.getrandbits(8) for _ in range(4000)) + b"\xff\xd9",
    "hand-built", "Fail")
sos = jpeg.index(b"\xff\xda")
scan_start = sos + 2 + struct.unpack(">H", jpeg[sos + 2:sos + 4])[0]
noise = bytes(rng.getrandbits(8) for _ in range(len(jpeg) - scan_start - 2))
add("broken-random-scan.jpg", jpeg[:scan_start] + noise + b"\xff\xd9", f"{pil}, scan replaced by noise", "Fail")
add("broken-cut-scan.jpg", jpeg[: scan_start + (len(jpeg) - scan_start) // 3] + b"\xff\xd9",
    f"{pil}, scan cut to a third", "Fail")


def png_chunks(data):
    at, chunks = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append((data[at + 4:at + 8], data[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def png_build(chunks):
    body = b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in chunks)
    return b"\x89PNG\r\n\x1a\n" + body


png = pillow(rgb, "PNG")
chunks = png_chunks(png)
idat = b"".join(d for t, d in chunks if t == b"IDAT")
no_idat = [(t, d) for t, d in chunks if t != b"IDAT"]
add("broken-no-idat.png", png_build(no_idat), f"{pil}, IDAT removed", "Fail")
with_idat = lambda d: png_build([c for c in no_idat if c[0] != b"IEND"] + [(b"IDAT", d), (b"IEND", b"")])
add("broken-random-idat.png", with_idat(bytes(rng.getrandbits(8) for _ in range(len(idat)))),
    f"{pil}, IDAT replaced by noise", "Fail")
add("broken-cut-idat.png", with_idat(idat[: len(idat) // 2]), f"{pil}, IDAT cut in half", "Fail")
gif = pillow(frames[0], "GIF")
add("broken-cut.gif", gif[: len(gif) // 2] + b"\x3b", f"{pil}, cut in half", "Fail")
tiff = pillow(rgb, "TIFF")
add("broken-cut-strips.tiff", tiff[: len(tiff) // 3],
    f"{pil}, cut to a third", "Fail")
bmp = pillow(gradient("RGB", (33, 17)), "BMP")
add("broken-cut.bmp", bmp[: len(bmp) // 2], f"{pil}, cut in half", "Fail")
webp = pillow(rgb, "WEBP", quality=80)
add("broken-cut.webp", webp[: len(webp) // 2], f"{pil}, cut in half", "Fail")

# Declared sizes no decoder may be asked to hold: checked as far as the limits allow.
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
add("huge-declared.png", png_build([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0" * 1000)), (b"IEND", b"")]),
    "hand-built", "partial pass", {"width": 100000, "height": 100000})
sof = jpeg.index(b"\xff\xc0")
huge_jpeg = jpeg[: sof + 5] + struct.pack(">HH", 60000, 60000) + jpeg[sof + 9:]
add("huge-declared.jpg", huge_jpeg, f"{pil}, frame header says 60000×60000", "Fail",
    {"width": 60000, "height": 60000})
progressive = pillow(rgb, "JPEG", quality=80, progressive=True)
sof = progressive.index(b"\xff\xc2")
add("huge-declared-progressive.jpg",
    progressive[: sof + 5] + struct.pack(">HH", 60000, 60000) + progressive[sof + 9:],
    f"{pil}, progressive, frame header says 60000×60000", "partial pass", {"width": 60000, "height": 60000})


def pdf(objects, root=1, extra_trailer=b""):
    """A classic-xref PDF from numbered object bodies, offsets computed."""
    body = b"%PDF-1.7\n"
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, extra_trailer, xref)
    return body


add("broken-self-referencing-pages.pdf",
    pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2147483647 >>",
         b"<< /Type /Page /Parent 2 0 R >>"]),
    "hand-built", "Fail", absent=["page_count"])
add("broken-count-disagrees.pdf",
    pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 7 >>",
         b"<< /Type /Page /Parent 2 0 R >>"]),
    "hand-built", "Fail", absent=["page_count"])
add("hand-two-pages.pdf",
    pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
         b"<< /Type /Page /Parent 2 0 R >>", b"<< /Type /Page /Parent 2 0 R >>"]),
    "hand-built", "partial pass", {"page_count": 2, "pdf_version": "1.7"})
add("broken-header-only.pdf", b"%PDF-1.7\n", "hand-built", "Fail", {"pdf_version": "1.7"}, absent=["page_count"])
good = pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R >>"])
add("broken-xref-offsets.pdf", good.replace(b"%PDF-1.7\n", b"%PDF-1.7\n%% padding moves every object\n", 1),
    "hand-built", "Fail", absent=["page_count"])

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"files": files, "missing_tools": missing}, f, indent=1)
print(f"{len(files)} files in {out}" + (f"; missing: {', '.join(missing)}" if missing else ""))
