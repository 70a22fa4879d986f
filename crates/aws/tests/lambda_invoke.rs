//! The dashboard function as Lambda runs it: the built `vellum-dashboard` binary under
//! cargo-lambda's Lambda runtime API (`cargo lambda watch --only-lambda-apis`), asked with
//! `cargo lambda invoke` and the API Gateway events in `events/`, reading its records on the
//! local AWS emulator with the dashboard role's own keys — and a person's OpenID Connect
//! sign-in, round trip, against a local provider, with no JWT authorizer in front.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vellum_aws::app::{Names, Records};
use vellum_core::model::Role;
use vellum_tests::oidc_provider;

/// The emulator's Azure issuer and object id the sample events' claims carry.
const SAMPLE_IDENTITY: &str =
    "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0|11111111-2222-3333-4444-555555555555";
const FUNCTION: &str = "vellum-dashboard";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// cargo-lambda, which scripts/setup installs into the project's venv.
fn cargo_lambda() -> PathBuf {
    let venv = workspace().join(".venv/bin/cargo-lambda");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("cargo-lambda")).find(|p| p.exists()));
    on_path.expect("this test needs cargo-lambda (PyPI cargo-lambda): run it through scripts/test, which installs it")
}

/// The function's binary, built as the suite builds the workspace (so its dependencies are
/// the ones already compiled), next to this test's own.
fn dashboard_binary() -> PathBuf {
    let built = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["build", "--quiet", "--workspace", "--features", "vellum-cli/aws", "--bin", FUNCTION])
        .status()
        .expect("cargo builds the dashboard function");
    assert!(built.success(), "the dashboard function does not build");
    let debug = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let binary = debug.join(FUNCTION);
    assert!(binary.exists(), "no {}", binary.display());
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Processes that go when the test does, whatever way it ends.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `cargo lambda invoke` printed: the function's API Gateway answer.
struct Answer {
    status: u16,
    headers: Value,
    cookies: Vec<String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers[name].as_str().unwrap_or_else(|| panic!("no {name} header in {}", self.headers))
    }

    /// `name=value` of the cookie set by that name, with its attributes.
    fn cookie(&self, name: &str) -> (String, String) {
        let set = self
            .cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", self.cookies));
        let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
        (pair.to_string(), attributes.to_string())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

struct Lambda {
    cargo_lambda: PathBuf,
    port: u16,
}

impl Lambda {
    fn invoke(&self, event: &Value) -> Answer {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), event.to_string()).unwrap();
        let out = Command::new(&self.cargo_lambda)
            .args(["lambda", "invoke", FUNCTION, "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .args(["--output-format", "json", "--data-file"])
            .arg(file.path())
            .output()
            .expect("cargo lambda invoke runs");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "cargo lambda invoke: {printed}{}", String::from_utf8_lossy(&out.stderr));
        let answer: Value = serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"));
        Answer {
            status: answer["statusCode"].as_u64().unwrap() as u16,
            headers: answer["headers"].clone(),
            cookies: answer["cookies"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            body: answer["body"].as_str().unwrap_or("").to_string(),
        }
    }
}

fn sample(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(workspace().join("events").join(name)).unwrap()).unwrap()
}

/// A browser's request through API Gateway with no authorizer: the sample event's shape, with
/// this method, path and query, HTML asked for, and the cookies it holds.
fn browser(method: &str, target: &str, cookies: &[&str]) -> Value {
    let mut event = sample("apigw-status.json");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"].as_object_mut().unwrap().remove("authorizer");
    event["headers"]["accept"] = json!("text/html");
    event["headers"]["x-forwarded-proto"] = json!("https");
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    event
}

/// Starts the runtime API and the function under it, with the provider's OIDC settings.
fn start_function(cargo_lambda: &Path, issuer: &str, running: &mut Running) -> Lambda {
    let port = free_port();
    let mut apis = Command::new(cargo_lambda)
        .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo lambda watch starts");
    let said = apis.stderr.take().unwrap();
    running.0.push(apis);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "cargo lambda watch did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // What cargo-lambda says goes to this test's output, for a failure's reader.
    std::thread::spawn(move || {
        BufReader::new(said).lines().map_while(Result::ok).for_each(|l| eprintln!("watch: {l}"))
    });
    let function = Command::new(dashboard_binary())
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("VELLUM_OIDC_ISSUER", issuer)
        .env("VELLUM_OIDC_CLIENT_ID", "vellum-dashboard")
        .env_remove("VELLUM_OIDC_CLIENT_SECRET")
        .env_remove("VELLUM_OIDC_REDIRECT_URI")
        .spawn()
        .expect("the dashboard function starts");
    running.0.push(function);
    Lambda { cargo_lambda: cargo_lambda.to_path_buf(), port }
}

