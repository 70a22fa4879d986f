//! Vellum's validators judged beside the field's tools.
//!
//! PDF: files Ghostscript and qpdf wrote (Flate and uncompressed content, object streams, a
//! JPEG image) are not failed, and hand-broken copies of them are — a content
//! stream whose Flate data is damaged, an object whose number is not the one its
//! cross-reference entry says, a stream whose /Length is wrong, a reference to an object the
//! file does not hold, a JPEG image cut short, a file cut short. qpdf (`--check`, which
//! decodes every stream) agrees on each file it judges so; the damaged JPEG, which qpdf does
//! not decode, is held to ImageMagick's reading of it, and the missing object (which qpdf
//! reads as null) to what the page tree needs.
//!
//! JPEG 2000: files ImageMagick and OpenJPEG wrote (one tile and many, JP2 and a raw
//! codestream) are not failed, and broken copies are — cut short, a tile-part's length made
//! wrong, EOC taken away, SIZ's width made zero, the codestream box made longer than the
//! file; OpenJPEG's `opj_decompress` fails each of them as well, or warns (a missing EOC),
//! but for the long box, whose codestream it decodes anyway.

use std::path::{Path, PathBuf};
use std::process::Command;

use vellum_core::analysis::pdf;
use vellum_core::analysis::verdict::Verdict;

fn verdict(path: &Path) -> Verdict {
    let size = std::fs::metadata(path).unwrap().len();
    pdf::check(std::io::BufReader::new(std::fs::File::open(path).unwrap()), size).verdict
}

/// qpdf's `--check`: 0 when it found nothing wrong.
/// Asserts that `verdict` fails the file (`what`) with a reason holding `words`.
fn fails_saying(verdict: Verdict, words: &str, what: &str) {
    match verdict {
        Verdict::Invalid(said) => assert!(said.contains(words), "{what}: {said}"),
        v => panic!("{what}, yet {v:?}"),
    }
}

