//! Normalization, end to end in embedded mode with the field's own tools (ImageMagick,
//! FFmpeg, Ghostscript): each original whose format the rules name gets a preservation copy
//! of the rule's kind beside it in the AIP, identified and digested, linked to its original
//! in the METS both ways; formats already fit get none; access copies and thumbnails make a
//! DIP in Archivematica's layout beside the AIP; a file no tool can convert is recorded with
//! the tool's words, and the transfer still completes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vellum_core::config::fpr::{Purpose, Rule};
use vellum_core::model::TransferStatus;
use vellum_core::ports::{EventLog, FileCatalogue, JobLedger, ObjectStore, ToolOutput, ToolRunner};
use vellum_tests::{bagit_validate, made_by, rule_running, unpack_aip, Package, TestEnv};

/// A scan as a scanner's software writes one: a PDF page that is only a JPEG image, no
/// text of its own.
fn scanned_pdf(jpeg: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |pdf: &mut Vec<u8>, head: String, stream: Option<&[u8]>| {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{head}\n", offsets.len()).as_bytes());
        if let Some(bytes) = stream {
            pdf.extend_from_slice(b"stream\n");
            pdf.extend_from_slice(bytes);
            pdf.extend_from_slice(b"\nendstream\n");
        }
        pdf.extend_from_slice(b"endobj\n");
    };
    let draw = format!("q {width} 0 0 {height} 0 0 cm /Im0 Do Q");
    object(&mut pdf, "<< /Type /Catalog /Pages 2 0 R >>".into(), None);
    object(&mut pdf, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(), None);
    object(
        &mut pdf,
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] \
             /Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>"
        ),
        None,
    );
    object(
        &mut pdf,
        format!(
            "<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceGray \
             /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>",
            jpeg.len()
        ),
        Some(jpeg),
    );
    object(&mut pdf, format!("<< /Length {} >>", draw.len()), Some(draw.as_bytes()));
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for offset in &offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes(),
    );
    pdf
}

