//! Intake reads only a package's index; extraction streams. Prints:
//! - intake time and bytes read for a 10 GiB zip (a sparse file, so it costs no disk),
//! - extraction throughput (MB/s, files/s) beside `unzip` on the same package,
//! - decompression MB/s of a gzipped tar through the resumable reader that notes points
//!   (what intake and extraction read a `.tar.gz` with) beside flate2's plain decoder.
//!
//! `cargo bench -p vellum-tests --bench intake_extract`
//! `VELLUM_BENCH_FILES=3000` sets the extraction package's file count.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vellum_core::model::messages::StageMessage;
use vellum_core::model::Stage;
use vellum_core::ports::{ObjectStore, Queue, TransferRegister};
use vellum_core::StageContext;
use vellum_local::{Embedded, EmbeddedOptions};

const GIB: u64 = 1 << 30;

fn main() {
    let scratch =
        std::env::var("VELLUM_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(scratch).unwrap();
    intake_of_a_huge_zip(dir.path());
    extraction_beside_unzip(dir.path());
    resumable_gzip_beside_flate2(dir.path());
}

/// The price of being able to stop: ResumableGz keeps a 32 KiB window at every deflate
/// block boundary. Both read the same 256 MiB (uncompressed) gzip from the folder store.
fn resumable_gzip_beside_flate2(dir: &Path) {
    use std::io::Read;
    use std::sync::Arc;
    let store = Arc::new(vellum_local::fs_store::FsObjectStore::new(dir.join("gz"), "gz").unwrap());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut x: u64 = 1;
    let mut raw = 0u64;
    while raw < 256 << 20 {
        let mut line = String::new();
        for _ in 0..64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            line.push_str(&format!("{:04x} ", x >> 52));
        }
        line.push('\n');
        gz.write_all(line.as_bytes()).unwrap();
        raw += line.len() as u64;
    }
    let bytes = gz.finish().unwrap();
    let meta = store.put("data.gz", &bytes).unwrap();
    let time = |read: &mut dyn Read| {
        let started = Instant::now();
        let n = std::io::copy(read, &mut std::io::sink()).unwrap();
        assert_eq!(n, raw);
        raw as f64 / 1e6 / started.elapsed().as_secs_f64()
    };
    let plain = time(&mut flate2::read::MultiGzDecoder::new(std::io::BufReader::new(store.get("data.gz").unwrap())));
    let store: Arc<dyn ObjectStore> = store;
    let resumable = time(&mut vellum_core::io::gzip_resume::ResumableGz::open(store, "data.gz", meta.size));
    println!(
        "gzip decompression of {} MiB: flate2 {plain:.0} MB/s, resumable (notes points) {resumable:.0} MB/s ({:.2}x)",
        raw >> 20,
        resumable / plain
    );
}

fn u16le(v: u64) -> [u8; 2] {
    (v as u16).to_le_bytes()
}
fn u32le(v: u64) -> [u8; 4] {
    (v as u32).to_le_bytes()
}

