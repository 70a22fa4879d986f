//! The format policy rules, in the style of Archivematica's format policy registry: which
//! outside tool characterizes (or validates) which PRONOM formats. A rule applies only where
//! the host has its command installed; the host runs it (the `ToolRunner` port), with the
//! rule's output bound and timeout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::File;
use crate::ports::{ObjectStore, PortResult, ToolCall, ToolOutput, ToolRunner};

pub const DEFAULT_RULES: &str = include_str!("../../../config/fpr.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Characterization,
    Validation,
}

fn default_timeout() -> u64 {
    60
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub purpose: Purpose,
    pub puids: Vec<String>,
    pub command: String,
    /// `{file}` stands for the file's path.
    pub args: Vec<String>,
    pub max_output: usize,
    /// Seconds before the tool is killed: one damaged file never holds a batch forever.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct RulesFile {
    rules: Vec<Rule>,
}

impl Rules {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        let file: RulesFile = serde_json::from_str(json)?;
        Ok(Self { rules: file.rules })
    }

    pub fn builtin() -> Self {
        Self::parse(DEFAULT_RULES).expect("the built-in rules file is valid")
    }

    /// The rules for this purpose that apply to the file's format and whose command the
    /// host has.
    pub fn rules_for<'a>(
        &'a self,
        purpose: Purpose,
        file: &'a File,
        tools: &'a dyn ToolRunner,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        let puid = file.format.as_ref().map(|f| f.puid.as_str());
        self.rules.iter().filter(move |r| {
            r.purpose == purpose && puid.is_some_and(|p| r.puids.iter().any(|x| x == p)) && tools.installed(&r.command)
        })
    }
}

/// Runs a rule's command on the object, through the host's tool runner.
pub fn run_rule(rule: &Rule, tools: &dyn ToolRunner, store: &dyn ObjectStore, key: &str) -> PortResult<ToolOutput> {
    let call = ToolCall {
        command: &rule.command,
        args: &rule.args,
        max_output: rule.max_output,
        timeout: Duration::from_secs(rule.timeout_seconds.max(1)),
    };
    tools.run(&call, store, key)
}