/// What ffprobe says a media file's streams are encoded with.
fn codecs(path: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe (FFmpeg)");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

#[test]
#[ignore = "needs ImageMagick, FFmpeg, Ghostscript, ExifTool, MediaInfo and the project's Python; scripts/test runs it"]
fn originals_get_preservation_copies_linked_both_ways_a_dip_beside_the_aip_and_failures_recorded() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let originals: BTreeMap<&str, Vec<u8>> = BTreeMap::from([
        (
            "objects/photos/photo.jpg",
            made_by(w, "photo.jpg", "convert", &["-size", "64x48", "gradient:red-blue", "photo.jpg"]),
        ),
        ("objects/scan.png", made_by(w, "scan.png", "convert", &["-size", "32x32", "xc:green", "scan.png"])),
        (
            "objects/letter.png",
            made_by(
                w,
                "letter.png",
                "convert",
                &[
                    "-size",
                    "600x120",
                    "xc:white",
                    "-fill",
                    "black",
                    "-pointsize",
                    "48",
                    "-annotate",
                    "+20+80",
                    "Wellcome letters",
                    "letter.png",
                ],
            ),
        ),
        (
            "objects/report.pdf",
            made_by(
                w,
                "report.pdf",
                "gs",
                &[
                    "-q",
                    "-sDEVICE=pdfwrite",
                    "-o",
                    "report.pdf",
                    "-c",
                    "/Helvetica findfont 12 scalefont setfont 72 720 moveto (Report) show showpage",
                ],
            ),
        ),
        (
            "objects/sound/tone.mp3",
            made_by(
                w,
                "tone.mp3",
                "ffmpeg",
                &["-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "tone.mp3"],
            ),
        ),
        (
            "objects/clip.mp4",
            made_by(
                w,
                "clip.mp4",
                "ffmpeg",
                &[
                    "-v",
                    "error",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=duration=1:size=64x48:rate=5",
                    "-pix_fmt",
                    "yuv420p",
                    "clip.mp4",
                ],
            ),
        ),
        (
            "objects/sound/fit.wav",
            made_by(
                w,
                "fit.wav",
                "ffmpeg",
                &["-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=1", "fit.wav"],
            ),
        ),
        ("objects/notes.txt", b"Notes on the papers.\n".to_vec()),
        ("objects/scans/minutes.pdf", {
            let page = made_by(
                w,
                "minutes.jpg",
                "convert",
                &[
                    "-size",
                    "900x200",
                    "xc:white",
                    "-fill",
                    "black",
                    "-pointsize",
                    "64",
                    "-annotate",
                    "+30+120",
                    "Committee minutes",
                    "-colorspace",
                    "Gray",
                    "minutes.jpg",
                ],
            );
            scanned_pdf(&page, 900, 200)
        }),
        ("objects/anim.gif", made_by(w, "anim.gif", "convert", &["-size", "40x30", "xc:blue", "anim.gif"])),
        (
            "objects/scans/page.tif",
            made_by(w, "page.tif", "convert", &["-size", "40x30", "xc:white", "-compress", "None", "page.tif"]),
        ),
        ("objects/bundle.zip", {
            let mut out = std::io::Cursor::new(Vec::new());
            let mut zip = zip::ZipWriter::new(&mut out);
            zip.start_file("inside.txt", zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, b"a letter in a zip\n").unwrap();
            zip.finish().unwrap();
            out.into_inner()
        }),
        // A GIF's signature over nothing a decoder can read: no tool can convert it.
        ("objects/broken.gif", b"GIF89a\x10\x00\x10\x00 no picture follows this header;".to_vec()),
    ]);
    let mut package = Package::default();
    package.add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/NORM/1,Normalized papers\n");
    for (name, bytes) in &originals {
        package.add(name, bytes.clone());
    }

    let mut options = vellum_tests::options_with_copies(true);
    options.settings.batch_size = Some(3);
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, "born-digital/normalized.zip");
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);

    let dest = t.dir.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(transfer.aip_key.as_ref().unwrap()), &dest);
    bagit_validate(&bag).expect("the AIP is a valid bag");
    for (name, bytes) in &originals {
        assert_eq!(&std::fs::read(bag.join("data").join(name)).unwrap(), bytes, "{name} is kept byte for byte");
    }

    // A copy beside each original the rules name, <stem>-<uuid>.<ext>, of the rule's kind.
    let state = t.env.state.as_ref();
    let files = state.all_files(transfer.id).unwrap();
    let copies: BTreeMap<String, &vellum_core::model::File> = files
        .iter()
        .filter(|f| f.file_use == vellum_core::model::FileUse::Preservation)
        .map(|f| {
            let source = files.iter().find(|o| Some(o.uuid) == f.source).expect("a copy names its original");
            (source.current_path.clone(), f)
        })
        .collect();
    let copied: Vec<&str> = copies.keys().map(String::as_str).collect();
    assert_eq!(
        copied,
        [
            "objects/anim.gif",
            "objects/clip.mp4",
            "objects/letter.png",
            "objects/photos/photo.jpg",
            "objects/report.pdf",
            "objects/scan.png",
            "objects/scans/minutes.pdf",
            "objects/sound/tone.mp3"
        ],
        "a copy for each format the rules name, none for TIFF, WAV, text, the zip or the broken GIF"
    );
    let copy_path = |original: &str| -> PathBuf {
        let copy = copies[original];
        let stem = Path::new(original).file_stem().unwrap().to_str().unwrap();
        assert!(
            copy.current_path.starts_with(&format!(
                "{}/{stem}-{}.",
                Path::new(original).parent().unwrap().display(),
                copy.uuid
            )),
            "named as Archivematica names it: {}",
            copy.current_path
        );
        bag.join("data").join(&copy.current_path)
    };
    for image in ["objects/photos/photo.jpg", "objects/scan.png"] {
        let tiff = std::fs::read(copy_path(image)).unwrap();
        assert!(tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*"), "{image}: a TIFF");
        assert_eq!(copies[image].format.as_ref().map(|f| f.puid.as_str()), Some("fmt/353"), "identified as TIFF");
        let identify = Command::new("identify").args(["-format", "%C"]).arg(copy_path(image)).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&identify.stdout), "None", "{image}: uncompressed");
    }
    let pdfa = std::fs::read(copy_path("objects/report.pdf")).unwrap();
    assert!(pdfa.starts_with(b"%PDF-"), "a PDF");
    assert!(String::from_utf8_lossy(&pdfa).contains("pdfaid:part"), "declaring PDF/A in its XMP");
    assert_eq!(codecs(&copy_path("objects/sound/tone.mp3")), ["pcm_s16le"], "the MP3 as PCM WAV");
    assert!(copy_path("objects/sound/tone.mp3").extension().is_some_and(|e| e == "wav"));
    assert_eq!(codecs(&copy_path("objects/clip.mp4")), ["ffv1"], "the MP4's video as FFV1");
    assert!(
        std::fs::read(copy_path("objects/clip.mp4")).unwrap().starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
        "in Matroska"
    );
    for copy in copies.values() {
        let bytes = std::fs::read(bag.join("data").join(&copy.current_path)).unwrap();
        assert_eq!(copy.sha256(), Some(vellum_tests::sha256_hex(&bytes).as_str()), "its digest is its bytes'");
    }

    // The video's copy checked against the FFV1/Matroska policy by MediaConch.
    let clip_copy = copies["objects/clip.mp4"];
    let policy_check = state
        .all_events(transfer.id)
        .unwrap()
        .into_iter()
        .find(|e| {
            e.file_uuid == Some(clip_copy.uuid) && e.event_type == "validation" && e.detail.contains("mediaconch")
        })
        .expect("a MediaConch validation event on the Matroska copy");
    assert_eq!(policy_check.outcome, vellum_core::model::EventOutcome::Pass, "{}", policy_check.outcome_detail);
    assert!(
        policy_check.detail.contains("policy=\"ffv1-mkv-preservation.xml\"")
            && !policy_check.detail.contains("version=\"unknown\"")
    );
    assert!(policy_check.outcome_detail.starts_with("pass!"), "MediaConch's report: {}", policy_check.outcome_detail);

    // Each copy characterized like an original, by the rules' tools for its format.
    let events = state.all_events(transfer.id).unwrap();
    for (original, tool) in [
        ("objects/scan.png", "exiftool"),
        ("objects/report.pdf", "exiftool"),
        ("objects/sound/tone.mp3", "mediainfo"),
        ("objects/clip.mp4", "mediainfo"),
    ] {
        let copy = copies[original];
        let extracted = events
            .iter()
            .find(|e| {
                e.file_uuid == Some(copy.uuid) && e.event_type == "metadata extraction" && e.detail.contains(tool)
            })
            .unwrap_or_else(|| panic!("{tool} ran on the copy of {original} (scripts/test installs it)"));
        assert_eq!(extracted.outcome, vellum_core::model::EventOutcome::Positive, "{}", extracted.outcome_detail);
        assert!(
            copy.characteristics.keys().any(|k| k.starts_with(tool)),
            "{tool}'s output kept with the copy of {original}: {:?}",
            copy.characteristics.keys()
        );
    }

    // The record: normalization events on the originals, the failure said with the tool's words.
    let normalization = |path: &str| {
        let file = files.iter().find(|f| f.current_path == path).unwrap();
        events.iter().find(|e| e.file_uuid == Some(file.uuid) && e.event_type == "normalization").cloned()
    };
    for original in copies.keys() {
        let e = normalization(original).unwrap_or_else(|| panic!("{original} has a normalization event"));
        assert!(e.detail.contains("purpose=\"preservation\""), "{}", e.detail);
        assert_eq!(e.outcome, vellum_core::model::EventOutcome::Positive);
        assert!(e.detail.contains("version=\"") && !e.detail.contains("version=\"unknown\""), "{}", e.detail);
    }
    let failed = events
        .iter()
        .find(|e| {
            e.event_type == "normalization"
                && e.detail.contains("purpose=\"preservation\"")
                && e.file_uuid == Some(files.iter().find(|f| f.current_path == "objects/broken.gif").unwrap().uuid)
        })
        .cloned()
        .expect("the broken GIF's attempt is recorded");
    assert_eq!(failed.outcome, vellum_core::model::EventOutcome::Fail);
    assert!(failed.outcome_detail.contains("convert"), "the tool's words: {}", failed.outcome_detail);
    assert!(normalization("objects/notes.txt").is_none(), "no rule for plain text");

    // The METS: a preservation fileGrp, derivation both ways, the event linking both.
    let mets_path = bag.join(format!("data/METS.{}.xml", transfer.aip_uuid));
    let mets = std::fs::read_to_string(&mets_path).unwrap();
    let doc = roxmltree::Document::parse(&mets).unwrap();
    let group = doc
        .descendants()
        .find(|n| n.has_tag_name("fileGrp") && n.attribute("USE") == Some("preservation"))
        .expect("a preservation fileGrp");
    assert_eq!(group.children().filter(|n| n.has_tag_name("file")).count(), 8);
    for (original, copy) in &copies {
        let source = files.iter().find(|f| &f.current_path == original).unwrap();
        assert!(
            mets.contains(&format!("<premis:relationshipSubType>has source</premis:relationshipSubType><premis:relatedObjectIdentifier><premis:relatedObjectIdentifierType>UUID</premis:relatedObjectIdentifierType><premis:relatedObjectIdentifierValue>{}</premis:relatedObjectIdentifierValue>", source.uuid)),
            "{original}'s copy names it as its source"
        );
        assert!(
            mets.contains(&format!("<premis:relationshipSubType>is source of</premis:relationshipSubType><premis:relatedObjectIdentifier><premis:relatedObjectIdentifierType>UUID</premis:relatedObjectIdentifierType><premis:relatedObjectIdentifierValue>{}</premis:relatedObjectIdentifierValue>", copy.uuid)),
            "{original} names its copy"
        );
        assert!(
            mets.contains(&format!("<premis:linkingObjectIdentifierValue>{}</premis:linkingObjectIdentifierValue><premis:linkingObjectRole>outcome</premis:linkingObjectRole>", copy.uuid)),
            "{original}'s normalization event links its copy"
        );
    }
    // The DIP: an access copy of each image, sound, video and PDF, a thumbnail of each image
    // and video, and the METS, named as Archivematica names them.
    let dip = t.env.dips.root().join(transfer.dip_key.as_deref().expect("a DIP stored with the AIP"));
    assert_eq!(dip.file_name().unwrap().to_str().unwrap(), format!("normalized-{}", transfer.sip_uuid));
    let uuid_of = |path: &str| files.iter().find(|f| f.current_path == path).unwrap().uuid;
    let access = |path: &str, ext: &str| {
        let stem = Path::new(path).file_stem().unwrap().to_str().unwrap();
        std::fs::read(dip.join(format!("objects/{}-{stem}.{ext}", uuid_of(path))))
            .unwrap_or_else(|e| panic!("{path}'s access copy: {e}"))
    };
    for image in ["objects/photos/photo.jpg", "objects/scan.png"] {
        assert!(access(image, "jpg").starts_with(&[0xFF, 0xD8, 0xFF]), "{image}: a JPEG access copy");
    }
    assert_eq!(access("objects/report.pdf", "pdf"), originals["objects/report.pdf"], "a PDF is its own access copy");
    assert_eq!(access("objects/sound/tone.mp3", "mp3"), originals["objects/sound/tone.mp3"]);
    let fit = dip.join(format!("objects/{}-fit.mp3", uuid_of("objects/sound/fit.wav")));
    assert_eq!(codecs(&fit), ["mp3"], "a WAV's access copy is an MP3");
    assert_eq!(access("objects/clip.mp4", "mp4"), originals["objects/clip.mp4"]);
    for shown in ["objects/photos/photo.jpg", "objects/scan.png", "objects/clip.mp4"] {
        let thumbnail = std::fs::read(dip.join(format!("thumbnails/{}.jpg", uuid_of(shown)))).unwrap();
        assert!(thumbnail.starts_with(&[0xFF, 0xD8, 0xFF]), "{shown}: a JPEG thumbnail");
    }
    let mut thumbnails: Vec<_> =
        std::fs::read_dir(dip.join("thumbnails")).unwrap().map(|e| e.unwrap().file_name()).collect();
    thumbnails.sort();
    assert_eq!(thumbnails.len(), 6, "one for each image and video, none for sound, text or PDF: {thumbnails:?}");
    assert!(
        dip.join(format!("objects/{}-page.jpg", uuid_of("objects/scans/page.tif"))).exists(),
        "a TIFF's access copy"
    );
    assert_eq!(
        std::fs::read(dip.join(format!("METS.{}.xml", transfer.sip_uuid))).unwrap(),
        std::fs::read(&mets_path).unwrap(),
        "the DIP carries the AIP's METS"
    );
    assert!(
        !dip.join("objects").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("notes")),
        "no access copy of plain text"
    );
    let failed_purposes: Vec<String> = events
        .iter()
        .filter(|e| e.event_type == "normalization" && e.outcome == vellum_core::model::EventOutcome::Fail)
        .map(|e| e.detail.rsplit("purpose=").next().unwrap().to_string())
        .collect();
    assert_eq!(
        failed_purposes.len(),
        3,
        "the broken GIF: preservation, access and thumbnail each recorded: {failed_purposes:?}"
    );
    assert_eq!(vellum_core::record::normalization::not_normalized(state, transfer.id).unwrap().len(), 1, "one file");

    // OCR: the letter's words in its transcription, kept where Archivematica keeps them, a
    // transcription event on each image, and the text files in their own fileGrp.
    let letter = uuid_of("objects/letter.png");
    let ocr_path = format!("objects/metadata/OCRfiles/letter.png-{letter}.txt");
    let text =
        std::fs::read_to_string(bag.join("data").join(&ocr_path)).expect("the letter's transcription in the AIP");
    assert!(text.contains("Wellcome letters"), "the OCR text holds the image's words: {text:?}");
    let ocr_file = files.iter().find(|f| f.current_path == ocr_path).expect("the transcription is a file of the AIP");
    assert_eq!(ocr_file.source, Some(letter));
    assert_eq!(ocr_file.sha256(), Some(vellum_tests::sha256_hex(text.as_bytes()).as_str()));
    // A scanned PDF, a page that is only a picture: rendered by Ghostscript, then read.
    let minutes = uuid_of("objects/scans/minutes.pdf");
    let scanned =
        std::fs::read_to_string(bag.join("data").join(format!("objects/metadata/OCRfiles/minutes.pdf-{minutes}.txt")))
            .expect("the scanned PDF's transcription in the AIP");
    assert!(scanned.contains("Committee minutes"), "the OCR text holds the scan's words: {scanned:?}");
    for image in ["objects/letter.png", "objects/photos/photo.jpg", "objects/scan.png", "objects/scans/minutes.pdf"] {
        let e = events
            .iter()
            .find(|e| e.file_uuid == Some(uuid_of(image)) && e.event_type == "transcription")
            .unwrap_or_else(|| panic!("{image} has a transcription event"));
        assert_eq!(e.outcome, vellum_core::model::EventOutcome::Positive, "{image}: {}", e.outcome_detail);
        assert!(e.detail.contains("tesseract") && !e.detail.contains("version=\"unknown\""), "{}", e.detail);
    }
    // The zip inside, unpacked into the AIP.
    let bundle = uuid_of("objects/bundle.zip");
    let inside = files.iter().find(|f| f.source == Some(bundle)).expect("the zip's file, unpacked");
    assert_eq!(std::fs::read(bag.join("data").join(&inside.current_path)).unwrap(), b"a letter in a zip\n");
    let ocr_group = doc
        .descendants()
        .find(|n| n.has_tag_name("fileGrp") && n.attribute("USE") == Some("text/ocr"))
        .expect("a text/ocr fileGrp");
    assert_eq!(
        ocr_group.children().filter(|n| n.has_tag_name("file")).count(),
        7,
        "one a readable image or PDF, words or none"
    );

    // The archivist's answer beside the upload says which files got no copy, and where the DIP is.
    let logs = t.env.uploads.list("born-digital/normalized.zip.success.").unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut t.env.uploads.get(&logs[0].key).unwrap(), &mut log).unwrap();
    assert!(log.contains("No copy could be made of 1 file(s)") && log.contains("objects/broken.gif"), "{log}");
    assert!(log.contains(&format!("normalized-{}/", transfer.sip_uuid)), "{log}");

    // The dashboard: the DIP in the transfer's API record and on its page.
    let key = format!("ApiKey archivist:{}", t.api_key("archivist", None));
    let d = t.dashboard(false);
    let ask = |path: &str, accept: &str| {
        d.handle(&vellum_dashboard::Request::get(path).with_header("Authorization", &key).with_header("Accept", accept))
    };
    let record: serde_json::Value =
        serde_json::from_slice(&ask(&format!("/api/transfers/{}", transfer.id), "application/json").body).unwrap();
    assert_eq!(record["summary"]["dip"].as_str(), transfer.dip_key.as_deref(), "{record}");
    assert_eq!(transfer.files_not_normalized, Some(1), "counted by the METS stage");
    assert_eq!(record["summary"]["files_not_normalized"], 1, "{record}");
    let listed: serde_json::Value =
        serde_json::from_slice(&ask(&format!("/api/transfers/{}/dip", transfer.id), "application/json").body).unwrap();
    let paths: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&format!("METS.{}.xml", transfer.sip_uuid).as_str()), "{listed}");
    let thumbnail = format!("thumbnails/{}.jpg", uuid_of("objects/scan.png"));
    let mut download = ask(&format!("/api/transfers/{}/dip?file={thumbnail}", transfer.id), "application/json");
    assert_eq!(download.status, 200);
    let mut stream = download.stream.take().expect("the file streamed");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut stream.reader, &mut bytes).unwrap();
    assert_eq!(bytes, std::fs::read(dip.join(&thumbnail)).unwrap(), "the DIP's file, downloaded");
    let refused = ask(&format!("/api/transfers/{}/dip?file=../../vellum.db", transfer.id), "application/json");
    assert_eq!(refused.status, 404, "only a file the DIP lists");
    let page = ask(&format!("/transfers/{}", transfer.id), "text/html");
    assert!(String::from_utf8_lossy(&page.body).contains("<dt>Not normalized</dt><dd>1 file(s)"));
    assert!(String::from_utf8_lossy(&page.body).contains(&format!(
        "<dt>DIP</dt><dd><a href=\"/api/transfers/{}/dip\">normalized-{}/</a></dd>",
        transfer.id, transfer.sip_uuid
    )));

    let report = vellum_tests::validate_mets(&mets_path);
    assert_eq!(report["xsd_errors"], serde_json::json!([]), "the METS is valid METS/PREMIS");
}

