//! Outside tools as child processes. Each file is copied into a temporary folder under its
//! own name (removed however the call ends) and the tool runs in that folder, so what it
//! reports names the file, not a temporary path. A call has a timeout and keeps at most its
//! bound of output: a tool that hangs on a damaged file is killed, a tool that writes without
//! end is cut off. ExifTool runs once a batch (`-stay_open`), fed file after file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vellum_core::ports::{
    Conversion, ObjectStore, OneProcessAFile, PortError, PortResult, ToolCall, ToolOutput, ToolRunner, ToolSession,
};

/// How much of a failing tool's standard error is kept to say why it failed.
const STDERR_KEPT: u64 = 2048;
/// What ExifTool writes after each file's output in `-stay_open` mode.
const READY: &[u8] = b"{ready}";

pub struct ProcessTools {
    /// Where temporary copies go (the system's temporary folder by default).
    temp_dir: Option<PathBuf>,
    /// Commands found on PATH, resolved once each.
    found: Mutex<HashMap<String, Option<PathBuf>>>,
    /// Versions, asked once each.
    versions: Mutex<HashMap<String, Option<String>>>,
    /// `-stay_open` processes between batches, by command: a worker's next batch (or a warm
    /// Lambda's next invocation) takes one instead of starting Perl again.
    idle: Mutex<HashMap<String, Vec<Running>>>,
}

/// Idle processes kept per command at most (a worker each, on a two-core machine).
const IDLE_KEPT: usize = 4;

