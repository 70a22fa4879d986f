//! The outside tools' port: the field's tools run by the host as child processes.

use std::time::Duration;

use super::{ObjectStore, PortResult};

/// One call of an outside tool: `{file}` in `args` stands for the name of a copy of the
/// object the tool is run on, in the folder the tool runs in. The copy has the file's own
/// name, so what the tool reports about it names the file, the same on every run.
#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    /// Output beyond this many bytes is cut (and the tool stopped).
    pub max_output: usize,
    /// A tool still running after this long is killed.
    pub timeout: Duration,
    /// The tool speaks ExifTool's `-stay_open` protocol: one process takes file after file
    /// (its arguments, then `-execute`, on standard input) instead of one process a file.
    pub stay_open: bool,
    /// The tool takes a batch's files in one call, `{file}` standing for all of them, and
    /// answers with one `<media ref="NAME">` element a file (MediaInfo's XML).
    pub per_batch: bool,
    /// Files the tool reads beside the object (a MediaConch policy), by name and contents,
    /// put in the folder it runs in; `{policy}` in `args` stands for the first one's name.
    /// For a tool run once a file (`run`, `convert`).
    pub inputs: Vec<(String, &'static str)>,
    /// Commands run before this one, in the same folder, with the same placeholders and
    /// within the same timeout (`convert` only).
    pub before: Vec<(&'a str, &'a [String])>,
}

/// What an outside tool gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// What it wrote to standard output, whole.
    Output(String),
    /// Its output ran past the call's bound: the first `max_output` bytes, and how many it
    /// wrote in all. Never recorded as if it were the whole answer.
    Cut { kept: String, total: u64 },
    /// It failed and wrote nothing useful, and why.
    Failed(String),
    /// It ran past its timeout and was killed.
    TimedOut,
}

/// What a tool that makes a file (a preservation copy) made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversion {
    /// It wrote its file (perhaps empty: OCR of a picture without words), now at the
    /// destination key: the file's size, and what the tool said on the way (bounded).
    Made { size: u64, said: String },
    /// It failed, or wrote no file, and why, in its own words.
    Failed(String),
    /// It ran past its timeout and was killed; nothing was kept.
    TimedOut,
}

/// One tool run on file after file (a batch): with `stay_open`, one process for them all.
pub trait ToolSession {
    /// Runs the tool on the object; `name` is the file's name in the transfer, which the
    /// copy the tool reads is given.
    fn run(&mut self, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput>;
    /// The objects (key, name) the session will be asked for next: a `per_batch` tool runs
    /// once for them all here, and `run` answers from what it said.
    fn prepare(&mut self, _source: &dyn ObjectStore, _objects: &[(String, String)]) -> PortResult<()> {
        Ok(())
    }
}

/// Outside tools (ExifTool, MediaInfo) run by the host on a copy of an object: child
/// processes with a timeout and a temporary file that is always removed. Core never spawns
/// a process or writes a file itself.
pub trait ToolRunner: Send + Sync {
    /// Whether the command is installed where this runner runs it.
    fn installed(&self, command: &str) -> bool;
    /// The installed tool's version, from its own answer to `args` (None: not known).
    fn version(&self, command: &str, args: &[String]) -> Option<String>;
    /// A tool that cannot be started is an error (transient); one that fails is an answer.
    fn run(&self, call: &ToolCall<'_>, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput>;
    /// A session for a batch of files.
    fn session<'a>(&'a self, call: ToolCall<'a>) -> Box<dyn ToolSession + 'a>;
    /// Runs a tool that makes a file: `{file}` in the call's arguments stands for the
    /// object's copy (named as `name`), `{output}` for `output_name` beside it, which the
    /// tool writes and which is then put at `destination_key` in `destination`.
    #[allow(clippy::too_many_arguments)]
    fn convert(
        &self,
        call: &ToolCall<'_>,
        source: &dyn ObjectStore,
        key: &str,
        name: &str,
        output_name: &str,
        destination: &dyn ObjectStore,
        destination_key: &str,
    ) -> PortResult<Conversion>;
}

/// A session that runs the tool once a file: for tools without a batch protocol.
pub struct OneProcessAFile<'a> {
    pub runner: &'a dyn ToolRunner,
    pub call: ToolCall<'a>,
}

impl ToolSession for OneProcessAFile<'_> {
    fn run(&mut self, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput> {
        self.runner.run(&self.call, source, key, name)
    }
}

/// A host with no outside tools: every rule that needs one is left out.
pub struct NoTools;

impl ToolRunner for NoTools {
    fn installed(&self, _command: &str) -> bool {
        false
    }
    fn version(&self, _command: &str, _args: &[String]) -> Option<String> {
        None
    }
    fn run(&self, call: &ToolCall<'_>, _source: &dyn ObjectStore, _key: &str, _name: &str) -> PortResult<ToolOutput> {
        Ok(ToolOutput::Failed(format!("{} is not installed here", call.command)))
    }
    fn session<'a>(&'a self, call: ToolCall<'a>) -> Box<dyn ToolSession + 'a> {
        Box::new(OneProcessAFile { runner: self, call })
    }
    fn convert(
        &self,
        call: &ToolCall<'_>,
        _source: &dyn ObjectStore,
        _key: &str,
        _name: &str,
        _output_name: &str,
        _destination: &dyn ObjectStore,
        _destination_key: &str,
    ) -> PortResult<Conversion> {
        Ok(Conversion::Failed(format!("{} is not installed here", call.command)))
    }
}
