//! Peak memory must not grow with file size. Ingests packages holding one large file (by
//! default 256 MiB and 2 GiB) in embedded mode, each in a fresh process, and prints peak RSS
//! and throughput side by side.
//!
//! `cargo bench -p vellum-tests --bench ingest_memory`
//! `VELLUM_BENCH_SIZES_MB=64,512` to choose sizes; `VELLUM_BENCH_DIR` for the scratch folder.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use vellum_core::model::Stage;
use vellum_core::ports::{ObjectStore, Queue, TransferRegister};
use vellum_local::{Embedded, EmbeddedOptions, Runner, RunnerConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let mb: u64 = args[i + 1].parse().expect("a size in MiB");
        run_one(mb);
        return;
    }
    let sizes = std::env::var("VELLUM_BENCH_SIZES_MB").unwrap_or_else(|_| "256,2048".into());
    println!("ingest of a package with one large file (stored zip entry), embedded mode");
    println!("{:>10} {:>10} {:>12} {:>14}", "file MiB", "seconds", "MiB/s", "peak RSS MiB");
    let mut peaks = Vec::new();
    for mb in sizes.split(',').map(|s| s.trim().parse::<u64>().expect("sizes are numbers")) {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--one", &mb.to_string()])
            .output()
            .expect("run one ingest");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "ingest of {mb} MiB failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        println!(
            "{:>10} {:>10.1} {:>12.1} {:>14.1}",
            mb,
            r["seconds"].as_f64().unwrap(),
            r["mib_per_s"].as_f64().unwrap(),
            r["peak_rss_mib"].as_f64().unwrap()
        );
        peaks.push((mb, r["peak_rss_mib"].as_f64().unwrap()));
    }
    if let (Some(first), Some(last)) = (peaks.first(), peaks.last()) {
        println!(
            "peak RSS ratio, {} MiB file vs {} MiB file: {:.2} (file size ratio {:.1}); target: under 150 MiB",
            last.0,
            first.0,
            last.1 / first.1,
            last.0 as f64 / first.0 as f64
        );
    }
}

/// Peak resident set size of this process, from the kernel.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kb / 1024.0
}

fn run_one(mb: u64) {
    let scratch =
        std::env::var("VELLUM_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(scratch).unwrap();
    // The defaults a user of `vellum ingest` gets: identification on, the scanner off.
    let options = EmbeddedOptions {
        format_identifier: Some(std::sync::Arc::new(
            vellum_core::analysis::pronom::FormatIdentifier::builtin().unwrap(),
        )),
        ..Default::default()
    };
    let env = Embedded::open(dir.path(), options).unwrap();
    let key = "born-digital/big.zip";
    write_package(&env.uploads.path_of(key).unwrap(), mb << 20);
    let meta = env.uploads.head(key).unwrap().unwrap();
    let event = vellum_local::watcher::upload_event("uploads", &meta);
    let started = Instant::now();
    let runner = Runner::start(env.pipeline.clone(), env.queue.clone(), RunnerConfig::default());
    env.queue.send(Stage::Start.name(), &serde_json::to_string(&event).unwrap()).unwrap();
    let transfer = wait(&env, &event.idempotency_key());
    runner.stop();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(transfer.status.as_str(), "COMPLETE", "{:?}", transfer.failure_reason);
    println!(
        "{}",
        serde_json::json!({
            "file_mib": mb,
            "seconds": seconds,
            "mib_per_s": mb as f64 / seconds,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
}

fn wait(env: &Embedded, idem: &str) -> vellum_core::model::Transfer {
    loop {
        if let Some(id) = env.state.transfer_for_event(idem).unwrap() {
            let t = env.state.transfer(id).unwrap().unwrap();
            if t.status.is_terminal() {
                return t;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A package with metadata.csv and one file of `size` pseudo-random (incompressible) bytes,
/// streamed to disk.
fn write_package(path: &std::path::Path, size: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(size >= u32::MAX as u64);
    zip.start_file("metadata/metadata.csv", options).unwrap();
    zip.write_all(b"filename,dc.identifier\nobjects/,PP/BENCH/1\n").unwrap();
    zip.start_file("objects/big.bin", options).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        zip.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    zip.finish().unwrap().flush().unwrap();
}