/// A tool that answers `version_flag` and then, for any file, never returns.
fn hanging_tool(dir: &Path, name: &str, version_flag: &str) -> PathBuf {
    let path = dir.join(name);
    let script =
        format!("#!/bin/sh\n[ \"$1\" = {version_flag} ] && {{ echo 'Version: 1.0'; exit 0; }}\nexec sleep 60\n");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// A package of three small PNGs ImageMagick made.
fn three_pngs(dir: &Path, identifier: &str) -> Package {
    let mut package = Package::default();
    package
        .add("metadata/metadata.csv", format!("filename,dc.identifier,dc.title\nobjects/,{identifier},Three PNGs\n"));
    for (i, colour) in ["red", "green", "blue"].iter().enumerate() {
        let name = format!("p{i}.png");
        package.add(
            &format!("objects/{name}"),
            made_by(dir, &name, "convert", &["-size", "8x8", &format!("xc:{colour}"), &name]),
        );
    }
    package
}

/// A conversion tool that hangs is stopped at its rule's timeout once; the batch's other
/// files are not held behind it again, each recorded as not normalized with the reason, and
/// the transfer completes.
#[test]
#[ignore = "needs ImageMagick to make the PNGs; scripts/test runs it"]
fn a_hanging_conversion_tool_is_stopped_once_and_not_waited_for_again() {
    let work = tempfile::tempdir().unwrap();
    let hanging = hanging_tool(work.path(), "hanging-convert", "-version");
    let package = three_pngs(work.path(), "PP/HANG/1");
    let mut options = vellum_tests::options();
    let mut rules: Vec<_> =
        options.config.format_policy().rules.into_iter().filter(|r| r.purpose != Purpose::Preservation).collect();
    rules.push(Rule {
        puids: vec!["fmt/11".into(), "fmt/12".into(), "fmt/13".into()],
        args: vec!["{file}".into(), "{output}".into()],
        version_args: vec!["-version".into()],
        output_extension: Some("tif".into()),
        output_format: Some("fmt/353".into()),
        ..rule_running("hangs", Purpose::Preservation, &hanging)
    });
    options.config.format_policy = Some(rules);
    for profile in &mut options.config.profiles {
        profile.normalize_for_preservation = true;
    }
    options.settings.batch_size = Some(8);
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, "born-digital/hanging.zip");
    let started = std::time::Instant::now();
    t.drive(|_, _| false);
    let took = started.elapsed();
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let events = t.env.state.all_events(transfer.id).unwrap();
    let mut failed: Vec<String> = events
        .iter()
        .filter(|e| e.event_type == "normalization")
        .inspect(|e| assert_eq!(e.outcome, vellum_core::model::EventOutcome::Fail))
        .map(|e| e.outcome_detail.clone())
        .collect();
    failed.sort();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(
        failed.iter().filter(|d| d.contains("was stopped after 2 seconds and made nothing")).count(),
        1,
        "{failed:?}"
    );
    assert_eq!(
        failed
            .iter()
            .filter(|d| d.starts_with("not performed:") && d.contains("stopped responding (stopped after 2 seconds on"))
            .filter(|d| d.ends_with("not run again in this transfer"))
            .count(),
        2,
        "{failed:?}"
    );
    assert!(took < std::time::Duration::from_secs(20), "waited for once, not three times: {took:?}");
    assert_eq!(vellum_core::record::normalization::not_normalized(t.env.state.as_ref(), transfer.id).unwrap().len(), 3);
    assert_eq!(transfer.files_not_normalized, Some(3));
}

