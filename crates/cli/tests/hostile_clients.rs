//! `vellum serve` probed from outside as a hostile or careless client would: connections
//! that send half a request, a body shorter than they said, an upgrade, or nothing at all,
//! held open while others are answered; bodies far over the limits; oversize headers; many
//! kept-alive clients at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;
use common::{registered, serve, serve_logging_to, wait_until_up};

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the dashboard");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

/// Sends `raw` and reads one answer on a connection the server closes (Connection: close).
/// A server that answers and closes before reading all of `raw` resets the connection, which
/// can swallow the answer: such an empty exchange is tried again, twice at most.
fn exchange(port: u16, raw: &[u8]) -> String {
    let mut answer = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(port);
        let _ = stream.write_all(raw);
        let _ = stream.read_to_end(&mut answer);
        if !answer.is_empty() {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

fn get(port: u16, path: &str, auth: &str) -> (u16, Duration) {
    let started = Instant::now();
    let answer = exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    (status(&answer), started.elapsed())
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn slow_half_sent_and_idle_clients_never_delay_the_others() {
    let data = tempfile::tempdir().unwrap();
    let key = registered(data.path(), "archivist");
    let served = serve(data.path());
    wait_until_up(&served);
    let port = served.1;
    let mut held = Vec::new();
    for i in 0..20 {
        // Half a request line and header; a body shorter than its Content-Length (to the
        // sign-in form and, with a key, to the API); an upgrade; nothing at all.
        let mut half = connect(port);
        half.write_all(b"GET /status HTTP/1.1\r\nHost: local").unwrap();
        let mut short = connect(port);
        let target = if i % 2 == 0 { "/sign-in".to_string() } else { "/api/transfers/start".to_string() };
        write!(
            short,
            "POST {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"a\""
        )
        .unwrap();
        let mut upgrade = connect(port);
        upgrade
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap();
        held.extend([half, short, upgrade, connect(port)]);
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let (health, took) = get(port, "/health", "none");
        assert_eq!(health, 200);
        assert!(took < Duration::from_secs(2), "/health took {took:?} with {} clients held open", held.len());
        let (api, took) = get(port, "/api/transfers", &key);
        assert_eq!(api, 200);
        assert!(took < Duration::from_secs(2), "an API call took {took:?} with {} clients held open", held.len());
        println!("with {} clients held open, /health and /api/transfers answered in {took:?}", held.len());
    }
    // The body that never comes is answered 408 once its time is up, not waited on for ever.
    let mut short = connect(port);
    write!(short, "POST /sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nuser=").unwrap();
    let mut answer = String::new();
    let _ = short.read_to_string(&mut answer);
    assert_eq!(status(&answer), 408, "{answer}");
    drop(held);
}

#[test]
fn bodies_over_the_limit_are_refused_before_they_are_read() {
    let data = tempfile::tempdir().unwrap();
    let served = serve(data.path());
    wait_until_up(&served);
    let (port, pid) = (served.1, served.0.id());
    // 100 MB said up front: refused at once, whoever sends it. The answer is read before the
    // body is pushed after it: a server that closes on unread bytes resets the connection,
    // which can swallow an answer not yet read.
    let started = Instant::now();
    let mut stream = connect(port);
    write!(
        stream,
        "POST /sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        100 << 20
    )
    .unwrap();
    let answer = first_answer(&mut stream);
    assert_eq!(status(&answer), 413, "{answer}");
    assert!(answer.contains("larger than this route takes"), "{answer}");
    println!("100 MB refused in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
    push_until_refused(&mut stream, &vec![b'a'; 1 << 20]);
    // 100 MB chunked, its size unsaid: refused as soon as it passes the limit.
    let mut stream = connect(port);
    stream
        .write_all(b"POST /api/transfers/start HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let piece = format!("{:x}\r\n{}\r\n", 1 << 20, "b".repeat(1 << 20));
    // Two chunks: past the 1 MiB the API takes.
    stream.write_all(piece.as_bytes()).unwrap();
    let _ = stream.write_all(piece.as_bytes());
    let answer = first_answer(&mut stream);
    assert!(matches!(status(&answer), 403 | 413), "refused: {answer}");
    push_until_refused(&mut stream, piece.as_bytes());
    let rss = resident_kib(pid);
    println!("vellum serve's resident memory after 200 MB of refused bodies: {} MiB", rss / 1024);
    assert!(rss < 150 * 1024, "{rss} KiB resident");
}

/// What the server has answered so far on a connection still open for writing.
fn first_answer(stream: &mut TcpStream) -> String {
    let mut answer = vec![0; 64 << 10];
    let read = stream.read(&mut answer).expect("an answer before the body is sent");
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// Goes on sending 100 times `piece` as a client that does not listen would, until the server
/// stops taking it.
fn push_until_refused(stream: &mut TcpStream, piece: &[u8]) {
    for _ in 0..100 {
        if stream.write_all(piece).is_err() {
            return;
        }
    }
}

#[test]
fn oversize_headers_and_request_lines_are_answered_4xx() {
    let data = tempfile::tempdir().unwrap();
    let served = serve(data.path());
    wait_until_up(&served);
    let port = served.1;
    let header = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(64 << 10)
    );
    assert_eq!(status(&exchange(port, header.as_bytes())), 431);
    let line = format!("GET /health?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "q".repeat(64 << 10));
    let answered = status(&exchange(port, line.as_bytes()));
    assert!((400..500).contains(&answered), "a 64 KiB request line: {answered}");
    let length = "POST /sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Length: lots\r\nConnection: close\r\n\r\n";
    assert_eq!(status(&exchange(port, length.as_bytes())), 400);
    // And the server is still there.
    assert_eq!(get(port, "/health", "none").0, 200);
}

#[test]
fn sixty_four_kept_alive_clients_are_all_answered() {
    let data = tempfile::tempdir().unwrap();
    let key = registered(data.path(), "archivist");
    let served = serve(data.path());
    wait_until_up(&served);
    let port = served.1;
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                let mut stream = connect(port);
                let mut answered = 0;
                for i in 0..5 {
                    let path = if i % 2 == 0 { "/api/transfers" } else { "/health" };
                    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {key}\r\n\r\n").unwrap();
                    answered += read_one_answer(&mut stream);
                }
                answered
            })
        })
        .collect();
    let answered: u32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 64 * 5, "every request on every kept-alive connection");
}

/// Reads one answer off a kept-alive connection (by its Content-Length); 1 for a 200.
fn read_one_answer(stream: &mut TcpStream) -> u32 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("an answer on the kept-alive connection");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a Content-Length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    u32::from(status(&head) == 200)
}