/// A zip64 package: metadata.csv and ten 1 GiB stored files of zeros whose data regions
/// are holes in a sparse file.
fn write_sparse_zip(path: &Path) -> u64 {
    let crc_of_zeros = {
        let mut crc = flate2::Crc::new();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            crc.update(&zeros);
        }
        crc.sum() as u64
    };
    let mut f = File::create(path).unwrap();
    let mut central = Vec::new();
    let mut entries: Vec<(String, u64, u64, Vec<u8>)> = Vec::new(); // name, size, crc, data (if small)
    let metadata = b"filename,dc.identifier\nobjects/,PP/HUGE/1\n".to_vec();
    let crc_meta = {
        let mut c = flate2::Crc::new();
        c.update(&metadata);
        c.sum() as u64
    };
    entries.push(("metadata/metadata.csv".into(), metadata.len() as u64, crc_meta, metadata));
    for i in 0..10 {
        entries.push((format!("objects/part-{i:02}.bin"), GIB, crc_of_zeros, Vec::new()));
    }
    let mut offset = 0u64;
    for (name, size, crc, data) in &entries {
        // Local header with a zip64 extra field carrying both sizes.
        let mut extra = Vec::new();
        extra.extend_from_slice(&u16le(0x0001));
        extra.extend_from_slice(&u16le(16));
        extra.extend_from_slice(&size.to_le_bytes());
        extra.extend_from_slice(&size.to_le_bytes());
        let mut local = Vec::new();
        local.extend_from_slice(&u32le(0x04034b50));
        local.extend_from_slice(&u16le(45));
        local.extend_from_slice(&u16le(1 << 11));
        local.extend_from_slice(&u16le(0));
        local.extend_from_slice(&u16le(0));
        local.extend_from_slice(&u16le(0x5821));
        local.extend_from_slice(&u32le(*crc));
        local.extend_from_slice(&u32le(0xFFFF_FFFF));
        local.extend_from_slice(&u32le(0xFFFF_FFFF));
        local.extend_from_slice(&u16le(name.len() as u64));
        local.extend_from_slice(&u16le(extra.len() as u64));
        local.extend_from_slice(name.as_bytes());
        local.extend_from_slice(&extra);
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&local).unwrap();
        if !data.is_empty() {
            f.write_all(data).unwrap();
        }
        let mut cextra = Vec::new();
        cextra.extend_from_slice(&u16le(0x0001));
        cextra.extend_from_slice(&u16le(24));
        cextra.extend_from_slice(&size.to_le_bytes());
        cextra.extend_from_slice(&size.to_le_bytes());
        cextra.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&u32le(0x02014b50));
        central.extend_from_slice(&u16le(0x0300 | 45));
        central.extend_from_slice(&u16le(45));
        central.extend_from_slice(&u16le(1 << 11));
        central.extend_from_slice(&u16le(0));
        central.extend_from_slice(&u16le(0));
        central.extend_from_slice(&u16le(0x5821));
        central.extend_from_slice(&u32le(*crc));
        central.extend_from_slice(&u32le(0xFFFF_FFFF));
        central.extend_from_slice(&u32le(0xFFFF_FFFF));
        central.extend_from_slice(&u16le(name.len() as u64));
        central.extend_from_slice(&u16le(cextra.len() as u64));
        central.extend_from_slice(&[0u8; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&u32le(0o100644 << 16));
        central.extend_from_slice(&u32le(0xFFFF_FFFF));
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&cextra);
        offset += local.len() as u64 + size;
    }
    let cd_offset = offset;
    f.seek(SeekFrom::Start(cd_offset)).unwrap();
    f.write_all(&central).unwrap();
    let eocd64 = cd_offset + central.len() as u64;
    let n = entries.len() as u64;
    let mut tail = Vec::new();
    tail.extend_from_slice(&u32le(0x06064b50));
    tail.extend_from_slice(&44u64.to_le_bytes());
    tail.extend_from_slice(&u16le(45));
    tail.extend_from_slice(&u16le(45));
    tail.extend_from_slice(&[0u8; 8]);
    tail.extend_from_slice(&n.to_le_bytes());
    tail.extend_from_slice(&n.to_le_bytes());
    tail.extend_from_slice(&(central.len() as u64).to_le_bytes());
    tail.extend_from_slice(&cd_offset.to_le_bytes());
    tail.extend_from_slice(&u32le(0x07064b50));
    tail.extend_from_slice(&[0u8; 4]);
    tail.extend_from_slice(&eocd64.to_le_bytes());
    tail.extend_from_slice(&u32le(1));
    tail.extend_from_slice(&u32le(0x06054b50));
    tail.extend_from_slice(&[0u8; 4]);
    tail.extend_from_slice(&u16le(0xFFFF));
    tail.extend_from_slice(&u16le(0xFFFF));
    tail.extend_from_slice(&u32le(0xFFFF_FFFF));
    tail.extend_from_slice(&u32le(0xFFFF_FFFF));
    tail.extend_from_slice(&u16le(0));
    f.write_all(&tail).unwrap();
    f.seek(SeekFrom::End(0)).unwrap()
}