impl Default for ProcessTools {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessTools {
    pub fn new() -> Self {
        Self {
            temp_dir: None,
            found: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        }
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

    fn scratch(&self) -> std::io::Result<tempfile::TempDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("vellum-tool-");
        match &self.temp_dir {
            Some(dir) => builder.tempdir_in(dir),
            None => builder.tempdir(),
        }
    }
}

/// Puts the object into `dir` under the last part of `name`: a link to it where the store
/// is a folder on this machine, a copy otherwise. Returns how the tool is to be given it
/// (`./-x.png` for a name a tool would take for an option).
fn copy_in(dir: &Path, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<String> {
    let base = name.rsplit('/').next().filter(|b| !b.is_empty() && *b != "." && *b != "..").unwrap_or("file");
    let target = dir.join(base);
    let linked = source.local_path(key).is_some_and(|path| std::os::unix::fs::symlink(path, &target).is_ok());
    if !linked {
        let mut file = std::fs::File::create(&target)?;
        std::io::copy(&mut source.get(key)?, &mut file)?;
        file.flush()?;
    }
    Ok(if base.starts_with('-') { format!("./{base}") } else { base.to_string() })
}

/// Writes the call's inputs (a policy) into the tool's folder, under names of Vellum's
/// choosing that no object's copy takes, and puts the first one's name for `{policy}`.
fn with_inputs(dir: &Path, call: &ToolCall<'_>, args: Vec<String>) -> PortResult<Vec<String>> {
    let mut names = Vec::new();
    for (i, (name, text)) in call.inputs.iter().enumerate() {
        let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
        let file = format!("vellum-input-{i}-{safe}");
        std::fs::write(dir.join(&file), text)?;
        names.push(file);
    }
    Ok(match names.first() {
        Some(policy) => args.into_iter().map(|a| a.replace("{policy}", policy)).collect(),
        None => args,
    })
}

/// What a tool said, on standard error then standard output.
fn words(err: &[u8], out: &[u8]) -> String {
    [String::from_utf8_lossy(err).trim(), String::from_utf8_lossy(out).trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a pipe to its end on its own thread, keeping the first `keep` bytes: past the bound
/// the rest is read, counted and dropped, so the tool is never blocked on a full pipe.
/// Gives the bytes kept and the number written in all.
fn drain(mut pipe: impl Read + Send + 'static, keep: u64) -> std::thread::JoinHandle<(Vec<u8>, u64)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut pipe).take(keep).read_to_end(&mut kept);
        let rest = std::io::copy(&mut pipe, &mut std::io::sink()).unwrap_or(0);
        let total = kept.len() as u64 + rest;
        (kept, total)
    })
}

/// A tool's answer as it is to be recorded: whole, or cut at the bound and said to be.
fn recorded(out: &[u8], total: u64) -> ToolOutput {
    let text = String::from_utf8_lossy(out).into_owned();
    if total > out.len() as u64 {
        ToolOutput::Cut { kept: text, total }
    } else {
        ToolOutput::Output(text)
    }
}

impl ToolRunner for ProcessTools {
    fn installed(&self, command: &str) -> bool {
        self.program(command).is_some()
    }

    fn version(&self, command: &str, args: &[String]) -> Option<String> {
        let program = self.program(command)?;
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions
            .entry(command.to_string())
            .or_insert_with(|| {
                let out = Command::new(program).args(args).stdin(Stdio::null()).output().ok()?;
                version_in(&String::from_utf8_lossy(&out.stdout))
            })
            .clone()
    }

    fn run(&self, call: &ToolCall<'_>, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput> {
        let Some(program) = self.program(call.command) else {
            return Ok(ToolOutput::Failed(format!("{} is not installed", call.command)));
        };
        let dir = self.scratch()?;
        let file = copy_in(dir.path(), source, key, name)?;
        let args = with_inputs(dir.path(), call, call.args.iter().map(|a| a.replace("{file}", &file)).collect())?;
        let finished = run_bounded(&program, &args, dir.path(), call.max_output, call.timeout)?;
        drop(dir);
        let (out, total, err, status) = match finished {
            Finished::Done { out, total, err, status } => (out, total, err, status),
            Finished::TimedOut => {
                tracing::warn!(command = call.command, key, "an outside tool ran past its timeout and was stopped");
                return Ok(ToolOutput::TimedOut);
            }
        };
        if !status.success() && out.is_empty() {
            let why = String::from_utf8_lossy(&err).trim().to_string();
            return Ok(ToolOutput::Failed(if why.is_empty() { format!("exit status {status}") } else { why }));
        }
        Ok(recorded(&out, total))
    }

    fn convert(
        &self,
        call: &ToolCall<'_>,
        source: &dyn ObjectStore,
        key: &str,
        name: &str,
        output_name: &str,
        destination: &dyn ObjectStore,
        destination_key: &str,
    ) -> PortResult<Conversion> {
        let Some(program) = self.program(call.command) else {
            return Ok(Conversion::Failed(format!("{} is not installed", call.command)));
        };
        let dir = self.scratch()?;
        let file = copy_in(dir.path(), source, key, name)?;
        // A TIFF made of a TIFF named like the output would overwrite its own input.
        let output = if file.trim_start_matches("./") == output_name {
            format!("vellum-{output_name}")
        } else {
            output_name.to_string()
        };
        let base = output.rsplit_once('.').map_or(output.as_str(), |(base, _)| base);
        let fill = |args: &[String]| -> Vec<String> {
            args.iter()
                .map(|a| {
                    a.replace("{file}", &file)
                        .replace("{output_base}", base)
                        .replace("{output}", &output)
                        .replace("{work}", "vellum-work")
                })
                .collect()
        };
        // The steps before the tool share its timeout: a scan rendered slowly leaves the
        // reader less time, never more.
        let deadline = std::time::Instant::now() + call.timeout;
        for (command, args) in &call.before {
            let Some(step) = self.program(command) else {
                return Ok(Conversion::Failed(format!("{command} is not installed")));
            };
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let args = with_inputs(dir.path(), call, fill(args))?;
            match run_bounded(&step, &args, dir.path(), call.max_output, left)? {
                Finished::Done { status, .. } if status.success() => {}
                Finished::Done { err, out, status, .. } => {
                    let said = words(&err, &out);
                    return Ok(Conversion::Failed(format!(
                        "{command}, run before {}, ended with {status}: {said}",
                        call.command
                    )));
                }
                Finished::TimedOut => {
                    tracing::warn!(command, key, "a step before a conversion ran past its timeout and was stopped");
                    return Ok(Conversion::TimedOut);
                }
            }
        }
        let args = with_inputs(dir.path(), call, fill(call.args))?;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (out, err, status) = match run_bounded(&program, &args, dir.path(), call.max_output, left)? {
            Finished::Done { out, err, status, .. } => (out, err, status),
            Finished::TimedOut => {
                tracing::warn!(command = call.command, key, "a conversion ran past its timeout and was stopped");
                return Ok(Conversion::TimedOut);
            }
        };
        let said = words(&err, &out);
        let made = dir.path().join(&output);
        let size = std::fs::metadata(&made).ok().filter(|m| m.is_file()).map(|m| m.len());
        let Some(size) = size.filter(|_| status.success()) else {
            let what = if status.success() { "wrote no file".to_string() } else { format!("ended with {status}") };
            return Ok(Conversion::Failed(if said.is_empty() { what } else { format!("{what}: {said}") }));
        };
        let mut writer = destination.writer(destination_key)?;
        std::io::copy(&mut std::fs::File::open(&made)?, &mut writer)?;
        writer.commit()?;
        Ok(Conversion::Made { size, said })
    }

    fn session<'a>(&'a self, call: ToolCall<'a>) -> Box<dyn ToolSession + 'a> {
        if call.stay_open {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut running = None;
            while let Some(mut candidate) = idle.get_mut(call.command).and_then(Vec::pop) {
                // One whose starting thread has ended went with it (the parent-death signal
                // is per thread): it is not taken.
                if matches!(candidate.child.try_wait(), Ok(None)) {
                    running = Some(candidate);
                    break;
                }
            }
            drop(idle);
            Box::new(StayOpen { tools: self, call, running, failed_to_start: None })
        } else if call.per_batch {
            Box::new(PerBatch { tools: self, call, answers: HashMap::new() })
        } else {
            Box::new(OneProcessAFile { runner: self, call })
        }
    }
}

/// The first thing in a tool's version answer that looks like a version: `12.57`,
/// `v23.04` (MediaInfo's "MediaInfoLib - v23.04").
fn version_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_start_matches('v'))
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .map(str::to_string)
}

