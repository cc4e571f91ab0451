//! The customer's sign-in links ("my orders"): a link asked for by email, stored only as the
//! SHA-256 of its token, used once, and the orders it shows.

use anyhow::Context;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::Digest as _;
use time::{Duration, OffsetDateTime};

use super::{Db, exec, from_db, new_token, normalize_email, parse_col, to_db};
use crate::order::{EmailKind, Status, Tier};

/// How a sign-in request ended. The customer sees the same answer for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInRequest {
    /// A link was stored and its email queued.
    Queued,
    /// Nobody with that address has ordered.
    NoCustomer,
    /// Too many links asked for recently.
    TooMany,
}

/// How long a sign-in link works, and how many one customer may ask for within `window`.
#[derive(Clone, Copy, Debug)]
pub struct SignInLimits {
    pub ttl: Duration,
    pub per_window: u32,
    pub window: Duration,
}

impl SignInLimits {
    /// The rule the site follows and the sign-in email states: a link works for 30 minutes,
    /// and a customer gets at most three a quarter hour.
    pub const RULE: SignInLimits = SignInLimits {
        ttl: Duration::minutes(30),
        per_window: 3,
        window: Duration::minutes(15),
    };
}

/// An order as the customer's own list shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CustomerOrder {
    pub id: String,
    pub company: String,
    pub tier: Tier,
    pub status: Status,
    pub amount_cents: i64,
    pub currency: String,
    pub status_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// How a sign-in token is stored: never the token itself.
fn sha256_hex(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Db {
    /// Makes a sign-in link for the customer with `email`: stores the SHA-256 of a new 256-bit
    /// token and queues the email that carries the token, unless nobody with that address
    /// ordered or they asked too often.
    pub fn request_sign_in(
        &mut self,
        email: &str,
        limits: SignInLimits,
        now: OffsetDateTime,
    ) -> anyhow::Result<SignInRequest> {
        let email = normalize_email(email);
        let token = new_token()?;
        let token_sha256 = sha256_hex(&token);
        self.write(|tx| {
            let customer: Option<i64> = tx
                .prepare_cached("SELECT id FROM customers WHERE email = ?1")?
                .query_row([&email], |row| row.get(0))
                .optional()?;
            let Some(customer) = customer else {
                return Ok(SignInRequest::NoCustomer);
            };
            let recent: u32 = tx
                .prepare_cached(
                    "SELECT count(*) FROM sign_in_links WHERE customer_id = ?1 AND created_at > ?2",
                )?
                .query_row(params![customer, to_db(now - limits.window)], |row| {
                    row.get(0)
                })?;
            if recent >= limits.per_window {
                return Ok(SignInRequest::TooMany);
            }
            exec(
                tx,
                "INSERT INTO sign_in_links (token_sha256, customer_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![token_sha256, customer, to_db(now), to_db(now + limits.ttl)],
            )?;
            exec(
                tx,
                "INSERT INTO emails (customer_id, kind, recipient, link_token, next_attempt_at, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
                params![
                    customer,
                    EmailKind::SignInLink.as_str(),
                    email,
                    token,
                    to_db(now)
                ],
            )?;
            Ok(SignInRequest::Queued)
        })
        .context("cannot store a sign-in link")
    }

    /// Uses up the sign-in link with `token`: the customer it signs in, or `None` if it is
    /// unknown, expired or used already.
    pub fn use_sign_in(&mut self, token: &str, now: OffsetDateTime) -> anyhow::Result<Option<i64>> {
        let token_sha256 = sha256_hex(token);
        self.write(|tx| {
            let customer = tx
                .prepare_cached(
                    "UPDATE sign_in_links SET used_at = ?2 WHERE token_sha256 = ?1 \
                     AND used_at IS NULL AND expires_at > ?2 RETURNING customer_id",
                )?
                .query_row(params![token_sha256, to_db(now)], |row| row.get(0))
                .optional()?;
            Ok(customer)
        })
        .context("cannot use a sign-in link")
    }

    /// Whether the sign-in link with `token` can still be used.
    pub fn sign_in_is_valid(&self, token: &str, now: OffsetDateTime) -> anyhow::Result<bool> {
        let token_sha256 = sha256_hex(token);
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT customer_id FROM sign_in_links WHERE token_sha256 = ?1 \
                 AND used_at IS NULL AND expires_at > ?2",
            )?
            .query_row(params![token_sha256, to_db(now)], |row| row.get(0))
            .optional()
            .context("cannot look up a sign-in link")?;
        Ok(found.is_some())
    }

    /// A customer's orders, newest first.
    pub fn customer_orders(&self, customer_id: i64) -> anyhow::Result<Vec<CustomerOrder>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, company, tier, status, amount_cents, currency, status_token, created_at \
             FROM orders WHERE customer_id = ?1 ORDER BY created_at DESC, id DESC",
        )?;
        let rows = stmt.query_map([customer_id], |row| {
            Ok(CustomerOrder {
                id: row.get(0)?,
                company: row.get(1)?,
                tier: parse_col(row, 2)?,
                status: parse_col(row, 3)?,
                amount_cents: row.get(4)?,
                currency: row.get(5)?,
                status_token: row.get(6)?,
                created_at: from_db(row.get(7)?)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
            .with_context(|| format!("cannot read the orders of customer {customer_id}"))
    }
}