/// A policy checker that hangs on a copy is stopped once: the other copies' checks say "not
/// performed" with the reason instead of waiting again, and the transfer completes.
#[test]
#[ignore = "needs ImageMagick to make the PNGs and their TIFF copies; scripts/test runs it"]
fn a_hanging_policy_checker_is_stopped_once_for_the_transfer() {
    let work = tempfile::tempdir().unwrap();
    let hanging = hanging_tool(work.path(), "hanging-checker", "--version");
    let started = std::time::Instant::now();
    let checks = tiff_copies_checked_by(work.path(), &hanging, "PP/HANG/2");
    let took = started.elapsed();
    assert_eq!(checks.len(), 3, "one check a TIFF copy: {checks:#?}");
    let stopped: Vec<_> = checks.iter().filter(|e| e.outcome == vellum_core::model::EventOutcome::Fail).collect();
    assert_eq!(stopped.len(), 1, "{checks:#?}");
    assert!(
        stopped[0].outcome_detail.contains("stopped after 2 seconds; not run again"),
        "{}",
        stopped[0].outcome_detail
    );
    let skipped = checks.iter().filter(|e| e.outcome == vellum_core::model::EventOutcome::NotPerformed);
    assert_eq!(skipped.filter(|e| e.outcome_detail.contains("stopped responding")).count(), 2, "{checks:#?}");
    assert!(took < std::time::Duration::from_secs(20), "waited for once, not three times: {took:?}");
}

