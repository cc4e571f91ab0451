//! Hostile input against a running `compass serve`: each gets its documented status and
//! changes nothing.

use compass::stripe::webhook::sign;
use serde_json::json;

use crate::services::service;
use crate::support::{Install, Serving, WEBHOOK_SECRET};

fn server() -> Serving {
    Serving::start(Install::with_stripe(&service("COMPASS_TEST_STRIPE_URL")).without_rate_limits())
}

fn counts(server: &Serving) -> (usize, i64) {
    let db = server.install.db();
    let events = db.stripe_events(false, 10_000).expect("events").len();
    let orders = db
        .count_orders(&compass::db::OrderFilter::default())
        .expect("orders");
    (events, orders)
}

fn event_payload(id: &str) -> String {
    json!({
        "id": id, "object": "event", "type": "customer.created", "created": 1,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    })
    .to_string()
}

fn post_webhook(server: &Serving, body: &[u8], signature: Option<&str>) -> u16 {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(signature) = signature {
        headers.push(("Stripe-Signature", signature));
    }
    server.post_with("/webhooks/stripe", &headers, body).0
}

#[test]
fn forged_webhooks_are_refused_and_nothing_is_stored() {
    let server = server();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = event_payload("evt_attack_1");
    let good = sign(body.as_bytes(), WEBHOOK_SECRET, now);
    let valid_v1 = good
        .split_once(",v1=")
        .map(|(_, v)| v.to_owned())
        .expect("v1");
    let cases: Vec<(&str, Vec<u8>, Option<String>, u16)> = vec![
        ("missing header", body.clone().into_bytes(), None, 400),
        (
            "wrong secret",
            body.clone().into_bytes(),
            Some(sign(body.as_bytes(), "whsec_wrong", now)),
            400,
        ),
        (
            "tampered body",
            body.replace("customer.created", "payment_intent.succeeded")
                .into_bytes(),
            Some(good.clone()),
            400,
        ),
        (
            "stale timestamp",
            body.clone().into_bytes(),
            Some(sign(body.as_bytes(), WEBHOOK_SECRET, now - 301)),
            400,
        ),
        (
            "garbage header",
            body.clone().into_bytes(),
            Some("t=now,v1=nope".into()),
            400,
        ),
        (
            "signed, but not JSON",
            b"{not json".to_vec(),
            Some(sign(b"{not json", WEBHOOK_SECRET, now)),
            400,
        ),
        (
            "signed JSON that is not an event",
            b"{\"hello\":1}".to_vec(),
            Some(sign(b"{\"hello\":1}", WEBHOOK_SECRET, now)),
            400,
        ),
    ];
    let before = counts(&server);
    for (name, body, signature, expected) in cases {
        assert_eq!(
            post_webhook(&server, &body, signature.as_deref()),
            expected,
            "{name}"
        );
    }
    let mut huge = vec![b' '; 10 * 1024 * 1024];
    huge[..body.len()].copy_from_slice(body.as_bytes());
    assert_eq!(post_webhook(&server, &huge, Some(&good)), 413, "10 MB body");
    assert_eq!(counts(&server), before, "nothing stored");

    // Accepted as Stripe's libraries accept them: a future timestamp, several v1 with one valid.
    let future = sign(body.as_bytes(), WEBHOOK_SECRET, now + 3_600);
    assert_eq!(post_webhook(&server, body.as_bytes(), Some(&future)), 200);
    let body2 = event_payload("evt_attack_2");
    let valid2 = sign(body2.as_bytes(), WEBHOOK_SECRET, now);
    let v1 = valid2
        .split_once(",v1=")
        .map(|(_, v)| v.to_owned())
        .expect("v1");
    let several = format!("t={now},v1={valid_v1},v1={v1},v0=00");
    assert_eq!(post_webhook(&server, body2.as_bytes(), Some(&several)), 200);
    assert_eq!(counts(&server).0, before.0 + 2);
}

/// A form as the browser sends it, with the start time of a form the server showed.
fn form_from(server: &Serving, fields: &[(&str, &str)]) -> Vec<u8> {
    let started = server.form_started();
    let mut fields = fields.to_vec();
    fields.push(("started", &started));
    serde_urlencoded::to_string(&fields)
        .expect("encode")
        .into_bytes()
}

