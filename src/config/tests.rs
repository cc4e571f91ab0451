use std::collections::HashMap;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> anyhow::Result<Config> {
    Config::parse(text, Path::new("/etc/compass/compass.toml"), &no_env)
}

fn error(text: &str) -> String {
    format!(
        "{:#}",
        parse(text).expect_err("the configuration is refused")
    )
}

#[test]
fn the_example_is_the_defaults() {
    let example: RawConfig = toml::from_str(EXAMPLE).expect("the example parses");
    assert_eq!(
        example,
        RawConfig::default(),
        "the example and the code agree"
    );
    let from_file = Config::load(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/compass.example.toml"
        )),
        &no_env,
    )
    .expect("the example file is a valid configuration");
    assert_eq!(
        from_file.prices, None,
        "the example leaves prices to the method"
    );
    assert!(matches!(
        from_file.mail.transport,
        MailTransport::File { .. }
    ));
}

#[test]
fn an_empty_file_takes_every_default() {
    let config = parse("").expect("valid");
    assert_eq!(config.database, Path::new("/etc/compass/compass.db"));
    assert_eq!(config.public_url, "http://127.0.0.1:8080");
    assert_eq!(config.prices, None);
    assert_eq!(config.policy, Policy::default());
    assert_eq!(config.lease, Duration::minutes(15));
    assert!(!config.stripe.secret_key.is_set());
}

#[test]
fn unknown_keys_are_named() {
    let message = error("[business]\nname = \"Acme\"\ncolour = \"blue\"\n");
    assert!(
        message
            .starts_with("/etc/compass/compass.toml:3:1: business.colour: unknown field `colour`"),
        "{message}"
    );
    let message = error("[pricing]\nstarter = 4900\n");
    assert!(message.contains("unknown field `pricing`"), "{message}");
}

