//! Email addresses, checked one way everywhere: the intake form, the sign-in form, `resend-email
//! --to` and the configuration. The rule is the one docs/openapi.yaml states as a pattern, and
//! everything it admits the mailer (lettre) can send to:
//!
//! - the part before the `@` is RFC 5322's dot-atom of ASCII `atext` (letters, digits and
//!   ``!#$%&'*+/=?^_`{|}~-``, in dot-separated runs), 64 characters at most;
//! - the domain has at least two labels of ASCII letters, digits and inner hyphens, at most
//!   63 characters each (an international domain is written in its `xn--` form);
//! - 254 characters at most.
//!
//! International addresses (RFC 6531) are refused: delivering them needs SMTPUTF8 at every
//! relay, and a customer who typed one would never get the report.

/// The longest address SMTP carries (RFC 5321: a 254-character path).
const MAX_LEN: usize = 254;

/// The longest part before the `@` (RFC 5321).
const MAX_LOCAL: usize = 64;

/// The characters of a dot-atom's runs besides ASCII letters and digits (RFC 5322 `atext`).
const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

/// Why `text` is not one address like `ada@example.com` (no display name), or `Ok`.
pub fn check(text: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("{why}: {text}"));
    if text.len() > MAX_LEN {
        return refuse("is longer than 254 characters");
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return refuse("has no @");
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c);
    if local.len() > MAX_LOCAL {
        return refuse("has more than 64 characters before the @");
    }
    if local
        .split('.')
        .any(|run| run.is_empty() || !run.chars().all(atext))
    {
        return refuse("is not an email address (the part before the @)");
    }
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.split('.').count() < 2 || !domain.split('.').all(label) {
        return refuse("has no domain like example.com");
    }
    // What this admits, the mailer must take; the tests hold it to that.
    text.parse::<lettre::Address>()
        .map(drop)
        .map_err(|err| format!("is not an email address ({err}): {text}"))
}

/// Why `text` is not an address with an optional display name (`Ada <ada@example.com>`), or
/// `Ok`: the form of `mail.from` and `mail.operator`.
pub fn check_mailbox(text: &str) -> Result<(), String> {
    let mailbox: lettre::message::Mailbox = text
        .parse()
        .map_err(|err| format!("is not an email address ({err}): {text}"))?;
    check(mailbox.email.as_ref())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The `email` pattern of docs/openapi.yaml, without the white space it allows around and
    /// the lookahead that holds the part before the `@` to 64 characters (which proptest's
    /// regex cannot generate from).
    const DOCUMENTED: &str = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@\
        [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+";

    /// [`DOCUMENTED`] with its repetitions bounded so that the part before the `@` stays
    /// within 64 characters and the whole within 254: the addresses the property draws.
    const DRAWN: &str = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}){0,2}@\
        [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?){1,2}";

    #[test]
    fn the_documented_pattern_is_the_one_in_the_document() {
        let document = include_str!("../docs/openapi.yaml");
        let around = "[\\t\\n\\x0B\\x0C\\r \\x85]*";
        // In YAML's single quotes, a quote is written twice.
        let pattern =
            format!("^{around}(?=[^@]{{1,64}}@){DOCUMENTED}{around}$").replace('\'', "''");
        let expected = format!("pattern: '{pattern}'");
        assert!(
            document.contains(&expected),
            "openapi.yaml lacks {expected}"
        );
    }

    #[test]
    fn addresses_people_type_are_taken_and_mistakes_are_not() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "ADA@EXAMPLE.COM",
            "o'brien@xn--mller-kva.de",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        let long_local = format!("{}@example.com", "a".repeat(65));
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@.co",
            "a@b.co.",
            "a b@c.co",
            "a@b..co",
            "a..b@c.co",
            ".a@b.co",
            "<a@b.co>",
            "a@-b.co",
            "a@b.co\r\nBcc: x@y.co",
            "é@example.com",
            "a@müller.de",
            long.as_str(),
            long_local.as_str(),
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mailbox_may_carry_a_display_name() {
        assert_eq!(check_mailbox("Ada Lovelace <ada@example.com>"), Ok(()));
        assert_eq!(check_mailbox("ada@example.com"), Ok(()));
        assert!(check_mailbox("Ada <ada@example>").is_err());
        assert!(check_mailbox("you").is_err());
    }

    proptest! {
        /// Whatever the document admits (up to the length limit), compass takes and the
        /// mailer can send to.
        #[test]
        fn every_documented_address_is_taken_and_sendable(
            address in proptest::string::string_regex(DRAWN).expect("a regex"),
        ) {
            let documented = regex::Regex::new(&format!("^{DOCUMENTED}$")).expect("a regex");
            prop_assert!(documented.is_match(&address), "drawn outside the document");
            prop_assert_eq!(check(&address), Ok(()));
            prop_assert!(address.parse::<lettre::Address>().is_ok());
        }
    }
}
