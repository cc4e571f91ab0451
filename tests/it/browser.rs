//! The payment page in a real browser, from form to paid: headless Chromium (driven by
//! tests/browser/purchase.mjs) fills in the questionnaire, pays on the payment page with a
//! Stripe.js stand-in that confirms at localstripe, follows Stripe's redirect back, and watches
//! the status page move on to the report. Everything the customer's browser runs is compass's
//! own: the pages, pay.js and status.js, under the Content-Security-Policy compass sends for
//! the configured `stripe.js_url`, which here is the stand-in's address. Only Stripe.js is
//! replaced, and every call the page makes on it is replayed through TypeScript against the
//! types Stripe publishes (`@stripe/stripe-js`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use compass::db::OrderFilter;
use compass::order::Status;
use serde_json::{Value, json};

use crate::maildev::{inbox, recipient};
use crate::payments::{
    localstripe, order_detail, register_webhook, status_of, stripe_get, wait_until_paid,
};
use crate::services::service;
use crate::support::{Install, STRIPE_KEY, Serving, eventually, stdout};

/// The time the stand-in takes to confirm, as Stripe's API does (the customer's second click
/// lands while the first is being confirmed).
const CONFIRM_LATENCY_MS: u32 = 800;

/// The stand-in's files (tests/browser), served from an origin of their own as Stripe.js is
/// served from js.stripe.com. Stops when dropped.
struct StandIn {
    base: String,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    fn serve() -> StandIn {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the stand-in"));
        let base = format!(
            "http://{}",
            server.server_addr().to_ip().expect("an IP address")
        );
        let serving = Arc::clone(&server);
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let name = request.url().split('?').next().unwrap_or("").to_owned();
                let kind = match name.rsplit('.').next() {
                    Some("js") => "text/javascript; charset=utf-8",
                    Some("html") => "text/html; charset=utf-8",
                    _ => "text/plain",
                };
                let file = match name.as_str() {
                    "/stripe-standin.js" | "/element.html" | "/element.js" => {
                        std::fs::read(browser_dir().join(&name[1..])).ok()
                    }
                    _ => None,
                };
                let response = match file {
                    Some(body) => tiny_http::Response::from_data(body).with_header(
                        tiny_http::Header::from_bytes("Content-Type", kind).expect("header"),
                    ),
                    None => {
                        tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
                    }
                };
                let _ = request.respond(response);
            }
        });
        StandIn {
            base,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The browser driver, and what it says step by step.
struct Driver {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    said: Vec<Value>,
}

impl Driver {
    fn start(options: &Value) -> Driver {
        let mut child = Command::new("node")
            .arg(browser_dir().join("purchase.mjs"))
            .arg(options.to_string())
            .env(
                "COMPASS_TEST_NODE_MODULES",
                service("COMPASS_TEST_NODE_MODULES"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (scripts/test-services installs the browser tools)");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Driver {
            child,
            lines,
            said: Vec::new(),
        }
    }

    /// The driver's next step, which must be `step`; a failure it reports fails the test.
    fn expect(&mut self, step: &str) -> Value {
        let line = self
            .lines
            .next()
            .unwrap_or_else(|| panic!("the browser driver ended before {step}: {:#?}", self.said))
            .expect("read the driver");
        let said: Value = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "line": line }));
        self.said.push(said.clone());
        assert_eq!(said["step"], step, "{said:#}");
        said
    }

    fn next(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "next").expect("tell the driver");
    }

    fn finish(mut self) -> Vec<Value> {
        let status = self.child.wait().expect("the driver ends");
        for line in self.lines.by_ref() {
            let line = line.expect("read the driver");
            self.said
                .push(serde_json::from_str(&line).unwrap_or_else(|_| json!({ "line": line })));
        }
        assert!(
            status.success(),
            "the browser driver failed: {:#?}",
            self.said
        );
        std::mem::take(&mut self.said)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every PaymentIntent at the Stripe fake (other tests' too), page by page.
fn payment_intents() -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map_or_else(String::new, |last| {
            format!("&starting_after={}", last["id"].as_str().unwrap_or(""))
        });
        let page = stripe_get(&format!("/v1/payment_intents?limit=100{after}"));
        all.extend(page["data"].as_array().cloned().unwrap_or_default());
        if page["has_more"] != true {
            return all;
        }
    }
}

fn query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).expect("a query")
}

