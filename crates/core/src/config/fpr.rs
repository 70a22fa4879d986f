//! The format policy rules, in the style of Archivematica's format policy registry: which
//! outside tool characterizes (or validates) which PRONOM formats, and which one makes a
//! preservation copy (or an access copy, a thumbnail) of which, in what format. A rule
//! applies only where the host has its command installed; the host runs it (the
//! `ToolRunner` port), with the rule's output bound and timeout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::File;
use crate::ports::{ToolCall, ToolRunner};

pub const DEFAULT_RULES: &str = include_str!("../../../../config/fpr.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Characterization,
    Validation,
    /// A preservation copy, kept in the AIP beside its original.
    Preservation,
    /// An access copy, for the DIP.
    Access,
    /// A small JPEG, for the DIP.
    Thumbnail,
    /// The files inside a package (an archive) unpacked.
    Extraction,
    /// The text in an image or a scan (OCR).
    Transcription,
}

impl Purpose {
    /// Whether the rule's tool writes a file (`{output}`) rather than an answer.
    pub fn makes_a_file(self) -> bool {
        matches!(self, Purpose::Preservation | Purpose::Access | Purpose::Thumbnail | Purpose::Transcription)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Characterization => "characterization",
            Purpose::Validation => "validation",
            Purpose::Preservation => "preservation",
            Purpose::Access => "access",
            Purpose::Thumbnail => "thumbnail",
            Purpose::Extraction => "extraction",
            Purpose::Transcription => "transcription",
        }
    }
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
    /// `{file}` stands for the file's path; `{output}`, in a rule that makes a file, for the
    /// file the tool is to write (`{output_base}` for its name without the extension, for a
    /// tool that adds the extension itself, as Tesseract does).
    pub args: Vec<String>,
    /// For a characterization rule, the most output recorded; for one that makes a file,
    /// the most of the tool's own words kept.
    #[serde(default = "default_max_output")]
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
    /// What a rule that makes a file makes: the extension its file is named with (`tif`)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_extension: Option<String>,
    /// …and the PRONOM format it is expected to be (`fmt/353`), as the registry says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// A policy the tool checks the file against (`config/policies/<name>`, built in),
    /// given to it as `{policy}`: a MediaConch policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Commands run first, in order, in the same folder and within the same timeout, for a
    /// tool that cannot read the file itself: a scanned PDF rendered to page images
    /// (`{work}` names their scratch files) before Tesseract reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<Step>,
    /// A file larger than this is a long job for the rule's tool: where the runner has a
    /// time limit (a Lambda's 15 minutes), it is handed to a runner without one (a Fargate
    /// task fed by the stage's long-job queue). None: never long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_above_bytes: Option<u64>,
}

/// A command a rule runs before its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub command: String,
    pub args: Vec<String>,
}

/// An extraction rule's command: Vellum's own unpacking (`stages::extract`).
pub const BUILT_IN: &str = "built-in";

/// The package formats Vellum unpacks: ZIP, tar, gzipped tar, 7z.
pub const UNPACKABLE: &[&str] = &["x-fmt/263", "x-fmt/265", "x-fmt/266", "fmt/484"];

/// The policies rules may name, as data in `config/policies/`, built in.
const POLICIES: &[(&str, &str)] =
    &[("ffv1-mkv-preservation.xml", include_str!("../../../../config/policies/ffv1-mkv-preservation.xml"))];

/// A built-in policy's text, by its file name.
pub fn policy(name: &str) -> Option<&'static str> {
    POLICIES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