/// Guessing keys against `vellum serve`: past a few wrong keys from one address, 429 with
/// `Retry-After` (the right key too), and after that wait the right key gets in. Each wrong
/// key is an audit line in the log — who, from where, which route — and never the key.
#[test]
fn repeated_wrong_keys_are_held_back_and_the_right_key_gets_in_after_a_short_wait() {
    let data = tempfile::tempdir().unwrap();
    let key = registered(data.path(), "archivist");
    let log_path = data.path().join("serve.log");
    let served = serve_logging_to(data.path(), std::fs::File::create(&log_path).unwrap());
    wait_until_up(&served);
    let guessed = "c0ffee00c0ffee00c0ffee00c0ffee00";
    let wrong = format!("ApiKey archivist:{guessed}");
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(get(served.1, "/api/transfers", &wrong).0);
    }
    // Five failures are free; the sixth is answered as wrong and holds the user back.
    assert_eq!(&answers[..6], [403; 6], "{answers:?}");
    assert_eq!(&answers[6..], [429; 2], "then held back: {answers:?}");
    let held = exchange(
        served.1,
        format!("GET /api/transfers HTTP/1.1\r\nHost: localhost\r\nAuthorization: {key}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status(&held), 429, "the right key waits too, from a guessing address");
    let retry_after: u64 = held
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: ").or_else(|| l.strip_prefix("Retry-After: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {held}"));
    assert!((1..=30).contains(&retry_after), "a short wait: {retry_after} s");
    std::thread::sleep(Duration::from_secs(retry_after) + Duration::from_millis(200));
    assert_eq!(get(served.1, "/api/transfers", &key).0, 200, "after the wait, the right key gets in");
    drop(served);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let audit: Vec<&str> = log.lines().filter(|l| l.contains("audit")).collect();
    assert!(audit.iter().filter(|l| l.contains("wrong key")).count() >= 5, "{log}");
    assert!(audit.iter().any(|l| l.contains("held back")), "{log}");
    let line = audit.iter().find(|l| l.contains("wrong key")).unwrap();
    for part in ["archivist", "127.0.0.1", "/api/transfers"] {
        assert!(line.contains(part), "who, from where, which route: {line}");
    }
    assert!(!log.contains(guessed) && !log.contains(key.rsplit(':').next().unwrap()), "never a key: {log}");
}

/// A browser's session against `vellum serve`, from outside: a change from another site's
/// page, or sent as a form or plain text (which any page may post across sites), is refused;
/// revoking the key that opened the session ends it at once, on the API and on pages.
#[test]
fn a_session_refuses_cross_site_changes_and_ends_when_its_key_is_revoked() {
    let data = tempfile::tempdir().unwrap();
    let key = registered(data.path(), "archivist");
    let secret = key.rsplit(':').next().unwrap();
    let served = serve(data.path());
    wait_until_up(&served);
    let form = format!("user=archivist&key={secret}&next=%2F");
    let signed_in = exchange(
        served.1,
        format!(
            "POST /sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert_eq!(status(&signed_in), 303, "{signed_in}");
    let session = signed_in
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim()))
        .and_then(|v| v.split(';').next())
        .filter(|c| c.starts_with("vellum_session="))
        .unwrap_or_else(|| panic!("no session cookie: {signed_in}"))
        .to_string();
    let with_session = |method: &str, path: &str, extra: &str, body: &str| {
        status(&exchange(
            served.1,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {session}\r\n{extra}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        ))
    };
    let retry = "/api/transfers/6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10/retry";
    let change = |origin: &str, content_type: &str| {
        with_session("POST", retry, &format!("Origin: {origin}\r\nContent-Type: {content_type}\r\n"), "{}")
    };
    assert_eq!(change("http://attacker.example", "application/json"), 403, "another site's page");
    assert_eq!(change("http://localhost", "text/plain"), 403, "plain text, which needs no preflight");
    assert_eq!(change("http://localhost", "application/x-www-form-urlencoded"), 403, "a form");
    assert_eq!(
        with_session("POST", retry, "Content-Type: application/json\r\n", "{}"),
        403,
        "no Origin and no Referer"
    );
    assert_eq!(change("http://localhost", "application/json"), 404, "this site's own page reaches the route");
    assert_eq!(with_session("GET", "/api/transfers", "", ""), 200);
    assert_eq!(with_session("GET", "/", "", ""), 200);

    let listed = common::vellum().args(["api-keys", "list", "--json", "--data-dir"]).arg(data.path()).output().unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = keys[0]["id"].as_str().unwrap();
    let revoked = common::vellum().args(["api-keys", "revoke", id, "--data-dir"]).arg(data.path()).output().unwrap();
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert_eq!(with_session("GET", "/api/transfers", "", ""), 403, "the API refuses the session at once");
    assert_eq!(with_session("GET", "/", "", ""), 303, "a page sends the person to sign in again");
}

/// Inputs from outside against `vellum serve`: `next` sends a signed-in person only to a path
/// of this site and puts no line into a header; a storage space is a configured one's name,
/// never a path; a bad cursor, limit, transfer id or key is a 4xx, never a 5xx.
#[test]
fn redirects_stay_on_site_spaces_are_names_and_bad_values_are_4xx() {
    let data = tempfile::tempdir().unwrap();
    let key = registered(data.path(), "archivist");
    let secret = key.rsplit(':').next().unwrap();
    let served = serve(data.path());
    wait_until_up(&served);
    for next in ["https%3A%2F%2Fattacker.example%2F", "%2F%2Fattacker.example", "%2Fok%0D%0ASet-Cookie%3A%20x%3D1"] {
        let form = format!("user=archivist&key={secret}&next={next}");
        let answer = exchange(
            served.1,
            format!(
                "POST /sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
                form.len()
            )
            .as_bytes(),
        );
        assert_eq!(status(&answer), 303, "{answer}");
        let head = answer.split("\r\n\r\n").next().unwrap();
        let location = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim()))
            .unwrap_or_else(|| panic!("no Location: {head}"));
        assert!(location.starts_with('/') && !location.starts_with("//"), "next={next}: sent to {location:?}");
        assert!(
            !head.lines().any(|l| l.to_ascii_lowercase().starts_with("x=1") || l.contains("Set-Cookie: x=1")),
            "{head}"
        );
    }
    for (path, why) in [
        ("/api/aips?space=/usr", "a space that is a path"),
        ("/api/aips?space=..%2F..", "a space that climbs"),
        ("/api/transfers?cursor=%00%FF-not-a-cursor", "a cursor of nothing"),
        ("/api/transfers?limit=-1", "a negative limit"),
        ("/api/transfers?limit=lots", "a limit that is no number"),
        ("/api/transfers/not-a-uuid", "a transfer id that is no UUID"),
    ] {
        let (code, _) = get(served.1, path, &key);
        assert!((400..500).contains(&code), "{why}: {path} answered {code}");
    }
    for auth in ["ApiKey archivist", "ApiKey :", "Bearer", "ApiKey archivist:\u{7f}"] {
        let (code, _) = get(served.1, "/api/transfers", auth);
        assert!((400..500).contains(&code), "a malformed key {auth:?} answered {code}");
    }
}
