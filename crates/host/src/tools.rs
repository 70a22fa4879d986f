//! Outside tools as child processes. Each call copies the object into a temporary file
//! (removed however the call ends), runs the tool with a timeout, and keeps at most the
//! call's bound of its output: a tool that hangs on a damaged file is killed, a tool that
//! writes without end is cut off.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vellum_core::ports::{ObjectStore, PortError, PortResult, ToolCall, ToolOutput, ToolRunner};

/// How much of a failing tool's standard error is kept to say why it failed.
const STDERR_KEPT: u64 = 2048;

pub struct ProcessTools {
    /// Where temporary copies go (the system's temporary folder by default).
    temp_dir: Option<PathBuf>,
    /// Commands found on PATH, resolved once each.
    found: Mutex<HashMap<String, Option<PathBuf>>>,
}

impl Default for ProcessTools {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessTools {
    pub fn new() -> Self {
        Self { temp_dir: None, found: Mutex::new(HashMap::new()) }
    }

    /// Temporary copies go here instead (a Lambda function's `/tmp`, a test's folder).
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    fn program(&self, command: &str) -> Option<PathBuf> {
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        found
            .entry(command.to_string())
            .or_insert_with(|| {
                let path = std::env::var_os("PATH")?;
                std::env::split_paths(&path).map(|d| d.join(command)).find(|p| p.is_file())
            })
            .clone()
    }
}

/// Reads a pipe to its end on its own thread, keeping the first `keep` bytes: past the bound
/// the rest is read and dropped, so the tool is never blocked on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static, keep: u64) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut pipe).take(keep).read_to_end(&mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        kept
    })
}

impl ToolRunner for ProcessTools {
    fn installed(&self, command: &str) -> bool {
        self.program(command).is_some()
    }

    fn run(&self, call: &ToolCall<'_>, source: &dyn ObjectStore, key: &str) -> PortResult<ToolOutput> {
        let Some(program) = self.program(call.command) else {
            return Ok(ToolOutput::Failed(format!("{} is not installed", call.command)));
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix("vellum-tool-");
        let mut copy = match &self.temp_dir {
            Some(dir) => builder.tempfile_in(dir)?,
            None => builder.tempfile()?,
        };
        std::io::copy(&mut source.get(key)?, copy.as_file_mut())?;
        copy.as_file_mut().flush()?;
        let path = copy.path().to_string_lossy().into_owned();
        let args: Vec<String> = call.args.iter().map(|a| a.replace("{file}", &path)).collect();
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| PortError::Unavailable(format!("starting {}: {e}", call.command)))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let max = call.max_output as u64;
        // Readers on their own threads, so a full pipe never stalls the clock below.
        let out_reader = drain(stdout, max);
        let err_reader = drain(stderr, STDERR_KEPT);
        let deadline = Instant::now() + call.timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        drop(copy);
        let Some(status) = status else {
            tracing::warn!(command = call.command, key, "an outside tool ran past its timeout and was stopped");
            return Ok(ToolOutput::TimedOut);
        };
        if !status.success() && out.is_empty() {
            let why = String::from_utf8_lossy(&err).trim().to_string();
            return Ok(ToolOutput::Failed(if why.is_empty() { format!("exit status {status}") } else { why }));
        }
        Ok(ToolOutput::Output(String::from_utf8_lossy(&out).into_owned()))
    }
}
