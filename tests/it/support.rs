//! Running the real binary in a throwaway directory with a pinned clock.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compass::db::Db;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every test binary runs at, unless a test says otherwise. `serve` is the exception:
/// it runs on the real clock (webhook signatures are checked against it), so an order seeded
/// for a running `serve` is dated from `wall_clock()`, never from `NOW`.
pub const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

/// The real clock, to the second, as `serve` reads it.
pub fn wall_clock() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

/// A compass installation in a temporary directory.
pub struct Install {
    pub dir: TempDir,
}

impl Install {
    /// `compass init` in a fresh directory.
    pub fn new() -> Install {
        let dir = tempfile::tempdir().expect("temp dir");
        let install = Install { dir };
        let out = install.compass(&["init"]);
        assert!(out.status.success(), "init failed: {}", text(&out.stderr));
        install
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("compass.toml")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("compass.db")
    }

    pub fn db(&self) -> Db {
        Db::open(&self.database()).expect("open the test database")
    }

    /// Runs `compass ARGS` with this installation's configuration, at `NOW`.
    pub fn compass(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run compass")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        compass_command(&self.config(), args)
    }
}

/// `compass ARGS` with `config`, at `NOW`, and none of the caller's compass variables.
pub fn compass_command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_compass"));
    for (name, _) in std::env::vars() {
        if name.starts_with("COMPASS_") && !name.starts_with("COMPASS_TEST_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("COMPASS_CONFIG", config)
        .env("COMPASS_NOW", compass::clock::rfc3339(NOW))
        .env_remove("RUST_LOG");
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout of a run that must succeed.
pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "compass failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts a failed run: exit status 1, one line `error: ...` on stderr, nothing on stdout.
pub fn one_error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    lines[0].to_owned()
}

/// A snapshot of every file in a directory, to show that a failed command wrote nothing.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = if path.is_file() {
                std::fs::read(&path).expect("read file")
            } else {
                Vec::new()
            };
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Replaces each of `ids` found in `text` by `fake(n)`, numbered in order of first appearance,
/// so that random ids become stable without changing the width of a table.
pub fn redact(text: &str, ids: &[String], fake: impl Fn(usize) -> String) -> String {
    let mut found: Vec<(usize, &String)> = ids
        .iter()
        .filter_map(|id| text.find(id.as_str()).map(|at| (at, id)))
        .collect();
    found.sort();
    let mut out = text.to_owned();
    for (n, (_, id)) in found.into_iter().enumerate() {
        let replacement = fake(n + 1);
        assert_eq!(replacement.len(), id.len(), "redaction keeps widths");
        out = out.replace(id.as_str(), &replacement);
    }
    out
}

/// Held by the tests that send localstripe a burst of payments (it delivers every event to every
/// registered webhook, so one test's fifty payments reach every running server) and by the
/// chaos test, whose deadlines assume a Stripe busy with its own orders only: they take turns.
pub fn stripe_burst() -> std::sync::MutexGuard<'static, ()> {
    static BURST: std::sync::Mutex<()> = std::sync::Mutex::new(());
    BURST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The webhook signing secret the test servers use.
pub const WEBHOOK_SECRET: &str = "whsec_compass_test";
/// The Stripe secret key the test servers use (localstripe accepts any `sk_test_`).
pub const STRIPE_KEY: &str = "sk_test_compass";

impl Install {
    /// An installation whose Stripe is at `stripe_url`.
    pub fn with_stripe(stripe_url: &str) -> Install {
        let install = Install::new();
        let config = std::fs::read_to_string(install.config()).expect("read config");
        let config = config
            .replace(
                "api_base = \"https://api.stripe.com\"",
                &format!("api_base = \"{stripe_url}\""),
            )
            .replace(
                "publishable_key = \"\"",
                "publishable_key = \"pk_test_compass\"",
            );
        std::fs::write(install.config(), config).expect("write config");
        install
    }
}

impl Install {
    /// Replaces each `from` in the config file by its `to`; each must be there.
    pub fn edit_config(self, edits: &[(&str, &str)]) -> Install {
        let mut config = std::fs::read_to_string(self.config()).expect("read config");
        for (from, to) in edits {
            assert!(config.contains(from), "the config has {from}");
            config = config.replace(from, to);
        }
        std::fs::write(self.config(), config).expect("write config");
        self
    }

    /// Turns off `serve`'s per-client rate limits and the intake form's minimum fill time,
    /// for tests that send many requests from one address about something else.
    pub fn without_rate_limits(self) -> Install {
        let config = std::fs::read_to_string(self.config()).expect("read config");
        let config = config
            .replace("min_form_seconds = 3", "min_form_seconds = 0")
            .replace("orders_per_hour = 5", "orders_per_hour = 0")
            .replace(
                "refund_requests_per_hour = 5",
                "refund_requests_per_hour = 0",
            )
            .replace("sign_ins_per_hour = 3", "sign_ins_per_hour = 0");
        std::fs::write(self.config(), config).expect("write config");
        self
    }

    /// Sends this installation's mail over SMTP to `address` (`host:port`, no TLS: maildev).
    pub fn use_smtp(&self, address: &str) {
        let (host, port) = address.rsplit_once(':').expect("host:port");
        let config = std::fs::read_to_string(self.config()).expect("read config");
        let config = config
            .replace("transport = \"file\"", "transport = \"smtp\"")
            .replace(
                "smtp_host = \"localhost\"",
                &format!("smtp_host = \"{host}\""),
            )
            .replace("smtp_port = 587", &format!("smtp_port = {port}"))
            .replace("smtp_security = \"starttls\"", "smtp_security = \"none\"");
        std::fs::write(self.config(), config).expect("write config");
    }
}