#[test]
#[ignore = "needs the local AWS emulator (infra/local/up) and cargo-lambda; scripts/test runs it"]
fn the_dashboard_function_answers_the_sample_events_and_signs_a_person_in_through_oidc() {
    let names = Names::from_env()
        .unwrap_or_else(|e| panic!("{e}: this test runs on the local AWS emulator (eval \"$(infra/local/up)\")"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let records = Records::new(&names, rt.handle().clone()).expect("the emulator's records");
    let provider = oidc_provider::start("vellum-dashboard");
    let port = provider.issuer.rsplit(':').next().unwrap().to_string();
    let clock = vellum_core::ports::SystemClock;
    let add = |name: &str, role, identity: &str| {
        // Already there when the emulator outlived an earlier run: the same identity, kept.
        vellum_core::operations::access::add_user(&*records.access, &clock, name, None, role, Some(identity))
            .expect("a user registered on the emulator");
    };
    add("lambda-archivist", Role::Operator, SAMPLE_IDENTITY);
    add(&format!("lambda-curator-{port}"), Role::Viewer, &format!("{}|oid-42", provider.issuer));

    let mut running = Running(Vec::new());
    let lambda = start_function(&cargo_lambda(), &provider.issuer, &mut running);

    // The sample events, as API Gateway would send them.
    let status = lambda.invoke(&sample("apigw-status.json"));
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(status.json()["transfers"].is_array(), "{}", status.body);
    let transfer = lambda.invoke(&sample("apigw-transfer.json"));
    assert_eq!(transfer.status, 404, "{}", transfer.body);
    assert_eq!(transfer.header("content-type"), "application/json");
    assert!(transfer.header("content-security-policy").contains("script-src 'self'"));
    let keyed = lambda.invoke(&sample("apigw-api-key.json"));
    assert_eq!(keyed.status, 403, "a key that is not one: {}", keyed.body);
    assert_eq!(keyed.json(), json!({"message": "API key not valid.", "error": true}));

    // A person with a browser: a page sends them to sign in, and the first leg to the provider.
    let page = lambda.invoke(&browser("GET", "/", &[]));
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), "/sign-in/oidc?next=%2F");
    let started = lambda.invoke(&browser("GET", "/sign-in/oidc?next=%2Ftransfers", &[]));
    assert_eq!(started.status, 303, "{}", started.body);
    let to = started.header("location").to_string();
    assert!(to.starts_with(&format!("{}/authorize?", provider.issuer)), "{to}");
    let host = "r3pmxmplak.execute-api.eu-west-1.amazonaws.com";
    assert_eq!(
        oidc_provider::query_of(&to)["redirect_uri"],
        format!("https://{host}/sign-in/callback"),
        "back to API Gateway's address, over TLS"
    );
    let (pending, _) = started.cookie("vellum_oidc");

    // The provider sends them back with a code; the function exchanges it and opens a session.
    let back = oidc_provider::authorize(&to);
    let callback = back.strip_prefix(&format!("https://{host}")).unwrap();
    let finished = lambda.invoke(&browser("GET", callback, &[&pending]));
    assert_eq!(finished.status, 303, "{}", finished.body);
    assert_eq!(finished.header("location"), "/transfers");
    let (session, attributes) = finished.cookie("vellum_session");
    assert!(attributes.contains("Secure") && attributes.contains("HttpOnly"), "{attributes}");

    // Signed in: pages and the API answer the session, with the viewer's role and no more.
    let signed_in = lambda.invoke(&browser("GET", "/", &[&session]));
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert!(signed_in.body.contains(&format!("lambda-curator-{port}")), "the page names who is signed in");
    let mut api = browser("GET", "/api/transfers", &[&session]);
    api["headers"]["accept"] = json!("application/json");
    assert_eq!(lambda.invoke(&api).status, 200);
    let mut retry = browser("POST", "/api/transfers/6f1c1a4e-2f5b-4d7e-9a51-3c8e2b7d9f10/retry", &[&session]);
    retry["headers"]["accept"] = json!("application/json");
    retry["headers"]["content-type"] = json!("application/json");
    retry["headers"]["origin"] = json!(format!("https://{host}"));
    retry["body"] = json!("{}");
    // A change from another site's page, or sent as a form or plain text, is refused first.
    let mut forged = retry.clone();
    forged["headers"]["origin"] = json!("https://attacker.example");
    let cross = lambda.invoke(&forged);
    assert_eq!(cross.status, 403);
    assert!(cross.body.contains("Origin"), "{}", cross.body);
    let mut plain = retry.clone();
    plain["headers"]["content-type"] = json!("text/plain");
    let plain = lambda.invoke(&plain);
    assert_eq!(plain.status, 403);
    assert!(plain.body.contains("application/json"), "{}", plain.body);
    let refused = lambda.invoke(&retry);
    assert_eq!(refused.status, 403, "a viewer may not retry: {}", refused.body);
    assert!(refused.body.contains("operator"), "{}", refused.body);

    // Signed out, the session is over.
    let mut out = browser("POST", "/sign-out", &[&session]);
    out["headers"]["origin"] = json!(format!("https://{host}"));
    out["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    assert_eq!(lambda.invoke(&out).status, 303);
    assert_eq!(lambda.invoke(&api).status, 403, "the session ended with the sign-out");
}
