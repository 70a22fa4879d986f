//! The format policy rules, in the style of Archivematica's format policy registry: which
//! outside tool characterizes (or validates) which PRONOM formats. A rule runs only where
//! its command is installed; its output is captured and bounded.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{StageError, StageResult};
use crate::model::File;
use crate::ports::ObjectStore;

pub const DEFAULT_RULES: &str = include_str!("../../../config/fpr.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Characterization,
    Validation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub purpose: Purpose,
    pub puids: Vec<String>,
    pub command: String,
    /// `{file}` stands for the file's path.
    pub args: Vec<String>,
    pub max_output: usize,
    /// Resolved once: where the command is, if installed.
    #[serde(skip)]
    pub installed: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct RulesFile {
    rules: Vec<Rule>,
}

fn find_on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(command)).find(|p| p.is_file())
}

impl Rules {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        let mut file: RulesFile = serde_json::from_str(json)?;
        for r in &mut file.rules {
            r.installed = find_on_path(&r.command);
        }
        Ok(Self { rules: file.rules })
    }

    pub fn builtin() -> Self {
        Self::parse(DEFAULT_RULES).expect("the built-in rules file is valid")
    }

    /// The installed rules for this purpose that apply to the file's format.
    pub fn rules_for<'a>(&'a self, purpose: Purpose, file: &'a File) -> impl Iterator<Item = &'a Rule> + 'a {
        let puid = file.format.as_ref().map(|f| f.puid.as_str());
        self.rules.iter().filter(move |r| {
            r.purpose == purpose && r.installed.is_some() && puid.is_some_and(|p| r.puids.iter().any(|x| x == p))
        })
    }
}

/// Runs a rule's command on a copy of the object; returns its output, cut at the rule's
/// bound, or None when the command failed.
pub fn run_rule(rule: &Rule, store: &dyn ObjectStore, key: &str) -> StageResult<Option<String>> {
    let Some(program) = &rule.installed else { return Ok(None) };
    let mut tmp = tempfile_in_tmp()?;
    std::io::copy(&mut store.get(key)?, &mut tmp.1)?;
    tmp.1.flush()?;
    let path = tmp.0.to_string_lossy().into_owned();
    let args: Vec<String> = rule.args.iter().map(|a| a.replace("{file}", &path)).collect();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| StageError::Transient(format!("running {}: {e}", rule.command)))?;
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout.take(rule.max_output as u64).read_to_end(&mut out)?;
    }
    let _ = child.kill();
    let status = child.wait()?;
    let _ = std::fs::remove_file(&tmp.0);
    if !status.success() && out.is_empty() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}

fn tempfile_in_tmp() -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = std::env::temp_dir().join(format!("vellum-fpr-{}", uuid::Uuid::new_v4()));
    let f = std::fs::File::create(&path)?;
    Ok((path, f))
}