const VALID: [(&str, &str); 7] = [
    ("company", "Acme"),
    ("industry", "Manufacturing"),
    ("employees", "11-50"),
    ("country", "UK"),
    ("name", "Ada"),
    ("email", "ada@example.com"),
    ("tier", "standard"),
];

#[test]
fn bad_orders_are_refused_and_nothing_is_stored() {
    let server = server();
    let before = counts(&server);
    let with = |field: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
        VALID
            .iter()
            .map(|(k, v)| (*k, if *k == field { value } else { *v }))
            .collect()
    };

    let (status, _, page) = server.post(
        "/orders",
        "application/x-www-form-urlencoded",
        &form_from(&server, &with("email", "ada@")),
    );
    assert_eq!(status, 422);
    assert!(
        page.contains("Enter an email address like name@example.com"),
        "field error shown"
    );

    let hostile = "<script>alert(1)</script>'; DROP TABLE orders; --";
    let mut fields = with("email", "not-an-email");
    fields.push(("process", hostile));
    let (status, _, page) = server.post(
        "/orders",
        "application/x-www-form-urlencoded",
        &form_from(&server, &fields),
    );
    assert_eq!(status, 422);
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&#x27;; DROP TABLE orders; --"),
        "re-rendered escaped"
    );
    assert!(!page.contains("<script>alert(1)"));

    let (status, _, _) = server.post(
        "/orders",
        "application/x-www-form-urlencoded",
        &form_from(&server, &with("tier", "platinum")),
    );
    assert_eq!(status, 422, "unknown tier");

    let mut tampered: serde_json::Map<String, serde_json::Value> = VALID
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    tampered.insert("amount".into(), json!(1));
    let (status, _, body) = server.post(
        "/orders",
        "application/json",
        serde_json::Value::Object(tampered).to_string().as_bytes(),
    );
    assert_eq!(status, 422, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(error["error"]["code"], "invalid_fields");
    assert_eq!(error["error"]["fields"][0]["field"], "amount");

    let (status, _, body) = server.post("/orders", "application/json", b"{\"company\": ");
    assert_eq!(status, 400);
    assert!(body.contains("malformed_json"), "{body}");
    let (status, _, _) = server.post("/orders", "application/json", b"[1, 2]");
    assert_eq!(status, 400);
    let (status, _, _) = server.post("/orders", "text/plain", b"company=Acme");
    assert_eq!(status, 415);
    let (status, _, _) = server.post(
        "/orders",
        "application/x-www-form-urlencoded",
        &vec![b'a'; 10 * 1024 * 1024],
    );
    assert_eq!(status, 413);
    // A JSON client hears it in the API's error shape, as docs/openapi.yaml promises.
    let (status, _, body) = server.post("/orders", "application/json", &vec![b' '; 70 * 1024]);
    assert_eq!(status, 413);
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(error["error"]["code"], "too_large", "{body}");

    assert_eq!(counts(&server), before, "nothing stored");
}

#[test]
fn unknown_tokens_and_paths_are_not_found() {
    let server = server();
    for path in [
        "/pay/nope",
        "/status/nope",
        "/status/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/status/..%2F..%2Fetc%2Fpasswd",
        "/nothing-here",
    ] {
        assert_eq!(server.get(path).0, 404, "{path}");
    }
    assert_eq!(server.get("/webhooks/stripe").0, 405);
    assert_eq!(server.get("/healthz"), (200, "ok\n".to_owned()));
}

