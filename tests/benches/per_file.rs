//! The per-file microservices beside the tools archivists know, on one corpus of a few
//! thousand real files (scripts/make-corpus.py): checksum MB/s beside `sha256sum`,
//! identification files/s beside fido, scan MB/s beside `clamdscan`.
//!
//! `cargo bench -p vellum-tests --bench per_file` (after scripts/setup, for fido and clamd)
//! `VELLUM_BENCH_COPIES=40` sets the corpus size (about 78 files a copy).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use vellum_core::analysis::fixity::Digests;
use vellum_core::ports::{ObjectStore, VirusScanner};
use vellum_local::fs_store::FsObjectStore;

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let python = vellum_tests::project_python();
    let copies = std::env::var("VELLUM_BENCH_COPIES").unwrap_or_else(|_| "40".into());
    let scratch = std::env::var("VELLUM_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(scratch).unwrap();
    let corpus = dir.path().join("corpus");
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-corpus.py"))
        .arg(&corpus)
        .arg(&copies)
        .status()
        .unwrap();
    assert!(status.success());
    let files = vellum_tests::files_under(&corpus);
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let mb = bytes as f64 / 1e6;
    println!("corpus: {} files, {mb:.1} MB", files.len());

    // Warm the page cache so both sides read from memory.
    for f in &files {
        let _ = std::fs::read(f);
    }

    let vellum = timed(|| {
        for f in &files {
            let mut r = std::fs::File::open(f).unwrap();
            Digests::for_algorithms(&["sha256"]).unwrap().of_reader(&mut r).unwrap();
        }
    });
    let coreutils = timed(|| {
        for chunk in files.chunks(500) {
            let out = Command::new("sha256sum").args(chunk).output().unwrap();
            assert!(out.status.success());
        }
    });
    println!(
        "checksum (sha256): vellum {:.0} MB/s, sha256sum {:.0} MB/s (ratio {:.2})",
        mb / vellum,
        mb / coreutils,
        coreutils / vellum
    );

    let store: Arc<dyn ObjectStore> = Arc::new(FsObjectStore::new(&corpus, "corpus").unwrap());
    // Both sides timed with their start-up: fido's includes Python's and loading its
    // signatures, Vellum's compiling the built-in signatures.
    let vellum = timed(|| {
        let identifier = vellum_core::analysis::pronom::FormatIdentifier::builtin().unwrap();
        for f in &files {
            let key = f.strip_prefix(&corpus).unwrap().to_string_lossy().into_owned();
            let size = std::fs::metadata(f).unwrap().len();
            vellum_core::analysis::pronom::identify_object(&identifier, &store, &key, &key, size).unwrap();
        }
    });
    let fido = timed(|| {
        let out = Command::new(&python).args(["-m", "fido.fido", "-q", "-recurse"]).arg(&corpus).output().unwrap();
        assert!(out.status.success());
    });
    let n = files.len() as f64;
    println!(
        "identification, start-up and signature loading included on both sides: vellum {:.0} files/s, fido {:.0} files/s ({:.1}x fido; target 5x)",
        n / vellum,
        n / fido,
        fido / vellum
    );

    let addr = std::env::var("VELLUM_CLAMD").unwrap_or_else(|_| "127.0.0.1:3310".into());
    let clamd = vellum_clamd::Clamd::new(&addr);
    if !clamd.ping() {
        println!("scan: no clamd at {addr} (scripts/clamd start) — not measured");
        return;
    }
    let vellum = timed(|| {
        for f in &files {
            clamd.scan(&mut std::fs::File::open(f).unwrap()).unwrap();
        }
    });
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/clamd/clamd.conf");
    let clamdscan = if conf.exists() {
        Some(timed(|| {
            for chunk in files.chunks(500) {
                let out = Command::new("clamdscan")
                    .arg(format!("--config-file={}", conf.display()))
                    .args(["--stream", "--no-summary", "--quiet"])
                    .args(chunk)
                    .output()
                    .expect("clamdscan (apt-get install clamdscan)");
                assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
            }
        }))
    } else {
        None
    };
    match clamdscan {
        Some(c) => println!(
            "scan (INSTREAM, one connection a file): vellum {:.1} MB/s, clamdscan --stream {:.1} MB/s (ratio {:.2})",
            mb / vellum,
            mb / c,
            c / vellum
        ),
        None => println!("scan: vellum {:.1} MB/s; clamdscan not measured (no .tools/clamd/clamd.conf)", mb / vellum),
    }
}