/// A policy checker that ends without a word has neither passed nor failed the copy: each
/// check is "not performed", saying so, and the transfer completes.
#[test]
#[ignore = "needs ImageMagick; scripts/test runs it"]
fn a_policy_checker_that_says_nothing_has_not_checked_the_copy() {
    let work = tempfile::tempdir().unwrap();
    let silent = work.path().join("silent-checker");
    std::fs::write(&silent, "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'Version: 1.0'; exit 0; }\nexit 0\n").unwrap();
    std::fs::set_permissions(&silent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let checks = tiff_copies_checked_by(work.path(), &silent, "PP/SILENT/1");
    assert_eq!(checks.len(), 3, "{checks:#?}");
    for check in &checks {
        assert_eq!(check.outcome, vellum_core::model::EventOutcome::NotPerformed, "{check:#?}");
        assert!(check.outcome_detail.ends_with("silent-checker ended without a report"), "{}", check.outcome_detail);
    }
}

/// Three PNGs ingested with `checker` as a policy rule for their TIFF copies (2 s timeout):
/// the transfer completes, and the checker's validation events are returned.
fn tiff_copies_checked_by(dir: &Path, checker: &Path, identifier: &str) -> Vec<vellum_core::model::PremisEvent> {
    let package = three_pngs(dir, identifier);
    let mut options = vellum_tests::options_with_copies(true);
    let mut rules = options.config.format_policy().rules;
    let name = checker.file_name().unwrap().to_string_lossy().into_owned();
    rules.push(Rule {
        puids: vec!["fmt/353".into()],
        version_args: vec!["--version".into()],
        ..rule_running(&format!("{name}-tiff-policy"), Purpose::Validation, checker)
    });
    options.config.format_policy = Some(rules);
    options.settings.batch_size = Some(8);
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, &format!("born-digital/{name}.zip"));
    t.drive(|_, _| false);
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    t.env
        .state
        .all_events(transfer.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "validation" && e.detail.contains(&name))
        .collect()
}