fn default_max_output() -> usize {
    65536
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

    /// Every problem with the rules, in words (empty when they are usable): what `vellum
    /// config check` says of a rules file.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        let mut chosen: std::collections::BTreeMap<(Purpose, &str), &str> = Default::default();
        for rule in &self.rules {
            let name = &rule.name;
            if !names.insert(name.as_str()) {
                problems.push(format!("two rules are called {name:?}: a rule's name is what its events name"));
            }
            if rule.command.trim().is_empty() {
                problems.push(format!("rule {name:?} names no command"));
            }
            if rule.puids.is_empty() {
                problems.push(format!("rule {name:?} names no PRONOM formats (puids)"));
            }
            for puid in &rule.puids {
                if !is_puid(puid) {
                    problems.push(format!("rule {name:?}: {puid:?} is not a PUID (fmt/N or x-fmt/N)"));
                }
                if rule.purpose.makes_a_file() {
                    if let Some(other) = chosen.insert((rule.purpose, puid.as_str()), name.as_str()) {
                        problems.push(format!(
                            "rules {other:?} and {name:?} both make the {} copy of {puid}: one rule a format and purpose",
                            rule.purpose.as_str()
                        ));
                    }
                }
            }
            for step in &rule.before {
                if step.command.trim().is_empty() {
                    problems.push(format!("rule {name:?}: a step before it names no command"));
                }
                if !rule.purpose.makes_a_file() || rule.per_batch || rule.stay_open {
                    problems.push(format!(
                        "rule {name:?}: steps before a tool are for a rule that makes a file, run once a file"
                    ));
                }
            }
            if rule.purpose == Purpose::Extraction {
                if rule.command != BUILT_IN {
                    problems.push(format!(
                        "rule {name:?}: Vellum unpacks packages itself; an extraction rule's command is {BUILT_IN:?}, \
                         not an outside tool"
                    ));
                }
                for puid in rule.puids.iter().filter(|p| !UNPACKABLE.contains(&p.as_str())) {
                    problems.push(format!(
                        "rule {name:?}: Vellum cannot unpack {puid}; it unpacks {}",
                        UNPACKABLE.join(", ")
                    ));
                }
                continue;
            }
            let all_args = || rule.args.iter().chain(rule.before.iter().flat_map(|s| &s.args));
            if !rule.per_batch && !all_args().any(|a| a.contains("{file}")) {
                problems
                    .push(format!("rule {name:?}: no argument holds {{file}}, so the tool is never given the file"));
            }
            let names_policy = rule.args.iter().any(|a| a.contains("{policy}"));
            match rule.policy.as_deref() {
                Some(p) if policy(p).is_none() => problems.push(format!(
                    "rule {name:?} names the policy {p:?}, which is not one of config/policies/ ({})",
                    POLICIES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )),
                Some(_) if !names_policy => {
                    problems.push(format!("rule {name:?} has a policy but no argument holds {{policy}}"))
                }
                None if names_policy => {
                    problems.push(format!("rule {name:?}: an argument holds {{policy}} but the rule names no policy"))
                }
                _ => {}
            }
            if rule.timeout_seconds == 0 || rule.max_output == 0 {
                problems.push(format!("rule {name:?}: max_output and timeout_seconds are at least 1"));
            }
            if rule.purpose.makes_a_file() {
                if !rule.args.iter().any(|a| a.contains("{output}") || a.contains("{output_base}")) {
                    problems.push(format!(
                        "rule {name:?} makes a {} copy, but no argument holds {{output}}, the file it is to write",
                        rule.purpose.as_str()
                    ));
                }
                match rule.output_extension.as_deref() {
                    Some(e) if !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric()) => {}
                    Some(e) => problems
                        .push(format!("rule {name:?}: output_extension {e:?} is not a plain extension (tif, mkv)")),
                    None => problems.push(format!("rule {name:?} makes a file but names no output_extension")),
                }
                match rule.output_format.as_deref() {
                    Some(p) if is_puid(p) => {}
                    Some(p) => problems.push(format!("rule {name:?}: output_format {p:?} is not a PUID")),
                    None => problems.push(format!("rule {name:?} makes a file but names no output_format (its PUID)")),
                }
                if rule.version_args.is_empty() {
                    problems.push(format!(
                        "rule {name:?} makes a file but has no version_args: its events must name the tool's version"
                    ));
                }
            }
        }
        problems
    }

    /// Whether an `extraction` rule names this package format (Vellum unpacks the formats
    /// of `stages::extract`'s list itself; the rules choose which of them are unpacked).
    pub fn unpacks(&self, puid: &str) -> bool {
        self.rules.iter().any(|r| r.purpose == Purpose::Extraction && r.puids.iter().any(|p| p == puid))
    }

    /// The one rule that makes the `purpose` copy of this file's format, if the file has a
    /// format and the rules name one (whether its tool is installed or not).
    pub fn maker_for(&self, purpose: Purpose, file: &File) -> Option<&Rule> {
        let puid = file.format.as_ref()?.puid.as_str();
        self.rules.iter().find(|r| r.purpose == purpose && r.puids.iter().any(|p| p == puid))
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
                    && r.commands().all(|c| tools.installed(c))
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
            inputs: self
                .policy
                .as_deref()
                .and_then(|p| policy(p).map(|text| (p.to_string(), text)))
                .into_iter()
                .collect(),
            before: self.before.iter().map(|s| (s.command.as_str(), s.args.as_slice())).collect(),
        }
    }

    /// Every command the rule runs: those before it, then its own.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.before.iter().map(|s| s.command.as_str()).chain(std::iter::once(self.command.as_str()))
    }
}

