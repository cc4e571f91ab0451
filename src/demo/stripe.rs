//! The demo's stand-in for Stripe's API: PaymentIntents and Refunds kept in
//! memory, served on 127.0.0.1 so the demo's orders go through compass's real Stripe client,
//! webhook and refund paths without any Stripe account, live or test.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

/// The demo's Stripe secret key: only the stand-in accepts it.
pub const DEMO_STRIPE_KEY: &str = "sk_test_compass_demo";
/// The demo's webhook signing secret.
pub const DEMO_WEBHOOK_SECRET: &str = "whsec_compass_demo";

/// The demo's only secrets. Nothing is read from the real environment, so a demo can never
/// reach a Stripe account, live or test.
pub fn demo_env(name: &str) -> Option<String> {
    match name {
        "COMPASS_STRIPE_SECRET_KEY" => Some(DEMO_STRIPE_KEY.to_owned()),
        "COMPASS_STRIPE_WEBHOOK_SECRETS" => Some(DEMO_WEBHOOK_SECRET.to_owned()),
        _ => None,
    }
}

/// The stand-in, running until dropped.
pub struct DemoStripe {
    /// `http://127.0.0.1:PORT`, the `stripe.api_base` of the demo.
    pub base: String,
    intents: Arc<Mutex<HashMap<String, Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DemoStripe {
    /// Starts serving on a free port of 127.0.0.1.
    pub fn start() -> anyhow::Result<DemoStripe> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|err| anyhow::anyhow!("cannot start the demo Stripe: {err}"))?;
        let address = server
            .server_addr()
            .to_ip()
            .context("the demo Stripe has no address")?;
        let intents = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (intents, stop) = (Arc::clone(&intents), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) {
                        answer(request, &intents);
                    }
                }
            })
        };
        Ok(DemoStripe {
            base: format!("http://{address}"),
            intents,
            stop,
            thread: Some(thread),
        })
    }

    /// The configuration of a demo installation: the example's values, served at
    /// `public_url`, with payments going to this stand-in. Built as a value (the example
    /// parsed, three keys set, checked), so that no rewording of the example can point a demo
    /// anywhere else.
    pub fn config(&self, public_url: &str) -> anyhow::Result<String> {
        let mut config: toml::Table = crate::config::EXAMPLE
            .parse()
            .context("the example configuration is TOML")?;
        for (section, key, value) in [
            ("business", "public_url", public_url),
            ("stripe", "api_base", self.base.as_str()),
            ("stripe", "publishable_key", "pk_test_demo"),
        ] {
            let table = config
                .get_mut(section)
                .and_then(toml::Value::as_table_mut)
                .with_context(|| format!("the example configuration has no [{section}]"))?;
            table.insert(key.to_owned(), toml::Value::String(value.to_owned()));
        }
        // The demo issues invoices, as a made-up Irish business selling to the EU.
        let invoices = config
            .get_mut("invoices")
            .and_then(toml::Value::as_table_mut)
            .context("the example configuration has no [invoices]")?;
        invoices.insert("issue".into(), toml::Value::Boolean(true));
        for (key, value) in [
            ("seller_name", "Compass AI Readiness Ltd (demo)"),
            ("seller_address", "1 Example Street\nDublin D02 XY45"),
            ("seller_country", "IE"),
            ("seller_tax_id", "IE6388047V"),
            ("tax_rate", "23"),
        ] {
            invoices.insert(key.into(), toml::Value::String(value.into()));
        }
        let text = toml::to_string(&config).context("cannot write the demo configuration")?;
        let checked =
            crate::config::Config::parse(&text, std::path::Path::new("compass.toml"), &demo_env)?;
        anyhow::ensure!(
            checked.stripe.api_base == self.base && checked.public_url == public_url,
            "the demo configuration does not point at the demo's Stripe and address"
        );
        Ok(text)
    }

    /// Marks a PaymentIntent paid, as a card payment would; the PaymentIntent as it is now.
    pub fn succeed(&self, id: &str) -> Option<Value> {
        let mut intents = self.intents.lock().unwrap_or_else(PoisonError::into_inner);
        let intent = intents.get_mut(id)?;
        intent["status"] = json!("succeeded");
        intent["latest_charge"] = json!(format!("ch_demo_{}", &id[8..]));
        Some(intent.clone())
    }
}