/// The policy as data fails what is not a preservation copy of the rule's kind: a Matroska
/// file of FFV1 version 1 with neither slice CRCs nor intra-only frames.
#[test]
#[ignore = "needs FFmpeg and MediaConch; scripts/test runs it"]
fn the_mediaconch_policy_fails_a_matroska_file_that_is_not_ffv1_version_3_with_slice_crcs() {
    let check = MediaConchCheck::of_ffv1(&["-level", "1"]);
    match check.run() {
        ToolOutput::Output(report) => {
            assert!(report.starts_with("fail!"), "{report}");
            for broken in ["FFV1 version 3", "Every slice carries a CRC", "Every frame is a keyframe"] {
                assert!(report.contains(&format!("[fail:{broken}]")), "{broken}: {report}");
            }
        }
        other => panic!("MediaConch gave {other:?}"),
    }
}

/// The builtin MediaConch policy rule, ready to check one second of FFmpeg's test picture
/// encoded as FFV1 in Matroska with the options given.
struct MediaConchCheck {
    work: tempfile::TempDir,
    store: vellum_local::fs_store::FsObjectStore,
    rule: Rule,
}

impl MediaConchCheck {
    fn of_ffv1(options: &[&str]) -> Self {
        let work = tempfile::tempdir().unwrap();
        let mut args = vec!["-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5", "-c:v", "ffv1"];
        args.extend_from_slice(options);
        args.push("clip.mkv");
        let clip = made_by(work.path(), "clip.mkv", "ffmpeg", &args);
        let store = vellum_local::fs_store::FsObjectStore::new(work.path().join("store"), "w").unwrap();
        store.put("t/clip.mkv", &clip).unwrap();
        let rules = vellum_core::config::fpr::Rules::builtin();
        let rule = rules.rules.into_iter().find(|r| r.name == "mediaconch-ffv1-policy").expect("the policy rule");
        Self { work, store, rule }
    }

