//! What the CLI's end-to-end tests share: the built `vellum`, a `vellum serve` that is
//! killed however a test ends, requests to its dashboard, and a registered user's key.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

pub fn vellum() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vellum"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `vellum serve` and its status port, killed however the test ends.
pub struct Served(pub std::process::Child, pub u16);

impl Served {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn serve(data: &Path) -> Served {
    serve_logging_to(data, Stdio::null())
}

/// `vellum serve` as [`serve`] starts it, its log written to `log`.
pub fn serve_logging_to(data: &Path, log: impl Into<Stdio>) -> Served {
    let port = free_port();
    let child = vellum()
        .args(["serve", "--batch-size", "1", "--budget-secs", "0", "--visibility-secs", "2"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .args(["--scan-interval-ms", "100"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start vellum serve");
    Served(child, port)
}

/// Waits until the dashboard answers its health check.
pub fn wait_until_up(served: &Served) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", served.1)).is_err() {
        assert!(std::time::Instant::now() < deadline, "vellum serve never answered on port {}", served.1);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// GETs a path from a serve's dashboard, with an authorization header unless None; the
/// status line and the JSON body.
pub fn get(port: u16, path: &str, authorization: Option<&str>) -> (String, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the dashboard");
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap_or_default().to_string(), serde_json::from_str(body).expect("a JSON body"))
}

/// Registers a user with `vellum users add` and gives them a key with `vellum api-keys
/// create`, whose last line is the key alone.
pub fn registered(data: &Path, name: &str) -> String {
    let added = vellum().args(["users", "add", name, "--role", "operator", "--data-dir"]).arg(data).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let created = vellum().args(["api-keys", "create", "--user", name, "--data-dir"]).arg(data).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let out = String::from_utf8(created.stdout).unwrap();
    let key = out.lines().last().unwrap().to_string();
    assert!(key.len() == 40 && key.chars().all(|c| c.is_ascii_hexdigit()), "the last line is the key alone: {out}");
    format!("ApiKey {name}:{key}")
}
