//! The METS stage's peak memory for 100,000 files, before and after paging: a SQLite state
//! store is filled once with the files and four events each, then two fresh processes
//! write the transfer's METS from it.
//!
//! - before: every file record loaded at once (as the stage did until paged reads), events
//!   file by file, the document streamed;
//! - after: the METS stage itself, reading files a page at a time in path order.
//!
//! Each prints its time, the METS size and its peak RSS; the last line is their ratio.
//! `cargo bench -p vellum-tests --bench mets_memory` (`VELLUM_BENCH_FILES` to change 100,000)

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use uuid::Uuid;
use vellum_core::model::messages::StageMessage;
use vellum_core::model::Stage;
use vellum_core::model::{file_id, CatalogueIdentifiers, EventOutcome, File, FileUse, FormatId, PremisEvent, Transfer};
use vellum_core::ports::{EventLog, FileCatalogue, TransferRegister};
use vellum_core::record::mets::{write_aip_mets, MetsDoc, MetsKind};
use vellum_core::StageContext;
use vellum_local::{Embedded, EmbeddedOptions};

struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn open(dir: &Path) -> Embedded {
    Embedded::open(dir, EmbeddedOptions::default()).expect("open the embedded mode")
}

/// Fills a state store with a transfer of `n` files, each with four events.
fn fill(dir: &Path, n: usize) -> Uuid {
    let env = open(dir);
    let now = chrono::Utc::now();
    let transfer = Transfer {
        identifiers: CatalogueIdentifiers { catalogue_identifier: Some("PP/BENCH/1".into()), ..Default::default() },
        profile: "born_digital".into(),
        ..Transfer::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), "uploads", "born-digital/bench.zip", now)
    };
    env.state.create_transfer("bench", &transfer).unwrap();
    let agents = vec![vellum_core::model::Agent {
        identifier_type: "preservation system".into(),
        identifier_value: "Vellum".into(),
        name: "Vellum".into(),
        agent_type: "software".into(),
    }];
    let mut cp = env.state.extract_checkpoint(transfer.id).unwrap();
    for start in (0..n).step_by(1000) {
        let files: Vec<File> = (start..(start + 1000).min(n))
            .map(|i| File {
                uuid: file_id(transfer.id, i as u64),
                transfer_id: transfer.id,
                batch: cp.batches,
                entry_index: i as u64,
                file_use: FileUse::Original,
                original_path: format!("objects/{:03}/file {i}.txt", i % 500),
                current_path: format!("objects/{:03}/file_{i}.txt", i % 500),
                size: i as u64,
                checksums: BTreeMap::from([("sha256".to_string(), format!("{i:064x}"))]),
                format: Some(FormatId {
                    puid: "x-fmt/111".into(),
                    name: "Plain Text File".into(),
                    version: None,
                    tentative: false,
                }),
                modified: None,
                characteristics: BTreeMap::from([("text_encoding".to_string(), "ascii".to_string())]),
                source: None,
            })
            .collect();
        let events: Vec<PremisEvent> = files
            .iter()
            .flat_map(|f| {
                ["ingestion", "message digest calculation", "virus check", "format identification"].map(|kind| {
                    PremisEvent::new(
                        transfer.id,
                        Some(f.uuid),
                        kind.parse().unwrap(),
                        now,
                        "program=\"Vellum\"".into(),
                        EventOutcome::Pass,
                        String::new(),
                        agents.clone(),
                    )
                })
            })
            .collect();
        let next = (start + files.len()) as u64;
        cp = env.state.commit_extract_batch(transfer.id, &cp, &files, &events, next).unwrap();
    }
    env.state.finish_extract(transfer.id).unwrap();
    transfer.id
}

/// The METS as the stage wrote it before paged reads: every record loaded, then streamed.
fn before(dir: &Path, id: Uuid) -> u64 {
    let env = open(dir);
    let transfer = env.state.transfer(id).unwrap().unwrap();
    let mut files = env.state.all_files(id).unwrap();
    files.sort_by(|a, b| a.current_path.cmp(&b.current_path));
    let events = |f: &File| -> io::Result<Vec<PremisEvent>> {
        env.state.file_events(id, f.uuid).map_err(|e| io::Error::other(e.to_string()))
    };
    let rights = BTreeMap::new();
    let mut sink = Counting(0);
    let doc = MetsDoc {
        kind: MetsKind::Transfer,
        transfer: &transfer,
        files: &files,
        events: &events,
        rights: &rights,
        empty_folders: &[],
        file_dc: &BTreeMap::new(),
        transfer_dc: &transfer.identifiers.dublin_core,
        transfer_md: &[],
        package_kind: vellum_core::config::profile::PackageKind::Catalogued,
        struct_map: None,
        imported: None,
        transfer_events: &[],
        created: transfer.created_at,
    };
    write_aip_mets(&mut sink, &doc).unwrap();
    sink.0
}

/// The METS stage itself: both documents, files a page at a time.
fn after(dir: &Path, id: Uuid) -> u64 {
    let env = open(dir);
    let ctx = StageContext::with_budget(Duration::from_secs(3600));
    let outcome = env.pipeline.handle(Stage::Mets, &StageMessage::transfer(id).to_json(), &ctx);
    assert_eq!(outcome, vellum_core::Outcome::Succeeded, "the METS stage");
    let transfer = env.state.transfer(id).unwrap().unwrap();
    let key = vellum_core::record::keys::working_transfer_mets_key(&transfer);
    env.pipeline.working.head(&key).unwrap().expect("the transfer METS is written").size
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--mode") {
        let dir = PathBuf::from(&args[i + 2]);
        let id = Uuid::parse_str(&args[i + 3]).unwrap();
        let started = Instant::now();
        let bytes = match args[i + 1].as_str() {
            "before" => before(&dir, id),
            _ => after(&dir, id),
        };
        println!(
            "{{\"seconds\": {:.2}, \"mets_mb\": {:.1}, \"peak_rss_mib\": {:.1}}}",
            started.elapsed().as_secs_f64(),
            bytes as f64 / 1e6,
            peak_rss_mib()
        );
        return;
    }
    let n: usize = std::env::var("VELLUM_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let id = fill(scratch.path(), n);
    println!("state store filled with {n} files and {} events in {:.1} s", n * 4, started.elapsed().as_secs_f64());
    println!("{:<8} {:>10} {:>10} {:>14}", "METS", "seconds", "MB", "peak RSS MiB");
    let mut peaks = Vec::new();
    for mode in ["before", "after"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--mode", mode, &scratch.path().to_string_lossy(), &id.to_string()])
            .output()
            .expect("run one METS");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout.lines().last().unwrap_or_default();
        let r: serde_json::Value = serde_json::from_str(line).expect("one JSON line");
        let peak = r["peak_rss_mib"].as_f64().unwrap();
        println!(
            "{:<8} {:>10.2} {:>10.1} {:>14.1}",
            mode,
            r["seconds"].as_f64().unwrap(),
            r["mets_mb"].as_f64().unwrap(),
            peak
        );
        peaks.push(peak);
    }
    println!(
        "peak RSS for {n} files: {:.1} MiB before, {:.1} MiB after paging ({:.2}x); 'after' writes both METS documents",
        peaks[0],
        peaks[1],
        peaks[0] / peaks[1]
    );
}
