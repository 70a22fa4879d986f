//! Characterization and validation of any bytes as every kind of file: the image decoders
//! (PNG, GIF, TIFF, WebP), the JPEG scan walk, the BMP, JPEG 2000 and PDF structure checks
//! (with the PDF's stream filters), WAV and AIFF chunks, XML, JSON, ZIP and the formats that
//! are ZIPs of parts. A hostile file must end in a verdict, never a panic, a hang or an unbounded allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vellum_core::analysis::techmd::{self, Kind, ZipPackage};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the kind, so every validator sees every input shape.
    let Some((&pick, bytes)) = data.split_first() else { return };
    let kinds = [
        Kind::Png, Kind::Jpeg, Kind::Gif, Kind::Tiff, Kind::Bmp, Kind::Webp, Kind::Jp2, Kind::Pdf, Kind::Wav,
        Kind::Aiff, Kind::Zip, Kind::ZipPackage(ZipPackage::OfficeOpenXml), Kind::ZipPackage(ZipPackage::OpenDocument),
        Kind::ZipPackage(ZipPackage::Epub), Kind::Xml, Kind::Json, Kind::Text, Kind::Other,
    ];
    let kind = kinds[pick as usize % kinds.len()];
    let tail = &bytes[bytes.len().saturating_sub(techmd::TAIL)..];
    let mut facts = techmd::characteristics(kind, bytes, tail, bytes.len() as u64);
    let _ = techmd::validate(kind, std::io::Cursor::new(bytes), bytes.len() as u64, &mut facts);
});
