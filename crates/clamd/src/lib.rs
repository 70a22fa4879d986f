//! clamd over TCP: `zINSTREAM` with length-prefixed chunks, `zVERSION`, `zPING`. The same
//! adapter serves AWS (a clamd service beside the functions) and the embedded mode.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use vellum_core::ports::{PortError, PortResult, ScanVerdict, VirusScanner};

const CHUNK: usize = 64 * 1024;

pub struct Clamd {
    addr: String,
    timeout: Duration,
}

impl Clamd {
    pub fn new(addr: &str) -> Self {
        Self { addr: addr.to_string(), timeout: Duration::from_secs(120) }
    }

    pub fn address(&self) -> &str {
        &self.addr
    }

    fn connect(&self) -> PortResult<TcpStream> {
        let unavailable = |e: String| PortError::Unavailable(format!("clamd at {} cannot be reached: {e}", self.addr));
        let addrs: Vec<SocketAddr> = self.addr.to_socket_addrs().map_err(|e| unavailable(e.to_string()))?.collect();
        let mut last = String::from("no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                Ok(s) => {
                    // Small frames (a 4-byte length, then data) must not wait on Nagle.
                    s.set_nodelay(true).map_err(|e| unavailable(e.to_string()))?;
                    s.set_read_timeout(Some(self.timeout)).map_err(|e| unavailable(e.to_string()))?;
                    s.set_write_timeout(Some(self.timeout)).map_err(|e| unavailable(e.to_string()))?;
                    return Ok(s);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(unavailable(last))
    }

    fn command(&self, cmd: &[u8]) -> PortResult<String> {
        let mut s = self.connect()?;
        s.write_all(cmd).map_err(|e| self.io(e))?;
        read_reply(&mut s).map_err(|e| self.io(e))
    }

    fn io(&self, e: io::Error) -> PortError {
        PortError::Unavailable(format!("talking to clamd at {}: {e}", self.addr))
    }

    /// Whether clamd answers.
    pub fn ping(&self) -> bool {
        self.command(b"zPING\0").map(|r| r == "PONG").unwrap_or(false)
    }
}

fn read_reply(s: &mut TcpStream) -> io::Result<String> {
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply);
    Ok(text.trim_end_matches(['\0', '\n']).to_string())
}

/// Reads clamd's answer to INSTREAM.
pub fn parse_verdict(reply: &str) -> Result<ScanVerdict, String> {
    let body = reply.strip_prefix("stream: ").unwrap_or(reply);
    if body == "OK" {
        Ok(ScanVerdict::Clean)
    } else if let Some(limit) = body.strip_suffix(" FOUND").and_then(|s| s.strip_prefix("Heuristics.Limits.Exceeded")) {
        // With AlertExceedsMax, a file clamd stopped reading at one of its limits says so:
        // it was not scanned to its end, which is not "clean" and not "infected".
        Ok(ScanVerdict::NotScanned(format!(
            "clamd stopped at one of its limits (Heuristics.Limits.Exceeded{limit}): the file was not scanned to its end"
        )))
    } else if let Some(sig) = body.strip_suffix(" FOUND") {
        Ok(ScanVerdict::Infected(sig.to_string()))
    } else if body.contains("size limit exceeded") {
        Ok(ScanVerdict::NotScanned(
            "the file is larger than clamd's stream limit (StreamMaxLength), so it was not scanned".into(),
        ))
    } else {
        Err(format!("clamd answered {reply:?}"))
    }
}

impl VirusScanner for Clamd {
    fn version(&self) -> PortResult<String> {
        self.command(b"zVERSION\0")
    }

    fn scan(&self, data: &mut dyn Read) -> PortResult<ScanVerdict> {
        let mut s = self.connect()?;
        // One frame per write: the length prefix and its data go out together.
        let mut frame = vec![0u8; 4 + CHUNK];
        let sent: io::Result<()> = (|| {
            s.write_all(b"zINSTREAM\0")?;
            loop {
                let n = match data.read(&mut frame[4..]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io::Error::other(format!("reading the file to scan: {e}"))),
                };
                frame[..4].copy_from_slice(&(n as u32).to_be_bytes());
                s.write_all(&frame[..4 + n])?;
            }
            s.write_all(&0u32.to_be_bytes())
        })();
        // clamd may stop reading and answer early (a stream over its limit): its answer,
        // not the broken pipe, says what happened.
        let reply = read_reply(&mut s);
        match (sent, reply) {
            (_, Ok(reply)) if !reply.is_empty() => parse_verdict(&reply).map_err(PortError::Unavailable),
            (Err(e), _) => Err(self.io(e)),
            (Ok(()), Err(e)) => Err(self.io(e)),
            (Ok(()), Ok(_)) => Err(PortError::Unavailable(format!("clamd at {} closed without an answer", self.addr))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(parse_verdict("stream: OK"), Ok(ScanVerdict::Clean));
        assert_eq!(
            parse_verdict("stream: Win.Test.EICAR_HDB-1 FOUND"),
            Ok(ScanVerdict::Infected("Win.Test.EICAR_HDB-1".into()))
        );
        assert!(matches!(parse_verdict("INSTREAM size limit exceeded. ERROR"), Ok(ScanVerdict::NotScanned(_))));
        match parse_verdict("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND") {
            Ok(ScanVerdict::NotScanned(why)) => assert!(why.contains("MaxFileSize"), "{why}"),
            other => panic!("a limit is not a virus: {other:?}"),
        }
        assert!(parse_verdict("stream: Can't allocate memory ERROR").is_err());
    }

    #[test]
    fn an_unreachable_daemon_is_an_error_not_a_clean_file() {
        // Port 9 on loopback: nothing listens there.
        let c = Clamd::new("127.0.0.1:9");
        assert!(matches!(c.scan(&mut &b"data"[..]), Err(PortError::Unavailable(_))));
        assert!(!c.ping());
    }
}