fn intake_of_a_huge_zip(dir: &Path) {
    let env = Embedded::open(&dir.join("huge"), EmbeddedOptions::default()).unwrap();
    let key = "born-digital/huge.zip";
    let path = env.uploads.path_of(key).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let size = write_sparse_zip(&path);
    let meta = env.uploads.head(key).unwrap().unwrap();
    let event = vellum_local::watcher::upload_event("uploads", &meta);
    let read_before = bytes_read_by_this_process();
    let started = Instant::now();
    let outcome = env.pipeline.handle(
        Stage::Start,
        &serde_json::to_string(&event).unwrap(),
        &StageContext::with_budget(Duration::from_secs(60)),
    );
    let elapsed = started.elapsed();
    let stage_read = bytes_read_by_this_process() - read_before;
    let listing = vellum_core::intake::archive::list_zip(env.uploads.clone(), key, size).expect("the sparse zip lists");
    let transfer =
        env.state.transfer(env.state.transfer_for_event(&event.idempotency_key()).unwrap().unwrap()).unwrap().unwrap();
    println!("intake of a {:.1} GiB zip ({} entries)", size as f64 / GIB as f64, listing.entries.len());
    println!(
        "  start stage: {:.1} ms, outcome {:?}, status {}; bytes the timed stage read (the kernel's count, \
         state store included): {} ({:.6}% of the package); the listing alone reads {}",
        elapsed.as_secs_f64() * 1000.0,
        outcome,
        transfer.status.as_str(),
        stage_read,
        stage_read as f64 * 100.0 / size as f64,
        listing.bytes_read,
    );
}

/// Bytes this process has read through read calls so far (`rchar` in /proc/self/io).
fn bytes_read_by_this_process() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| io.lines().find_map(|l| l.strip_prefix("rchar:")).and_then(|v| v.trim().parse().ok()))
        .expect("/proc/self/io (Linux)")
}

fn extraction_beside_unzip(dir: &Path) {
    let files: usize = std::env::var("VELLUM_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let package = dir.join("extract.zip");
    let mut total = 0u64;
    {
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(File::create(&package).unwrap()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("metadata/metadata.csv", options).unwrap();
        zip.write_all(b"filename,dc.identifier\nobjects/,PP/EXTRACT/1\n").unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..files {
            // Half text (compresses), half noise (does not), sizes from 1 KiB to 256 KiB.
            let size = 1024usize << (i % 9);
            let mut data = Vec::with_capacity(size);
            if i % 2 == 0 {
                while data.len() < size {
                    data.extend_from_slice(
                        format!("line {} of file {i} in the benchmark package\n", data.len()).as_bytes(),
                    );
                }
                data.truncate(size);
            } else {
                while data.len() < size {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    data.extend_from_slice(&state.to_le_bytes());
                }
                data.truncate(size);
            }
            total += size as u64;
            zip.start_file(format!("objects/{:03}/file-{i:06}.bin", i % 100), options).unwrap();
            zip.write_all(&data).unwrap();
        }
        zip.finish().unwrap();
    }
    let mb = total as f64 / 1e6;
    println!(
        "extraction of {files} files, {mb:.1} MB (deflated zip of {:.1} MB)",
        std::fs::metadata(&package).unwrap().len() as f64 / 1e6
    );

    let env = Embedded::open(&dir.join("extract"), EmbeddedOptions::default()).unwrap();
    let key = "born-digital/extract.zip";
    let target = env.uploads.path_of(key).unwrap();
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(&package, &target).unwrap();
    let meta = env.uploads.head(key).unwrap().unwrap();
    let event = vellum_local::watcher::upload_event("uploads", &meta);
    let ctx = StageContext::with_budget(Duration::from_secs(3600));
    env.pipeline.handle(Stage::Start, &serde_json::to_string(&event).unwrap(), &ctx);
    let id = env.state.transfer_for_event(&event.idempotency_key()).unwrap().unwrap();
    let started = Instant::now();
    let outcome = env.pipeline.handle(Stage::Extract, &StageMessage::transfer(id).to_json(), &ctx);
    let vellum = started.elapsed().as_secs_f64();
    let transfer = env.state.transfer(id).unwrap().unwrap();
    assert_eq!(transfer.file_count as usize, files + 1, "{outcome:?} {:?}", transfer.failure_reason);
    let _ = env.queue.depth(Stage::Checksum.name());
    println!(
        "  vellum extract: {vellum:.2} s, {:.1} MB/s, {:.0} files/s (includes UUIDs, events and batch commits)",
        mb / vellum,
        files as f64 / vellum
    );
    let out = dir.join("unzipped");
    let started = Instant::now();
    match Command::new("unzip").arg("-q").arg("-o").arg(&package).arg("-d").arg(&out).status() {
        Ok(s) if s.success() => {
            let unzip = started.elapsed().as_secs_f64();
            println!("  unzip:          {unzip:.2} s, {:.1} MB/s, {:.0} files/s", mb / unzip, files as f64 / unzip);
            println!("  vellum / unzip time ratio: {:.2}", vellum / unzip);
        }
        _ => println!("  unzip: not installed here (apt-get install unzip) — no comparison"),
    }
}
