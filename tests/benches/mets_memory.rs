//! A METS for 100,000 files is written as a stream: prints the time, the METS size and the
//! peak RSS of writing one. The file records are in memory, as the state store returns
//! them; events come file by file; the document is never held.
//!
//! `cargo bench -p vellum-tests --bench mets_memory` (`VELLUM_BENCH_FILES` to change 100,000)

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Instant;

use uuid::Uuid;
use vellum_core::mets::{write_aip_mets, MetsDoc, MetsKind};
use vellum_core::model::{
    derived_id, Agent, EventOutcome, File, FileUse, FormatId, Identifiers, PremisEvent, Transfer,
};

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

fn main() {
    let n: usize = std::env::var("VELLUM_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let now = chrono::Utc::now();
    let transfer = Transfer {
        identifiers: Identifiers { catalogue_identifier: Some("PP/BENCH/1".into()), ..Default::default() },
        ..Transfer::new(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), "uploads", "born-digital/bench.zip", now)
    };
    let agents = vec![Agent {
        identifier_type: "preservation system".into(),
        identifier_value: "Vellum".into(),
        name: "Vellum".into(),
        agent_type: "software".into(),
    }];
    let files: Vec<File> = (0..n)
        .map(|i| File {
            uuid: derived_id(transfer.id, &format!("file/{i}")),
            transfer_id: transfer.id,
            batch: (i / 128) as u32,
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
        })
        .collect();
    // Events come file by file, as the state store gives them to the METS stage.
    let events = |f: &File| -> io::Result<Vec<PremisEvent>> {
        Ok(["ingestion", "message digest calculation", "virus check", "format identification"]
            .iter()
            .map(|kind| {
                PremisEvent::new(
                    transfer.id,
                    Some(f.uuid),
                    kind,
                    now,
                    "program=\"Vellum\"".into(),
                    EventOutcome::Pass,
                    String::new(),
                    agents.clone(),
                )
            })
            .collect())
    };
    let before = peak_rss_mib();
    let started = Instant::now();
    let mut sink = Counting(0);
    let rights = BTreeMap::new();
    write_aip_mets(
        &mut sink,
        &MetsDoc {
            kind: MetsKind::Aip,
            transfer: &transfer,
            files: &files,
            events: &events,
            rights: &rights,
            created: now,
        },
    )
    .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!("METS for {n} files and {} events: {:.1} MB in {seconds:.2} s", n * 4, sink.0 as f64 / 1e6);
    println!(
        "peak RSS: {:.1} MiB with the file records loaded, {:.1} MiB after writing (the document is {:.1} MiB)",
        before,
        peak_rss_mib(),
        sink.0 as f64 / 1048576.0
    );
}