/// One MediaInfo call for a batch's files, its XML split into one document a file.
struct PerBatch<'a> {
    tools: &'a ProcessTools,
    call: ToolCall<'a>,
    /// Each prepared object's answer, by key.
    answers: HashMap<String, ToolOutput>,
}

impl PerBatch<'_> {
    /// One call for objects whose file names differ (the tool's answer names each file).
    fn call_once(&mut self, source: &dyn ObjectStore, objects: &[&(String, String)]) -> PortResult<()> {
        let Some(program) = self.tools.program(self.call.command) else {
            for (key, _) in objects {
                self.answers.insert(key.clone(), ToolOutput::Failed(format!("{} is not installed", self.call.command)));
            }
            return Ok(());
        };
        let dir = self.tools.scratch()?;
        let mut names = Vec::with_capacity(objects.len());
        for (key, name) in objects {
            names.push(copy_in(dir.path(), source, key, name)?);
        }
        let mut args = Vec::new();
        for a in self.call.args {
            if a == "{file}" {
                args.extend(names.iter().cloned());
            } else {
                args.push(a.replace("{file}", ""));
            }
        }
        let n = objects.len() as u32;
        let run = run_bounded(
            &program,
            &args,
            dir.path(),
            self.call.max_output.saturating_mul(objects.len()),
            self.call.timeout * n.max(1),
        )?;
        let (out, why) = match run {
            Finished::TimedOut => {
                for (key, _) in objects {
                    self.answers.insert(key.clone(), ToolOutput::TimedOut);
                }
                return Ok(());
            }
            Finished::Done { out, err, .. } => (out, String::from_utf8_lossy(&err).trim().to_string()),
        };
        let mut documents = split_media(&String::from_utf8_lossy(&out));
        for ((key, _), name) in objects.iter().zip(&names) {
            let name = name.strip_prefix("./").unwrap_or(name);
            let answer = match documents.remove(name) {
                Some(doc) if doc.len() <= self.call.max_output => ToolOutput::Output(doc),
                Some(doc) => {
                    let mut end = self.call.max_output;
                    while !doc.is_char_boundary(end) {
                        end -= 1;
                    }
                    ToolOutput::Cut { kept: doc[..end].to_string(), total: doc.len() as u64 }
                }
                None if why.is_empty() => ToolOutput::Failed("no answer for this file".into()),
                None => ToolOutput::Failed(why.clone()),
            };
            self.answers.insert(key.clone(), answer);
        }
        Ok(())
    }
}

impl ToolSession for PerBatch<'_> {
    fn prepare(&mut self, source: &dyn ObjectStore, objects: &[(String, String)]) -> PortResult<()> {
        // Calls in rounds, so that no two files of one call share a name.
        let mut left: Vec<&(String, String)> = objects.iter().collect();
        while !left.is_empty() {
            let mut seen = std::collections::HashSet::new();
            let (round, rest): (Vec<_>, Vec<_>) = left
                .into_iter()
                .partition(|(_, name)| seen.insert(name.rsplit('/').next().unwrap_or(name).to_string()));
            self.call_once(source, &round)?;
            left = rest;
        }
        Ok(())
    }

    fn run(&mut self, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput> {
        match self.answers.remove(key) {
            Some(answer) => Ok(answer),
            None => self.tools.run(&self.call, source, key, name),
        }
    }
}

