//! The format policy rules, in the style of Archivematica's format policy registry: which
//! outside tool characterizes (or validates) which PRONOM formats. A rule applies only where
//! the host has its command installed; the host runs it (the `ToolRunner` port), with the
//! rule's output bound and timeout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::File;
use crate::ports::{ToolCall, ToolRunner};

pub const DEFAULT_RULES: &str = include_str!("../../../../config/fpr.json");

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
    /// One process for a whole batch, by ExifTool's `-stay_open` protocol.
    #[serde(default)]
    pub stay_open: bool,
    /// One call for a whole batch's files, its answer split by file (MediaInfo's XML).
    #[serde(default)]
    pub per_batch: bool,
    /// What the tool answers with its version (`-ver`, `--Version`): the PREMIS event
    /// names the program and its version.
    #[serde(default)]
    pub version_args: Vec<String>,
    /// `xml`: the output is an XML document, recorded as XML in the METS (ExifTool's `-X`
    /// inside `objectCharacteristicsExtension`, as Archivematica records it); `text`: as
    /// a property's text.
    #[serde(default)]
    pub output: RuleOutput,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutput {
    #[default]
    Text,
    Xml,
}

/// The characteristics key an XML output is kept under: the METS writer embeds these as
/// XML, not text.
pub fn xml_key(rule_name: &str) -> String {
    format!("{rule_name}{XML_SUFFIX}")
}

pub const XML_SUFFIX: &str = ".xml";

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
        file: &File,
        tools: &dyn ToolRunner,
    ) -> impl Iterator<Item = &'a Rule> + use<'a> {
        let puid = file.format.as_ref().map(|f| f.puid.as_str());
        let rules: Vec<&'a Rule> = self
            .rules
            .iter()
            .filter(|r| {
                r.purpose == purpose
                    && puid.is_some_and(|p| r.puids.iter().any(|x| x == p))
                    && tools.installed(&r.command)
            })
            .collect();
        rules.into_iter()
    }
}

impl Rule {
    /// How the host runs this rule's command.
    pub fn call(&self) -> ToolCall<'_> {
        ToolCall {
            command: &self.command,
            args: &self.args,
            max_output: self.max_output,
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            stay_open: self.stay_open,
            per_batch: self.per_batch,
        }
    }
}

/// A batch's sessions, one per rule that has run, opened when first needed; the tools'
/// versions, asked once.
pub struct Sessions<'a> {
    tools: &'a dyn ToolRunner,
    open: std::collections::HashMap<String, (Box<dyn crate::ports::ToolSession + 'a>, Option<String>)>,
}

impl<'a> Sessions<'a> {
    pub fn new(tools: &'a dyn ToolRunner) -> Self {
        Self { tools, open: Default::default() }
    }

    /// Tells the rules' sessions which files of the batch they apply to, before the first.
    pub fn prepare(
        &mut self,
        rules: &'a Rules,
        purpose: Purpose,
        files: &[File],
        source: &dyn crate::ports::ObjectStore,
        key_of: impl Fn(&File) -> String,
    ) -> crate::ports::PortResult<()> {
        for rule in rules.rules.iter().filter(|r| r.purpose == purpose && r.per_batch) {
            let objects: Vec<(String, String)> = files
                .iter()
                .filter(|f| rules.rules_for(purpose, f, self.tools).any(|r| r.name == rule.name))
                .map(|f| (key_of(f), f.current_path.clone()))
                .collect();
            if !objects.is_empty() {
                self.of(rule).0.prepare(source, &objects)?;
            }
        }
        Ok(())
    }

    /// The rule's session and its tool's version.
    pub fn of(&mut self, rule: &'a Rule) -> (&mut dyn crate::ports::ToolSession, Option<&str>) {
        let tools = self.tools;
        let (session, version) = self.open.entry(rule.name.clone()).or_insert_with(|| {
            let version =
                (!rule.version_args.is_empty()).then(|| tools.version(&rule.command, &rule.version_args)).flatten();
            (tools.session(rule.call()), version)
        });
        (session.as_mut(), version.as_deref())
    }
}