    fn run(&self) -> ToolOutput {
        let tools = vellum_host::ProcessTools::new().in_dir(self.work.path());
        tools.run(&self.rule.call(), &self.store, "t/clip.mkv", "objects/clip.mkv").unwrap()
    }
}

/// Policy checks at once (two workers, two transfers) each get MediaConch's whole report:
/// MediaConch keeps a database under HOME, and runs sharing one answered nothing (read as a
/// failure with no reason) or failed.
#[test]
#[ignore = "needs FFmpeg and MediaConch; scripts/test runs it"]
fn policy_checks_run_at_once_each_get_their_report() {
    let check = MediaConchCheck::of_ffv1(&["-level", "3", "-g", "1", "-slicecrc", "1"]);
    for round in 0..3 {
        let answers: Vec<_> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..6).map(|_| scope.spawn(|| check.run())).collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for answer in answers {
            match answer {
                ToolOutput::Output(report) => assert!(report.starts_with("pass!"), "round {round}: {report:?}"),
                other => panic!("round {round}: MediaConch gave {other:?}"),
            }
        }
    }
}

/// Every normalize message delivered twice: the copies recorded by the first delivery are
/// kept, not made again (a tool run twice need not write the same bytes), so the bag's
/// digests are the record's; one copy an original, each event once, one task a file.
#[test]
#[ignore = "needs ImageMagick, Ghostscript and the project's Python; scripts/test runs it"]
fn a_normalize_message_delivered_twice_keeps_the_first_copies_and_the_bag_valid() {
    let work = tempfile::tempdir().unwrap();
    let mut package = Package::default();
    package.add("metadata/metadata.csv", "filename,dc.identifier,dc.title\nobjects/,PP/TWICE/1,Twice\n");
    package.add("objects/a.png", made_by(work.path(), "a.png", "convert", &["-size", "16x16", "xc:red", "a.png"]));
    package.add(
        "objects/b.pdf",
        made_by(work.path(), "b.pdf", "gs", &["-q", "-sDEVICE=pdfwrite", "-o", "b.pdf", "-c", "showpage"]),
    );
    let mut options = vellum_tests::options();
    options.settings.batch_size = Some(8);
    let t = TestEnv::with_options(options);
    let event = t.upload(&package, "born-digital/twice.zip");
    // A second apart: Ghostscript writes the time into a PDF/A, so a copy made again would
    // not be the bytes the record holds.
    t.drive(|queue, _| {
        let again = queue == "normalize";
        if again {
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        again
    });
    let transfer = t.transfer_for(&event).unwrap();
    assert_eq!(transfer.status, TransferStatus::Complete, "{:?}", transfer.failure_reason);
    let dest = t.dir.path().join("unpacked");
    std::fs::create_dir_all(&dest).unwrap();
    let bag = unpack_aip(&t.env.aips.root().join(transfer.aip_key.as_ref().unwrap()), &dest);
    bagit_validate(&bag).expect("every digest in the bag is the record's");
    let state = t.env.state.as_ref();
    let files = state.all_files(transfer.id).unwrap();
    assert_eq!(files.iter().filter(|f| f.file_use == vellum_core::model::FileUse::Preservation).count(), 2);
    let events = state.all_events(transfer.id).unwrap();
    let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e.uuid).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    let job = state.job(transfer.id, "normalize").unwrap().unwrap();
    assert_eq!(state.tasks(job.uuid).unwrap().len(), 2, "a task an original, none for the copies");
}