fn qpdf_finds_nothing(path: &Path) -> bool {
    let out = Command::new("qpdf").arg("--check").arg(path).output().expect("qpdf (scripts/test installs it)");
    out.status.code() == Some(0)
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program).current_dir(dir).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Where the data of the first stream whose dictionary holds `key` starts, and how long it
/// is up to its `endstream`.
fn stream_with(bytes: &[u8], key: &[u8]) -> (usize, usize) {
    let at = find(bytes, key, 0).expect("a stream with the key");
    let mut data = find(bytes, b"stream", at).unwrap() + 6;
    if bytes[data] == b'\r' {
        data += 1;
    }
    if bytes[data] == b'\n' {
        data += 1;
    }
    let end = find(bytes, b"endstream", data).unwrap();
    let eol = bytes[data..end].iter().rev().take_while(|c| matches!(c, b'\r' | b'\n')).count();
    (data, end - eol - data)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
#[ignore = "needs Ghostscript, ImageMagick and qpdf; scripts/test runs it"]
fn broken_pdfs_fail_and_intact_ones_do_not_as_qpdf_and_imagemagick_judge_them() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    run(
        w,
        "gs",
        &[
            "-q",
            "-sDEVICE=pdfwrite",
            "-o",
            "text.pdf",
            "-c",
            "/Helvetica findfont 24 scalefont setfont 72 720 moveto (A letter of 1901) show showpage \
             72 720 moveto (Its second page) show showpage",
        ],
    );
    run(w, "convert", &["-size", "120x80", "gradient:red-blue", "photo.jpg"]);
    // Ghostscript's own viewjpeg.ps puts the JPEG into the PDF as it is (a DCT stream).
    run(
        w,
        "gs",
        &[
            "-q",
            "-sDEVICE=pdfwrite",
            "-o",
            "photo.pdf",
            "--permit-file-read=photo.jpg",
            "-c",
            "(viewjpeg.ps) runlibfile (photo.jpg) viewJPEG",
        ],
    );
    run(w, "qpdf", &["--object-streams=generate", "text.pdf", "object-streams.pdf"]);
    run(w, "qpdf", &["--stream-data=uncompress", "text.pdf", "uncompressed.pdf"]);
    run(w, "qpdf", &["--qdf", "--object-streams=disable", "text.pdf", "qdf.pdf"]);

    let intact = ["text.pdf", "photo.pdf", "object-streams.pdf", "uncompressed.pdf", "qdf.pdf"];
    for name in intact {
        let path = w.join(name);
        assert!(qpdf_finds_nothing(&path), "qpdf finds {name} intact");
        let v = verdict(&path);
        assert!(matches!(v, Verdict::Limited(_)), "{name} is not failed: {v:?}");
    }
    match verdict(&w.join("photo.pdf")) {
        Verdict::Limited(said) => assert!(said.contains("1 JPEG images are well-formed"), "{said}"),
        v => panic!("{v:?}"),
    }

    // Broken copies, each keeping every offset, so only the damage named is wrong.
    let text = std::fs::read(w.join("qdf.pdf")).unwrap();
    let mut broken: Vec<(PathBuf, &str)> = Vec::new();
    let missing_object;
    {
        let flated = std::fs::read(w.join("text.pdf")).unwrap();
        let (data, len) = stream_with(&flated, b"/FlateDecode");
        let mut b = flated.clone();
        for byte in &mut b[data + len / 3..data + len / 3 + 4] {
            *byte ^= 0x5a;
        }
        broken.push((write(w, "damaged-flate.pdf", &b), "does not decode"));
    }
    {
        // qdf's objects are numbered in order: the last object's number made one more.
        let mut b = text.clone();
        let xref = rfind(&b, b"\nxref").unwrap();
        let at = rfind(&b[..xref], b" 0 obj").unwrap();
        let start = b[..at].iter().rposition(|c| !c.is_ascii_digit()).unwrap() + 1;
        let number: u32 = std::str::from_utf8(&b[start..at]).unwrap().parse().unwrap();
        let other = (number + 1).to_string();
        assert_eq!(other.len(), at - start, "the same width");
        b[start..at].copy_from_slice(other.as_bytes());
        broken.push((write(w, "wrong-number.pdf", &b), "is not at the offset"));
    }
    {
        // A direct /Length (qpdf writes them so) made wrong by one.
        let mut b = std::fs::read(w.join("uncompressed.pdf")).unwrap();
        let at = find(&b, b"/Length ", 0).unwrap() + 8;
        let end = at + b[at..].iter().position(|c| !c.is_ascii_digit()).unwrap();
        assert!(!b[end..].starts_with(b" 0 R"), "a direct /Length");
        let len: usize = std::str::from_utf8(&b[at..end]).unwrap().parse().unwrap();
        let wrong = if (len + 1).to_string().len() == end - at { len + 1 } else { len - 1 };
        b[at..end].copy_from_slice(wrong.to_string().as_bytes());
        broken.push((write(w, "wrong-length.pdf", &b), "with endstream"));
    }
    {
        // The page's /Parent (or any reference) made to name an object the file lacks.
        // qdf indents each key: the two spaces before it make room for a wider number.
        let mut b = text.clone();
        let key = find(&b, b"/Parent ", 0).unwrap();
        assert_eq!(&b[key - 2..key], b"  ", "qdf's indentation");
        let at = key + 8;
        let end = at + b[at..].iter().position(|c| !c.is_ascii_digit()).unwrap();
        let mut edited = b"/Parent ".to_vec();
        edited.extend(std::iter::repeat_n(b'9', end - at + 2));
        b[key - 2..end].copy_from_slice(&edited);
        missing_object = write(w, "missing-object.pdf", &b);
    }
    {
        let b = std::fs::read(w.join("text.pdf")).unwrap();
        broken.push((write(w, "cut-short.pdf", &b[..b.len() * 2 / 3]), ""));
    }
    for (path, why) in &broken {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!qpdf_finds_nothing(path), "qpdf finds {name} broken");
        fails_saying(verdict(path), why, &format!("{name} is broken"));
    }

    // qpdf reads a reference to a missing object as null, as the standard lets a reader; a
    // page whose /Parent is null is no page of a tree, and poppler and veraPDF report such
    // references: Vellum fails it.
    fails_saying(verdict(&missing_object), "not in the cross-reference", "a page whose parent is missing");

    // A JPEG image cut short inside its stream (its length kept): qpdf does not decode images;
    // ImageMagick, reading the image alone, finds it damaged, and so does Vellum.
    let photo = std::fs::read(w.join("photo.pdf")).unwrap();
    let (data, len) = stream_with(&photo, b"/DCTDecode");
    let mut b = photo.clone();
    let cut = data + len * 2 / 3;
    b[cut..data + len].fill(0);
    b[cut..cut + 2].copy_from_slice(&[0xFF, 0xD9]);
    let image = write(w, "image.jpg", &b[data..data + len]);
    let magick = Command::new("convert").arg("-regard-warnings").arg(&image).arg("null:").output().unwrap();
    assert!(!magick.status.success(), "ImageMagick finds the image damaged");
    fails_saying(verdict(&write(w, "damaged-jpeg.pdf", &b)), "JPEG image in stream object", "a damaged JPEG inside");
}