/// Fifty clients that send a request's head and never its body, and four that pipeline a
/// hundred requests each and never read the answers, hold no web worker: a new client is
/// served at once, and a stalled body is answered 408 when the client deadline (10 s) ends.
/// (Before, four stalled bodies held all four workers for as long as they stayed open.)
#[test]
fn slow_and_stalled_clients_never_hold_the_workers() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let server = Serving::start(Install::new().without_rate_limits());
    let address = server.base.trim_start_matches("http://").to_owned();
    let opened = Instant::now();
    let stalled: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            stream
                .write_all(
                    b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: \
                      application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\nco",
                )
                .expect("head");
            stream
        })
        .collect();
    let pipelining: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            let requests = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
            stream.write_all(requests.as_bytes()).expect("requests");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for path in ["/healthz", "/", "/healthz"] {
        let started = Instant::now();
        assert_eq!(server.get(path).0, 200, "{path}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }

    let mut first = stalled.into_iter().next().expect("a stalled client");
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = first.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "408 after the 10 s deadline, not {waited:?}"
    );
    drop(pipelining);
    assert_eq!(server.get("/healthz").0, 200);
}

/// A request whose end a proxy and compass could disagree on (two lengths, or chunked with a
/// length) is refused before anything reads it as a request.
#[test]
fn requests_with_ambiguous_ends_are_refused() {
    use std::io::{Read, Write};

    let server = Serving::start(Install::new().without_rate_limits());
    let address = server.base.trim_start_matches("http://").to_owned();
    let answer = |raw: &str| {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream.write_all(raw.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(
        answer(
            "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\na=b"
        ),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        answer(
            "POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\na=b"
        ),
        "HTTP/1.1 411 Length Required"
    );
    assert_eq!(answer("NONSENSE\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn sigterm_stops_serve_cleanly_and_a_bad_setup_fails_at_start() {
    let install = Install::with_stripe(&service("COMPASS_TEST_STRIPE_URL"));
    let mut command = install.command(&["serve", "--listen", "127.0.0.1:0"]);
    command
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
        .env("COMPASS_STRIPE_WEBHOOK_SECRETS", WEBHOOK_SECRET)
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().expect("serve");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("listening line");
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let started = std::time::Instant::now();
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "stopped promptly"
    );

    // Without the webhook secret serve refuses to start, naming the variable.
    let mut command = install.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY);
    let out = command.output().expect("serve");
    let line = crate::support::one_error_line(&out);
    assert!(line.contains("COMPASS_STRIPE_WEBHOOK_SECRETS"), "{line}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let mut command = install.command(&["serve", "--listen", &address]);
    command
        .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
        .env("COMPASS_STRIPE_WEBHOOK_SECRETS", WEBHOOK_SECRET);
    let line = crate::support::one_error_line(&command.output().expect("serve"));
    assert!(
        line.contains(&format!("cannot listen on {address}")),
        "{line}"
    );
}

#[test]
fn every_answer_carries_the_security_headers() {
    let server = crate::support::Serving::start(crate::support::Install::new());
    let token = "D".repeat(43);
    for path in [
        "/".to_owned(),
        "/healthz".to_owned(),
        "/assets/site.css".to_owned(),
        "/my".to_owned(),
        format!("/status/{token}"),
        format!("/api/orders/{token}"),
        "/no/such/page".to_owned(),
    ] {
        let (_, headers, _) = server.get_bytes(&path);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{path}: no {name} in {headers:?}"))
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self' https://js.stripe.com"),
            "{path}: {csp}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert!(!header("referrer-policy").is_empty(), "{path}");
        // The public URL of a fresh install is http://: no HSTS promise over plain HTTP.
        assert!(
            !headers
                .iter()
                .any(|(n, _)| n == "strict-transport-security"),
            "{path}"
        );
    }
}

#[test]
fn bots_filling_the_honeypot_or_racing_the_form_are_refused_and_nothing_is_stored() {
    // The default configuration: a form must be at least 3 seconds old.
    let server = Serving::start(Install::with_stripe(&service("COMPASS_TEST_STRIPE_URL")));
    let before = counts(&server);
    let post = |extra: &[(&str, &str)]| {
        let mut fields = VALID.to_vec();
        fields.extend_from_slice(extra);
        let body = serde_urlencoded::to_string(&fields).expect("encode");
        server.post(
            "/orders",
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        )
    };
    let started = server.form_started();
    for (what, extra) in [
        ("sent at once", vec![("started", started.as_str())]),
        ("no start time", vec![]),
        (
            "a forged start time",
            vec![("started", "1700000000.00000000000000000000000000000000")],
        ),
        (
            "the honeypot filled",
            vec![
                ("started", started.as_str()),
                ("website_url", "http://spam.example"),
            ],
        ),
    ] {
        let (status, _, page) = post(&extra);
        assert_eq!(status, 422, "{what}");
        assert!(
            page.contains("Please check your answers and send the form again."),
            "{what}: the person sees the form again"
        );
        assert!(page.contains("value=\"Acme\""), "{what}: answers kept");
    }
    let json = json!({ "company": "Acme", "website_url": "http://spam.example" }).to_string();
    let (status, _, body) = server.post("/orders", "application/json", json.as_bytes());
    assert_eq!(status, 422);
    assert!(body.contains("\"rejected\""), "{body}");
    assert_eq!(counts(&server), before, "nothing stored");
}

#[test]
fn a_configured_captcha_is_checked_with_the_provider_before_anything_is_stored() {
    use crate::fake_http::{Answer, FakeHttp};
    // The provider: the first answer is refused, the second accepted.
    let provider = FakeHttp::start(vec![
        Answer::json(
            200,
            json!({ "success": false, "error-codes": ["invalid-input-response"] }),
        ),
        Answer::json(200, json!({ "success": true, "error-codes": [] })),
    ]);
    let install = Install::with_stripe(&service("COMPASS_TEST_STRIPE_URL")).without_rate_limits();
    let config = std::fs::read_to_string(install.config()).expect("config");
    let config = config
        .replace("provider = \"\"", "provider = \"turnstile\"")
        .replace("site_key = \"\"", "site_key = \"0x4AAAAAAAsitekey\"")
        .replace(
            "verify_url = \"\"",
            &format!("verify_url = \"{}/turnstile/v0/siteverify\"", provider.base),
        );
    std::fs::write(install.config(), config).expect("write config");
    // Without its secret every order would be refused: serve does not start.
    let mut serve = install
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("COMPASS_STRIPE_SECRET_KEY", crate::support::STRIPE_KEY)
        .env("COMPASS_STRIPE_WEBHOOK_SECRETS", "whsec_captcha")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start serve");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = serve.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(10) {
            let _ = serve.kill();
            panic!("serve started without the CAPTCHA secret");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().expect("stderr"), &mut stderr)
        .expect("read");
    assert!(stderr.contains("COMPASS_CAPTCHA_SECRET"), "{stderr}");
    let server = Serving::start_with_env(install, &[("COMPASS_CAPTCHA_SECRET", "captcha-secret")]);

    let (_, page) = server.get("/");
    assert!(
        page.contains("class=\"cf-turnstile\" data-sitekey=\"0x4AAAAAAAsitekey\""),
        "the widget"
    );
    let (_, headers, _) = server.get_bytes("/");
    let csp = headers
        .iter()
        .find(|(n, _)| n == "content-security-policy")
        .map(|(_, v)| v.clone())
        .expect("CSP");
    assert!(
        csp.contains("script-src 'self' https://challenges.cloudflare.com"),
        "{csp}"
    );

    let before = counts(&server);
    let send = |answer: &str| {
        let mut fields = VALID.to_vec();
        fields.push(("cf-turnstile-response", answer));
        server.post(
            "/orders",
            "application/x-www-form-urlencoded",
            &form_from(&server, &fields),
        )
    };
    let (status, _, page) = send("bot-guess");
    assert_eq!(status, 422);
    assert!(page.contains("Please complete the check"), "{page}");
    assert_eq!(counts(&server), before, "nothing stored");
    let (status, location, _) = send("human-token");
    assert_eq!(status, 303, "accepted: on to payment");
    assert!(location.expect("location").contains("/pay/"));

    let asked = provider.received();
    assert_eq!(asked.len(), 2);
    assert!(
        asked[0]
            .request_line
            .starts_with("POST /turnstile/v0/siteverify")
    );
    assert!(
        asked[0].body.contains("secret=captcha-secret"),
        "{}",
        asked[0].body
    );
    assert!(
        asked[1].body.contains("response=human-token"),
        "{}",
        asked[1].body
    );
}