/// `fmt/353`, `x-fmt/111`.
fn is_puid(s: &str) -> bool {
    let number = s.strip_prefix("fmt/").or_else(|| s.strip_prefix("x-fmt/"));
    number.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
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

    /// Tells the rules' sessions which files of the batch they apply to, before the first;
    /// a rule `stopped` says is not run is left out.
    pub fn prepare(
        &mut self,
        rules: &'a Rules,
        purpose: Purpose,
        files: &[File],
        source: &dyn crate::ports::ObjectStore,
        key_of: impl Fn(&File) -> String,
        stopped: impl Fn(&Rule) -> bool,
    ) -> crate::ports::PortResult<()> {
        for rule in rules.rules.iter().filter(|r| r.purpose == purpose && r.per_batch && !stopped(r)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_are_usable_and_name_a_preservation_copy_for_each_kind() {
        let rules = Rules::builtin();
        assert_eq!(rules.problems(), Vec::<String>::new());
        let file = |puid: &str| File {
            format: Some(crate::model::FormatId {
                puid: puid.into(),
                name: String::new(),
                version: None,
                tentative: false,
            }),
            ..File::for_test("objects/a", "objects/a")
        };
        for (puid, made) in
            [("fmt/43", "fmt/353"), ("fmt/134", "fmt/141"), ("fmt/199", "fmt/569"), ("fmt/18", "fmt/476")]
        {
            let rule = rules.maker_for(Purpose::Preservation, &file(puid)).unwrap_or_else(|| panic!("{puid}"));
            assert_eq!(rule.output_format.as_deref(), Some(made), "{puid}");
        }
        for fit in ["fmt/353", "fmt/141", "x-fmt/111", "fmt/476"] {
            assert!(rules.maker_for(Purpose::Preservation, &file(fit)).is_none(), "{fit} is fit as it is");
        }
        // A scanned PDF is rendered to pages before Tesseract reads them.
        let ocr = rules.maker_for(Purpose::Transcription, &file("fmt/18")).expect("PDFs are transcribed");
        assert_eq!(ocr.commands().collect::<Vec<_>>(), ["gs", "tesseract"]);
        for package in crate::config::fpr::UNPACKABLE {
            assert!(rules.unpacks(package), "{package} is unpacked by the built-in rules");
        }
    }

    #[test]
    fn a_rule_that_makes_a_file_must_say_what_and_where() {
        let mut rules = Rules::builtin();
        let mut bad = rules.rules.iter().find(|r| r.purpose == Purpose::Preservation).unwrap().clone();
        bad.name = "to-tiff-again".into();
        bad.args = vec!["{file}".into()];
        bad.output_extension = Some("t.if".into());
        bad.output_format = Some("tiff".into());
        bad.version_args.clear();
        bad.puids.push("fmt/x".into());
        rules.rules.push(bad);
        let mut checker = rules.rules.iter().find(|r| r.policy.is_some()).unwrap().clone();
        checker.name = "no-such-policy".into();
        checker.policy = Some("absent.xml".into());
        rules.rules.push(checker.clone());
        checker.name = "policy-unnamed".into();
        checker.policy = None;
        rules.rules.push(checker);
        let mut unpacker = rules.rules.iter().find(|r| r.purpose == Purpose::Extraction).unwrap().clone();
        unpacker.name = "unar".into();
        unpacker.command = "unar".into();
        unpacker.puids = vec!["fmt/411".into()];
        rules.rules.push(unpacker);
        let mut reader = rules.rules.iter().find(|r| r.purpose == Purpose::Characterization).unwrap().clone();
        reader.name = "with-a-step".into();
        reader.before = vec![Step { command: "gs".into(), args: vec!["{file}".into()] }];
        rules.rules.push(reader);
        let said = rules.problems().join("\n");
        for problem in [
            "an extraction rule's command is \"built-in\", not an outside tool",
            "Vellum cannot unpack fmt/411",
            "\"with-a-step\": steps before a tool are for a rule that makes a file",
            "both make the preservation copy of fmt/41",
            "no argument holds {output}",
            "\"t.if\" is not a plain extension",
            "output_format \"tiff\" is not a PUID",
            "has no version_args",
            "\"fmt/x\" is not a PUID",
            "names the policy \"absent.xml\", which is not one of config/policies/",
            "\"policy-unnamed\": an argument holds {policy} but the rule names no policy",
        ] {
            assert!(said.contains(problem), "{problem}: {said}");
        }
    }
}