/// Whether OpenJPEG decodes the file without an error or a warning.
fn opj_decodes(path: &Path, dir: &Path) -> bool {
    let out = dir.join("decoded.ppm");
    let _ = std::fs::remove_file(&out);
    let run = Command::new("opj_decompress")
        .arg("-i")
        .arg(path)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("opj_decompress (OpenJPEG; scripts/test installs it)");
    let said = String::from_utf8_lossy(&run.stdout) + String::from_utf8_lossy(&run.stderr);
    run.status.success() && !said.contains("[WARNING]") && !said.contains("[ERROR]")
}

fn jp2_verdict(path: &Path) -> Verdict {
    let size = std::fs::metadata(path).unwrap().len();
    vellum_core::analysis::jp2::check(std::io::BufReader::new(std::fs::File::open(path).unwrap()), size)
}

#[test]
#[ignore = "needs ImageMagick and OpenJPEG; scripts/test runs it"]
fn broken_jpeg_2000_files_fail_and_intact_ones_do_not_as_openjpeg_judges_them() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    run(w, "convert", &["-size", "200x150", "gradient:red-blue", "picture.ppm"]);
    run(w, "convert", &["picture.ppm", "magick.jp2"]);
    run(w, "opj_compress", &["-i", "picture.ppm", "-o", "tiled.jp2", "-t", "64,64"]);
    run(w, "opj_compress", &["-i", "picture.ppm", "-o", "raw.j2k", "-n", "3"]);
    for name in ["magick.jp2", "tiled.jp2", "raw.j2k"] {
        let path = w.join(name);
        assert!(opj_decodes(&path, w), "OpenJPEG decodes {name}");
        match jp2_verdict(&path) {
            Verdict::Limited(said) => assert!(said.contains("EOC"), "{name}: {said}"),
            v => panic!("{name} is intact, yet {v:?}"),
        }
    }
    match jp2_verdict(&w.join("tiled.jp2")) {
        Verdict::Limited(said) => assert!(said.contains("its 12 tile-parts for 12 tiles"), "{said}"),
        v => panic!("{v:?}"),
    }

    let tiled = std::fs::read(w.join("tiled.jp2")).unwrap();
    let raw = std::fs::read(w.join("raw.j2k")).unwrap();
    let codestream = find(&tiled, b"jp2c", 0).unwrap() + 4;
    let mut broken: Vec<(PathBuf, &str)> = Vec::new();
    let long_box;
    broken.push((write(w, "cut-short.jp2", &tiled[..tiled.len() * 3 / 4]), ""));
    {
        // The second tile-part's Psot made a byte longer.
        let mut b = tiled.clone();
        let first = find(&b, &[0xFF, 0x90], codestream).unwrap();
        let second = find(&b, &[0xFF, 0x90], first + 2).unwrap();
        let psot = u32::from_be_bytes(b[second + 6..second + 10].try_into().unwrap());
        b[second + 6..second + 10].copy_from_slice(&(psot + 1).to_be_bytes());
        broken.push((write(w, "wrong-tile-part-length.jp2", &b), "a tile-part should start"));
    }
    {
        let mut b = raw.clone();
        let n = b.len();
        b[n - 2..].copy_from_slice(&[0, 0]);
        broken.push((write(w, "no-eoc.j2k", &b), "EOC"));
    }
    {
        // SIZ's Xsiz (after SOC, SIZ, Lsiz and Rsiz) made zero.
        let mut b = raw.clone();
        b[8..12].copy_from_slice(&[0, 0, 0, 0]);
        broken.push((write(w, "zero-width.j2k", &b), "SIZ"));
    }
    {
        let mut b = tiled.clone();
        let len_at = codestream - 8;
        let len = u32::from_be_bytes(b[len_at..len_at + 4].try_into().unwrap());
        b[len_at..len_at + 4].copy_from_slice(&(len + 100).to_be_bytes());
        long_box = write(w, "long-box.jp2", &b);
    }
    for (path, why) in &broken {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!opj_decodes(path, w), "OpenJPEG fails {name}, or warns of it");
        fails_saying(jp2_verdict(path), why, &format!("{name} is broken"));
    }
    // A box that says it runs past the file's end: the file was cut or its header damaged.
    // OpenJPEG decodes the codestream it finds there anyway; Vellum fails it.
    fails_saying(jp2_verdict(&long_box), "past the end of the file", "a box longer than the file");
}