/// MediaInfo's XML for many files as one document a file: the root element around each
/// `<media ref="NAME">`, by NAME.
fn split_media(xml: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(doc) = roxmltree::Document::parse(xml) else { return out };
    let root = doc.root_element();
    let open_end = xml[root.range()].find('>').map(|i| root.range().start + i + 1);
    let Some(open_end) = open_end else { return out };
    let open = &xml[root.range().start..open_end];
    let close = format!("</{}>", &open[1..].split(|c: char| c.is_whitespace() || c == '>').next().unwrap_or(""));
    for media in root.children().filter(|n| n.has_tag_name("media") || n.tag_name().name() == "media") {
        if let Some(name) = media.attribute("ref") {
            out.insert(name.to_string(), format!("{open}\n{}\n{close}\n", &xml[media.range()]));
        }
    }
    out
}

/// How a bounded run ended.
enum Finished {
    /// `total`: bytes written to standard output in all, of which `out` holds the first.
    Done {
        out: Vec<u8>,
        total: u64,
        err: Vec<u8>,
        status: std::process::ExitStatus,
    },
    TimedOut,
}

/// Runs the program in `dir`, keeping at most `max` bytes of its output, killing it after
/// `timeout`. Its HOME is a folder of its own inside `dir`: MediaConch keeps a SQLite
/// database under HOME, and two runs sharing one (two workers, two transfers) answered
/// nothing at all, a pass read as an empty failure; no tool reads a person's settings either.
fn run_bounded(program: &Path, args: &[String], dir: &Path, max: usize, timeout: Duration) -> PortResult<Finished> {
    let home = dir.join(".home");
    std::fs::create_dir_all(&home)?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PortError::Unavailable(format!("starting {}: {e}", program.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    // Readers on their own threads, so a full pipe never stalls the clock below.
    let out_reader = drain(stdout, max as u64);
    let err_reader = drain(stderr, STDERR_KEPT);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (out, total) = out_reader.join().unwrap_or_default();
    let (err, _) = err_reader.join().unwrap_or_default();
    Ok(match status {
        Some(status) => Finished::Done { out, total, err, status },
        None => Finished::TimedOut,
    })
}

/// ExifTool in `-stay_open` mode does not end when its standard input closes: were Vellum
/// killed (SIGKILL, a Lambda timeout), it would poll for ever. The kernel ends it with its
/// parent instead.
fn dies_with_its_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid, _exit.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the request above.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// One ExifTool process for a batch of files.
struct StayOpen<'a> {
    tools: &'a ProcessTools,
    call: ToolCall<'a>,
    running: Option<Running>,
    /// Why the process could not be started: said once, for every file after.
    failed_to_start: Option<String>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    /// Each file's output, up to the `{ready}` line (cut at the call's bound).
    /// Each answer: the bytes kept and how many were written.
    outputs: Receiver<(Vec<u8>, u64)>,
    /// The newest standard error, to say why a file gave no output.
    errors: Arc<Mutex<Vec<u8>>>,
    dir: tempfile::TempDir,
}

impl Running {
    fn start(tools: &ProcessTools, call: &ToolCall<'_>) -> PortResult<Self> {
        let program = tools
            .program(call.command)
            .ok_or_else(|| PortError::Unavailable(format!("{} is not installed", call.command)))?;
        let dir = tools.scratch()?;
        let mut command = Command::new(program);
        dies_with_its_parent(&mut command);
        let mut child = command
            .args(["-stay_open", "True", "-@", "-"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| PortError::Unavailable(format!("starting {}: {e}", call.command)))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (send, outputs) = mpsc::channel();
        let max = call.max_output;
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut kept = Vec::new();
            let mut total = 0u64;
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line.trim_ascii_end() == READY {
                    if send.send((std::mem::take(&mut kept), std::mem::take(&mut total))).is_err() {
                        return;
                    }
                } else {
                    total += line.len() as u64;
                    if kept.len() < max {
                        let room = max - kept.len();
                        kept.extend_from_slice(&line[..line.len().min(room)]);
                    }
                }
            }
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let kept = errors.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() < STDERR_KEPT as usize {
                    kept.extend_from_slice(&line);
                }
                line.clear();
            }
        });
        Ok(Self { child, stdin, outputs, errors, dir })
    }

    fn stop(mut self) {
        let _ = self.stdin.write_all(b"-stay_open\nFalse\n");
        let _ = self.stdin.flush();
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the tool last wrote to standard error, trimmed.
    fn last_error(&self) -> String {
        let err = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&err).trim().to_string()
    }
}

