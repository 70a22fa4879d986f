//! Dependencies run one way: stages use domain modules, domain modules use the model and
//! the ports, and only the pipeline's dispatch names a stage.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The stages, by their modules' names.
const STAGES: &[&str] =
    &["start", "extract", "checksum", "scan", "identify", "characterize", "mets", "package", "store"];

#[test]
fn only_the_pipeline_names_a_stage() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "pipeline/mod.rs" || rel == "lib.rs" || rel == "stages/mod.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // A stage's own module may be named only by the pipeline; the stage floor's
            // shared parts (`stages::{Flow, …}`, `stages::per_file`) are for the stages.
            let names_a_stage = STAGES
                .iter()
                .any(|s| code.contains(&format!("crate::stages::{s}")) || code.contains(&format!("super::{s}::")));
            let stage_imports_pipeline = rel.starts_with("stages/") && code.contains("crate::pipeline");
            if names_a_stage || stage_imports_pipeline {
                offenders.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "modules that import a stage, or stages that import the pipeline:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn nothing_outside_core_names_a_stage() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates/local/src", "crates/cli/src", "crates/contract/src", "tests/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("vellum_core::stages"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "adapters that reach into a stage: {offenders:?}");
}