/// A ZIP that is an office document or an e-book: the parts its format requires must be
/// there (and OpenDocument's and EPUB's `mimetype` first, stored, saying the right type);
/// the member CRCs alone do not make one.
#[test]
fn zip_based_formats_need_the_parts_their_format_requires() {
    use vellum_core::analysis::techmd::{validate, Kind, ZipPackage};
    fn zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut out);
        for (name, bytes, stored) in entries {
            let method = if *stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
            z.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
            std::io::Write::write_all(&mut z, bytes).unwrap();
        }
        z.finish().unwrap();
        out.into_inner()
    }
    let judge = |package: ZipPackage, bytes: Vec<u8>| {
        let size = bytes.len() as u64;
        validate(Kind::ZipPackage(package), std::io::Cursor::new(bytes), size, &mut Default::default())
    };
    let xml: &[u8] = b"<?xml version=\"1.0\"?><x/>";
    let docx = [("[Content_Types].xml", xml, false), ("_rels/.rels", xml, false), ("word/document.xml", xml, false)];
    assert_eq!(judge(ZipPackage::OfficeOpenXml, zip(&docx)), Verdict::WellFormed);
    fails_saying(
        judge(ZipPackage::OfficeOpenXml, zip(&docx[1..])),
        "[Content_Types].xml",
        "a docx without its content types",
    );
    let odt: [(&str, &[u8], bool); 3] = [
        ("mimetype", b"application/vnd.oasis.opendocument.text", true),
        ("META-INF/manifest.xml", xml, false),
        ("content.xml", xml, false),
    ];
    assert_eq!(judge(ZipPackage::OpenDocument, zip(&odt)), Verdict::WellFormed);
    let late = [odt[1], odt[0], odt[2]];
    assert!(matches!(judge(ZipPackage::OpenDocument, zip(&late)), Verdict::Invalid(w) if w.contains("first entry")));
    let squeezed = [("mimetype", odt[0].1, false), odt[1], odt[2]];
    assert!(matches!(judge(ZipPackage::OpenDocument, zip(&squeezed)), Verdict::Invalid(w) if w.contains("stored")));
    let epub: [(&str, &[u8], bool); 2] =
        [("mimetype", b"application/epub+zip", true), ("META-INF/container.xml", xml, false)];
    assert_eq!(judge(ZipPackage::Epub, zip(&epub)), Verdict::WellFormed);
    let wrong = [("mimetype", b"application/zip".as_slice(), true), epub[1]];
    assert!(
        matches!(judge(ZipPackage::Epub, zip(&wrong)), Verdict::Invalid(w) if w.contains("not application/epub+zip"))
    );
}

/// A JPEG whose frame header lies past the first 256 KiB (behind large comment or Exif
/// segments) still gets its dimensions: the validator's walk reports the frame it reached.
#[test]
#[ignore = "needs ImageMagick; scripts/test runs it"]
fn a_jpeg_frame_header_past_the_head_still_gives_the_dimensions() {
    use vellum_core::analysis::techmd::{characteristics, validate, Kind, HEAD};
    let work = tempfile::tempdir().unwrap();
    run(work.path(), "convert", &["-size", "97x41", "gradient:red-blue", "small.jpg"]);
    let small = std::fs::read(work.path().join("small.jpg")).unwrap();
    let mut jpeg = small[..2].to_vec();
    for _ in 0..5 {
        jpeg.extend_from_slice(&[0xFF, 0xFE, 0xFF, 0xFF]);
        jpeg.extend(std::iter::repeat_n(b'c', 0xFFFF - 2));
    }
    jpeg.extend_from_slice(&small[2..]);
    let head = &jpeg[..HEAD];
    let mut facts = characteristics(Kind::Jpeg, head, &jpeg[jpeg.len() - 1024..], jpeg.len() as u64);
    assert!(!facts.contains_key("width"), "the head alone holds no frame header");
    let size = jpeg.len() as u64;
    let verdict = validate(Kind::Jpeg, std::io::Cursor::new(jpeg), size, &mut facts);
    assert_eq!(verdict, Verdict::WellFormed);
    assert_eq!(facts.get("width").map(String::as_str), Some("97"));
    assert_eq!(facts.get("height").map(String::as_str), Some("41"));
}