/// A running `compass serve`, stopped with SIGTERM when dropped.
pub struct Serving {
    pub install: Install,
    pub base: String,
    child: std::process::Child,
}

impl Serving {
    /// Starts `compass serve` on a free port and waits until `/healthz` answers.
    pub fn start(install: Install) -> Serving {
        Serving::start_with_env(install, &[])
    }

    /// `start`, on a port chosen first and written to the config's `public_url`, as a real
    /// installation is: for a browser, which follows the redirects and return URLs compass
    /// builds from it, and sends it as the forms' Origin.
    pub fn start_at_public_url(install: Install) -> Serving {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|free| free.local_addr())
            .expect("a free port")
            .port();
        let install = install.edit_config(&[(
            "public_url = \"http://127.0.0.1:8080\"",
            &format!("public_url = \"http://127.0.0.1:{port}\""),
        )]);
        let (child, base) = Serving::spawn_at(&install, &[], &format!("127.0.0.1:{port}"));
        Serving::healthy(install, child, base)
    }

    /// `start`, with more environment variables (secrets) for serve.
    pub fn start_with_env(install: Install, env: &[(&str, &str)]) -> Serving {
        let (child, base) = Serving::spawn(&install, env);
        Serving::healthy(install, child, base)
    }

    fn healthy(install: Install, child: std::process::Child, base: String) -> Serving {
        let serving = Serving {
            install,
            base,
            child,
        };
        serving.wait_healthy();
        serving
    }

    /// Kills serve with SIGKILL (no shutdown at all) and starts it again on the same
    /// installation, on a new port.
    pub fn restart_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base) = Serving::spawn(&self.install, &[]);
        self.child = child;
        self.base = base;
        self.wait_healthy();
    }

    fn spawn(install: &Install, env: &[(&str, &str)]) -> (std::process::Child, String) {
        Serving::spawn_at(install, env, "127.0.0.1:0")
    }

    fn spawn_at(
        install: &Install,
        env: &[(&str, &str)],
        listen: &str,
    ) -> (std::process::Child, String) {
        use std::io::BufRead;
        let mut command = install.command(&["serve", "--listen", listen, "--workers", "4"]);
        command.envs(env.iter().copied());
        command
            .env_remove("COMPASS_NOW")
            .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY)
            .env("COMPASS_STRIPE_WEBHOOK_SECRETS", WEBHOOK_SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = command.spawn().expect("start compass serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
            .to_owned();
        (child, base)
    }

    fn wait_healthy(&self) {
        for _ in 0..100 {
            if self.get("/healthz").0 == 200 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("compass serve did not become healthy at {}", self.base);
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into()
    }

    /// GET: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let response = Serving::agent().get(&format!("{}{path}", self.base)).call();
        read(response)
    }

    /// The signed "form shown at" value of a freshly loaded intake form.
    pub fn form_started(&self) -> String {
        let (_, page) = self.get("/");
        page.split("name=\"started\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the intake form carries its start time")
            .to_owned()
    }

    /// GET a file: status, headers (names lower-cased) and the bytes.
    pub fn get_bytes(&self, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut response = Serving::agent()
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|err| panic!("GET {path} failed: {err}"));
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(50 << 20)
            .read_to_vec()
            .expect("body");
        (response.status().as_u16(), headers, bytes)
    }

    /// POST with a content type and a body: status, Location header and body.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Option<String>, String) {
        self.post_with(path, &[("Content-Type", content_type)], body)
    }

    /// POST with headers: status, Location header and body.
    pub fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Option<String>, String) {
        let mut request = Serving::agent().post(&format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match request.send(body) {
            Ok(mut response) => {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().unwrap_or_default();
                (status, location, body)
            }
            Err(err) => panic!("POST {path} failed: {err}"),
        }
    }

    /// Signs `payload` as Stripe would and posts it to the webhook.
    /// The customer asks for a refund from the status page of `token`, from our own origin:
    /// the answer's status and page.
    pub fn ask_for_refund(&self, token: &str, reason: &str) -> (u16, String) {
        let body = serde_urlencoded::to_string([("reason", reason)]).expect("form");
        let (status, _, page) = self.post_with(
            &format!("/status/{token}/refund"),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "http://127.0.0.1:8080"),
            ],
            body.as_bytes(),
        );
        (status, page)
    }

    pub fn deliver(&self, payload: &str) -> (u16, String) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = compass::stripe::webhook::sign(payload.as_bytes(), WEBHOOK_SECRET, now);
        let (status, _, body) = self.post_with(
            "/webhooks/stripe",
            &[
                ("Content-Type", "application/json"),
                ("Stripe-Signature", &signature),
            ],
            payload.as_bytes(),
        );
        (status, body)
    }
}

fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    match response {
        Ok(mut response) => {
            let status = response.status().as_u16();
            (
                status,
                response.body_mut().read_to_string().unwrap_or_default(),
            )
        }
        Err(err) => panic!("request failed: {err}"),
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms for up to `seconds`; panics with `what` if it never holds.
pub fn eventually(seconds: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out after {seconds} s waiting for {what}");
}

impl Install {
    /// An installation whose Claude is at `claude_url`, asking for `model`.
    pub fn with_claude(claude_url: &str, model: &str) -> Install {
        let install = Install::new();
        crate::seed::point_at_claude(&install.config(), claude_url, model)
            .expect("point the config at llmock");
        install
    }
}