#[test]
fn syntax_errors_are_one_line_with_their_place() {
    let message = error("[tiers]\nstarter = \n");
    assert!(
        message.starts_with("/etc/compass/compass.toml:2:"),
        "{message}"
    );
    assert!(message.contains("tiers.starter"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn bad_prices_are_refused_with_the_key() {
    assert_eq!(
        error("[tiers]\nstarter = -5\n"),
        "/etc/compass/compass.toml: tiers.starter must be a price in cents between 50 and 99999999, got -5"
    );
    assert_eq!(
        error("[tiers]\npremium = 0\n"),
        "/etc/compass/compass.toml: tiers.premium must be a price in cents between 50 and 99999999, got 0"
    );
    let message = error("[tiers]\nstandard = 149.00\n");
    assert!(
        message.starts_with("/etc/compass/compass.toml:2:12: tiers.standard: invalid type: floating point `149.0`, expected i64"),
        "{message}"
    );
    let message = error("[tiers]\nstandard = \"149\"\n");
    assert!(
        message.contains("tiers.standard: invalid type: string \"…\", expected i64"),
        "{message}"
    );
    assert_eq!(
        error("[tiers]\ncurrency = \"dollars\"\n"),
        "/etc/compass/compass.toml: tiers.currency must be a three-letter ISO 4217 code like usd, got `dollars`"
    );
}

/// `[invoices]` turned on with a seller, and `$rest`.
macro_rules! invoices {
    ($rest:literal) => {
        concat!(
            "[invoices]\nissue = true\nseller_name = \"Seller Ltd\"\nseller_address = \"1 Main St\"\n",
            $rest
        )
    };
}

#[test]
fn other_values_are_checked() {
    let cases = [
        (
            "[business]\npublic_url = \"example.com\"",
            "business.public_url must be an http:// or https:// address",
        ),
        (
            "[delivery]\nremind_after_hours = 0",
            "delivery.remind_after_hours must be between 1 and 720, got 0",
        ),
        (
            "[business]\nbooking_url = \"javascript:alert(1)\"",
            "business.booking_url must be an http:// or https:// address",
        ),
        (
            "[mail]\nfrom = \"reports\"",
            "mail.from must be an email address",
        ),
        (
            "[mail]\ntransport = \"pigeon\"",
            "mail.transport must be \"file\" or \"smtp\", got \"pigeon\"",
        ),
        (
            "[mail]\ntransport = \"smtp\"\nsmtp_host = \"smtp.example.com\"\nsmtp_security = \"none\"",
            "only allowed for a relay on localhost",
        ),
        (
            "[captcha]\nprovider = \"recaptcha\"",
            "captcha.provider must be \"\" (none), \"turnstile\" or \"hcaptcha\", got \"recaptcha\"",
        ),
        ("[captcha]\nprovider = \"turnstile\"", "captcha.site_key"),
        (
            "[limits]\ntrusted_proxies = [\"my-proxy\"]",
            "limits.trusted_proxies: `my-proxy` is not an IP address",
        ),
        (
            "[refunds]\nwindow_days = 400",
            "refunds.window_days must be between 0 and 365, got 400",
        ),
        (
            "[retention]\npurge_after_days = 7",
            "retention.purge_after_days must be 0 (keep everything) or between 30 and 3650 days, \
             and longer than refunds.window_days (7), got 7",
        ),
        (
            "[refunds]\nwindow_days = 60\n[retention]\npurge_after_days = 45",
            "longer than refunds.window_days (60), got 45",
        ),
        (
            "[stripe]\ntimeout_secs = 0",
            "stripe.timeout_secs must be between 1 and 600, got 0",
        ),
        (
            "[processing]\nmax_attempts = 0",
            "processing.max_attempts must be between 1 and 100, got 0",
        ),
        (
            "[processing]\nbackoff_base_secs = 600\nbackoff_cap_secs = 60",
            "processing.backoff_cap_secs must not be below processing.backoff_base_secs",
        ),
        (
            "[claude]\ninput_usd_per_mtok = -1.0",
            "claude.input_usd_per_mtok must be zero or more",
        ),
        (
            "[invoices]\nissue = true",
            "invoices.seller_name must not be empty",
        ),
        (
            "[stripe]\njs_url = \"http://cdn.example.com/stripe.js\"",
            "stripe.js_url must be an https:// address",
        ),
        (
            invoices!("seller_country = \"Ireland\""),
            "invoices.seller_country must be a two-letter country code like IE or DE, got `Ireland`",
        ),
        (
            invoices!("seller_country = \"IE\"\nseller_tax_id = \"IE123\""),
            "invoices.seller_tax_id: IE123 is not a VAT number of Ireland",
        ),
        (
            invoices!("seller_country = \"IE\""),
            "invoices.reverse_charge needs invoices.seller_tax_id",
        ),
        (
            invoices!("seller_country = \"US\"\ntax_rate = \"8,5\""),
            "invoices.tax_rate: `8,5` is not a tax rate",
        ),
        (
            invoices!("seller_country = \"US\"\ncredit_note_prefix = \"INV\""),
            "invoices.credit_note_prefix must differ from invoices.invoice_prefix",
        ),
        (
            invoices!("seller_country = \"US\"\n[invoices.rates]\nXX = \"5\""),
            "invoices.rates.XX: `XX` is not a two-letter country code",
        ),
        (
            invoices!("seller_country = \"US\"\nbilling_details = \"always\""),
            "invoices.billing_details must be \"optional\" or \"required\", got `always`",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn a_missing_secret_names_its_variable() {
    let config = parse("").expect("valid without secrets");
    let message = format!("{:#}", config.stripe.secret_key.get().expect_err("missing"));
    assert_eq!(
        message,
        "missing the Stripe secret key: set COMPASS_STRIPE_SECRET_KEY (or \
         COMPASS_STRIPE_SECRET_KEY_FILE, or stripe.secret_key_file in compass.toml, to a file \
         that holds it)"
    );
    let message = format!("{:#}", config.claude.api_key.get().expect_err("missing"));
    assert!(message.contains("COMPASS_ANTHROPIC_API_KEY"), "{message}");
    let message = format!(
        "{:#}",
        config.stripe.webhook_secrets.get().expect_err("missing")
    );
    assert!(
        message.contains("COMPASS_STRIPE_WEBHOOK_SECRETS"),
        "{message}"
    );
}

#[test]
fn secrets_come_from_the_environment_or_files_and_never_show() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("anthropic"), "sk-ant-from-file\n").expect("write");
    std::fs::write(dir.path().join("smtp"), "smtp-from-env-file\n").expect("write");
    let smtp_file = dir.path().join("smtp").display().to_string();
    let vars = HashMap::from([
        ("COMPASS_STRIPE_SECRET_KEY", "sk_test_from_env".to_owned()),
        ("COMPASS_SMTP_PASSWORD_FILE", smtp_file),
    ]);
    let env = |name: &str| vars.get(name).cloned();
    let text = "[claude]\napi_key_file = \"anthropic\"\n\
                [mail]\ntransport = \"smtp\"\nsmtp_host = \"smtp.example.com\"\n";
    let config = Config::parse(text, &dir.path().join("compass.toml"), &env).expect("valid");
    assert_eq!(
        config.stripe.secret_key.get().expect("set").expose(),
        "sk_test_from_env"
    );
    assert_eq!(
        config.claude.api_key.get().expect("set").expose(),
        "sk-ant-from-file"
    );
    let MailTransport::Smtp { password, .. } = &config.mail.transport else {
        panic!("smtp transport expected");
    };
    assert_eq!(password.get().expect("set").expose(), "smtp-from-env-file");

    let shown = format!("{config:?}");
    for secret in ["sk_test_from_env", "sk-ant-from-file", "smtp-from-env-file"] {
        assert!(!shown.contains(secret), "Debug shows {secret}");
    }
}

#[test]
fn a_named_secret_file_must_exist() {
    let message = error("[stripe]\nsecret_key_file = \"/nonexistent/stripe\"\n");
    assert!(
        message.starts_with(
            "/etc/compass/compass.toml: cannot read the Stripe secret key from /nonexistent/stripe (stripe.secret_key_file)"
        ),
        "{message}"
    );
}

#[test]
fn each_secret_written_in_the_file_names_the_variable_that_should_hold_it() {
    for (section, key, var) in [
        ("stripe", "secret_key", "COMPASS_STRIPE_SECRET_KEY"),
        (
            "stripe",
            "webhook_secrets",
            "COMPASS_STRIPE_WEBHOOK_SECRETS",
        ),
        ("claude", "api_key", "COMPASS_ANTHROPIC_API_KEY"),
        ("captcha", "secret", "COMPASS_CAPTCHA_SECRET"),
        ("mail", "smtp_password", "COMPASS_SMTP_PASSWORD"),
    ] {
        let message = error(&format!("[{section}]\n{key} = \"hunter2hunter2\"\n"));
        assert!(
            message.contains(&format!("{section}.{key}: secrets are not read"))
                && message.contains(&format!("set {var} in the environment")),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[test]
fn secrets_in_the_file_are_refused_without_echoing_them() {
    let message = error("[stripe]\nsecret_key = \"sk_live_do_not_print\"\n");
    assert_eq!(
        message,
        "/etc/compass/compass.toml: stripe.secret_key: secrets are not read from compass.toml; \
         set COMPASS_STRIPE_SECRET_KEY in the environment, or stripe.secret_key_file to a file \
         that holds it"
    );
}

#[test]
fn errors_never_echo_what_looks_like_a_secret() {
    let pasted = "[stripe]\nsk_live_51HxYzAbCdEf0123456789=\n";
    let message = error(pasted);
    assert!(!message.contains("sk_live"), "{message}");
    assert!(message.contains("stripe.[redacted]"), "{message}");

    let misplaced = "[mail]\nsmtp_port = \"hunter2-password\"\n";
    let message = error(misplaced);
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("mail.smtp_port: invalid type: string"),
        "{message}"
    );

    let vars = HashMap::from([(
        "COMPASS_STRIPE_SECRET_KEY_FILE",
        "sk_live_51HxYzAbCdEf0123456789".to_owned(),
    )]);
    let env = |name: &str| vars.get(name).cloned();
    let err = Config::parse("", Path::new("compass.toml"), &env).expect_err("refused");
    let message = format!("{err:#}");
    assert!(!message.contains("sk_live"), "{message}");
    assert!(
        message.contains("looks like the secret itself"),
        "{message}"
    );
}

#[test]
fn the_lease_outlasts_a_report_with_a_repair_round() {
    let message = error("[claude]\ntimeout_secs = 300\n[processing]\nlease_secs = 600\n");
    assert!(
        message.contains(
            "processing.lease_secs (600) must be more than twice claude.timeout_secs (300)"
        ),
        "{message}"
    );
    parse("[claude]\ntimeout_secs = 60\n[processing]\nlease_secs = 121\n").expect("valid");
}