#[test]
fn a_customer_pays_in_the_browser_and_the_status_page_moves_on_to_the_report() {
    let stand_in = StandIn::serve();
    let model = format!("claude-browser-{}", std::process::id());
    let email = recipient("browser");
    let js_url = format!(
        "{}/stripe-standin.js?api={}&latency={CONFIRM_LATENCY_MS}",
        stand_in.base,
        localstripe()
    );
    let install = Install::with_stripe(&localstripe()).edit_config(&[(
        "js_url = \"https://js.stripe.com/endive/stripe.js\"",
        &format!("js_url = \"{js_url}\""),
    )]);
    crate::seed::point_at_claude(
        &install.config(),
        &service("COMPASS_TEST_CLAUDE_URL"),
        &model,
    )
    .expect("point at llmock");
    install.use_smtp(&service("COMPASS_TEST_SMTP"));
    let server = Serving::start_at_public_url(install);
    register_webhook(&server);
    let shots = std::env::var_os("COMPASS_BROWSER_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| server.install.dir.path().join("shots"));
    std::fs::create_dir_all(&shots).expect("screenshots folder");

    let mut driver = Driver::start(&json!({
        "base": server.base,
        "email": email,
        "shots": shots,
        "chromium": service("COMPASS_TEST_CHROMIUM"),
        "stripe_api": localstripe(),
        // The default config's minimum time on the form, and a second's margin.
        "min_form_ms": 4_000,
    }));

    let payment = driver.expect("payment");
    let orders = server
        .install
        .db()
        .list_orders(&OrderFilter {
            limit: 10,
            ..OrderFilter::default()
        })
        .expect("orders");
    assert_eq!(orders.len(), 1, "one order from the form");
    let order_id = orders[0].id.clone();
    let token = order_detail(&server, &order_id).status_token;
    assert_eq!(
        payment["url"].as_str(),
        Some(format!("{}/pay/{token}", server.base).as_str())
    );

    // Declined: Stripe's own message on the page, the order unpaid and still payable.
    let declined = driver.expect("declined");
    assert_eq!(declined["message"], "Your card was declined.", "{declined}");
    // Stripe's words for the form's own errors, ours when Stripe cannot be reached.
    assert_eq!(declined["incomplete"], "Your card number is incomplete.");
    assert_eq!(
        declined["unreachable"],
        "Something went wrong with the payment. Please try again: an order is never charged twice."
    );
    eventually(20, "Stripe's payment_failed event to be recorded", || {
        order_detail(&server, &order_id)
            .timeline
            .iter()
            .any(|e| e.kind == "payment_failed")
    });
    assert_eq!(status_of(&server, &order_id), Status::PendingPayment);
    driver.next();

    // Paid with a good card, then back from Stripe with its parameters on the return URL.
    let redirected = driver.expect("redirected");
    let url = redirected["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("{}/status/{token}?", server.base)),
        "{url}"
    );
    let said = query(url);
    let param = |name: &str| {
        said.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} on the return URL: {url}"))
    };
    let intent = param("payment_intent").to_owned();
    assert!(param("payment_intent_client_secret").starts_with(&format!("{intent}_secret_")));
    assert_eq!(param("redirect_status"), "succeeded");
    assert_eq!(redirected["disabled_while_confirming"], true);
    // Unpaid until compass has read the payment from Stripe (the webhook may be faster).
    let heading = redirected["heading"].as_str().unwrap_or("");
    assert!(
        ["Confirming your payment", "Your report is being written"].contains(&heading),
        "{redirected}"
    );
    wait_until_paid(&server, &order_id, &intent);
    let text =
        serde_json::to_string(&crate::seed::sample_written(orders[0].tier.as_str())).expect("json");
    crate::llmock::script(&model, json!([{ "type": "reply", "text": text }]));
    let mut process = server.install.command(&["process"]);
    process
        .env_remove("COMPASS_NOW")
        .env("COMPASS_STRIPE_SECRET_KEY", STRIPE_KEY);
    let printed = stdout(&process.output().expect("run process"));
    assert!(printed.contains("1 completed"), "{printed}");
    driver.next();

    let ready = driver.expect("ready");
    assert_eq!(ready["heading"], "Your report is ready");
    let again = driver.expect("paid-again");
    assert_eq!(again["forms"], 0, "no second payment form: {again}");
    assert!(
        again["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{}/status/{token}", server.base))),
        "{again}"
    );
    let calls = driver.expect("calls");
    let said = driver.finish();
    let types = said.last().expect("the types verdict");
    assert_eq!(types["step"], "types");
    assert_eq!(types["ok"], true, "{types:#}");

    // The stand-in was asked to confirm four times: the incomplete card, Stripe unreachable,
    // the declined card, then the good one. The second click while confirming did nothing.
    let confirms = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["method"] == "confirmPayment")
        .count();
    assert_eq!(confirms, 4, "{calls:#}");
    // One PaymentIntent, one payment, one confirmation email.
    let detail = order_detail(&server, &order_id);
    assert_eq!(detail.payments.len(), 1, "{:?}", detail.payments);
    assert_eq!(detail.payments[0].payment_intent_id, intent);
    assert_eq!(detail.payments[0].status, "succeeded");
    let confirmations: Vec<_> = detail
        .emails
        .iter()
        .filter(|e| e.kind == "payment_confirmation")
        .collect();
    assert_eq!(confirmations.len(), 1, "{:?}", detail.emails);
    let mail = inbox(&email);
    let subjects: Vec<_> = mail.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.starts_with("Payment received"))
            .count(),
        1,
        "{subjects:?}"
    );
    // And at Stripe, one PaymentIntent for the order, declined once and then paid.
    let ours: Vec<_> = payment_intents()
        .into_iter()
        .filter(|pi| pi["metadata"]["order_id"] == order_id.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["status"], "succeeded");
    drop(stand_in);
}