impl ToolSession for StayOpen<'_> {
    fn run(&mut self, source: &dyn ObjectStore, key: &str, name: &str) -> PortResult<ToolOutput> {
        if let Some(why) = &self.failed_to_start {
            return Ok(ToolOutput::Failed(why.clone()));
        }
        if self.running.is_none() {
            match Running::start(self.tools, &self.call) {
                Ok(r) => self.running = Some(r),
                Err(PortError::Unavailable(why)) => {
                    self.failed_to_start = Some(why.clone());
                    return Ok(ToolOutput::Failed(why));
                }
                Err(e) => return Err(e),
            }
        }
        let running = self.running.as_mut().expect("started above");
        let file = copy_in(running.dir.path(), source, key, name)?;
        running.errors.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut args = String::new();
        for a in self.call.args {
            args.push_str(&a.replace("{file}", &file));
            args.push('\n');
        }
        args.push_str("-execute\n");
        let sent = running.stdin.write_all(args.as_bytes()).and_then(|()| running.stdin.flush());
        let answer = match sent {
            Ok(()) => running.outputs.recv_timeout(self.call.timeout),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        let _ = std::fs::remove_file(running.dir.path().join(&file));
        match answer {
            Ok((out, total)) if !out.is_empty() => Ok(recorded(&out, total)),
            Ok(_) => {
                let why = running.last_error();
                Ok(ToolOutput::Failed(if why.is_empty() { "no output".into() } else { why }))
            }
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    command = self.call.command,
                    key,
                    "an outside tool ran past its timeout and was stopped"
                );
                // The process is stuck on this file: a new one takes the next.
                if let Some(r) = self.running.take() {
                    r.kill();
                }
                Ok(ToolOutput::TimedOut)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let mut r = self.running.take().expect("running");
                let status = r.child.wait()?;
                Ok(ToolOutput::Failed(format!("{} stopped ({status}): {}", self.call.command, r.last_error())))
            }
        }
    }
}

impl Drop for StayOpen<'_> {
    /// The process waits for the next batch, unless enough already do.
    fn drop(&mut self) {
        let Some(mut running) = self.running.take() else { return };
        if matches!(running.child.try_wait(), Ok(None)) {
            let mut idle = self.tools.idle.lock().unwrap_or_else(|p| p.into_inner());
            let kept = idle.entry(self.call.command.to_string()).or_default();
            if kept.len() < IDLE_KEPT {
                kept.push(running);
                return;
            }
        }
        running.stop();
    }
}

impl Drop for ProcessTools {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for running in idle.into_values().flatten() {
            running.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mediainfo_xml_for_many_files_is_split_into_a_document_a_file() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<MediaInfo xmlns="https://mediaarea.net/mediainfo" version="2.0">
<creatingLibrary version="23.04">MediaInfoLib</creatingLibrary>
<media ref="a.wav"><track type="General"><Format>Wave</Format></track></media>
<media ref="b &amp; c.wav"><track type="General"><Format>Wave</Format></track></media>
</MediaInfo>"#;
        let split = split_media(xml);
        assert_eq!(split.len(), 2);
        let a = roxmltree::Document::parse(&split["a.wav"]).unwrap();
        assert_eq!(a.root_element().tag_name().name(), "MediaInfo");
        assert_eq!(a.root_element().children().filter(|n| n.is_element()).count(), 1);
        assert!(split["b & c.wav"].contains(r#"ref="b &amp; c.wav""#));
        assert!(split_media("not xml").is_empty());
    }

    #[test]
    fn versions_are_read_from_the_tools_answers() {
        assert_eq!(version_in("12.57\n").as_deref(), Some("12.57"));
        assert_eq!(version_in("MediaInfo Command line, \nMediaInfoLib - v23.04\n").as_deref(), Some("23.04"));
        assert_eq!(version_in("no version here"), None);
    }
}