impl Drop for DemoStripe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut request: tiny_http::Request, intents: &Mutex<HashMap<String, Value>>) {
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(
        &mut std::io::Read::take(request.as_reader(), 64 * 1024),
        &mut body,
    );
    let form: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let url = request.url().to_owned();
    let path = url.split('?').next().unwrap_or_default();
    let method = request.method().to_string();
    let mut intents = intents.lock().unwrap_or_else(PoisonError::into_inner);
    let (status, value) = match (method.as_str(), path) {
        ("POST", "/v1/payment_intents") => {
            let order = form.get("metadata[order_id]").cloned().unwrap_or_default();
            let id = format!("pi_demo_{}", order.replace('-', ""));
            let intent = intents.entry(id.clone()).or_insert_with(|| {
                json!({
                    "id": id,
                    "object": "payment_intent",
                    "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0),
                    "currency": form.get("currency").cloned().unwrap_or_default(),
                    "status": "requires_payment_method",
                    "client_secret": format!("{id}_secret_demo"),
                    "metadata": { "order_id": order },
                    "latest_charge": null,
                    "created": time::OffsetDateTime::now_utc().unix_timestamp(),
                    "livemode": false,
                })
            });
            (200, intent.clone())
        }
        ("GET", path) if path.starts_with("/v1/payment_intents/") => {
            match intents.get(&path["/v1/payment_intents/".len()..]) {
                Some(intent) => (200, intent.clone()),
                None => (
                    404,
                    json!({ "error": { "type": "invalid_request_error", "message": "No such payment_intent" } }),
                ),
            }
        }
        ("POST", "/v1/refunds") => {
            let intent = form.get("payment_intent").cloned().unwrap_or_default();
            match intents.get(&intent) {
                Some(paid) if paid["status"] == "succeeded" => (
                    200,
                    json!({
                        "id": format!("re_demo_{}", uuid::Uuid::now_v7().simple()),
                        "object": "refund",
                        "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0),
                        "currency": paid["currency"],
                        "status": "succeeded",
                        "payment_intent": intent,
                        "charge": paid["latest_charge"],
                        "metadata": {
                            "order_id": form.get("metadata[order_id]"),
                            "refund_number": form.get("metadata[refund_number]"),
                        },
                    }),
                ),
                _ => (
                    400,
                    json!({ "error": { "type": "invalid_request_error", "message": "This PaymentIntent has no successful charge to refund" } }),
                ),
            }
        }
        _ => (
            404,
            json!({ "error": { "type": "invalid_request_error", "message": "Not part of the demo" } }),
        ),
    };
    let mut response = tiny_http::Response::from_string(value.to_string()).with_status_code(status);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", "application/json") {
        response.add_header(header);
    }
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_configuration_points_only_at_the_stand_in() {
        let stand_in = DemoStripe::start().expect("the stand-in starts");
        let text = stand_in.config("http://127.0.0.1:9999").expect("a config");
        let config = crate::config::Config::parse(
            &text,
            std::path::Path::new("/tmp/demo/compass.toml"),
            &demo_env,
        )
        .expect("valid");
        assert_eq!(config.stripe.api_base, stand_in.base);
        assert_eq!(config.public_url, "http://127.0.0.1:9999");
        assert_eq!(config.stripe.publishable_key, "pk_test_demo");
        assert_eq!(
            config.stripe.secret_key.get().expect("set").expose(),
            DEMO_STRIPE_KEY
        );
        assert!(!text.contains("api.stripe.com"), "{text}");
        // The demo's environment has its two Stripe secrets and nothing else: not a key of
        // the machine's, whatever it sets.
        for name in [
            "COMPASS_ANTHROPIC_API_KEY",
            "COMPASS_SMTP_PASSWORD",
            "COMPASS_STRIPE_SECRET_KEY_FILE",
            "COMPASS_NOW",
            "HOME",
        ] {
            assert_eq!(demo_env(name), None, "{name}");
        }
    }
}
