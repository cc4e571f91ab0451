//! What the customer bought, as the order keeps it: a tier's id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the customer bought: the id of one of the method's tiers (`starter`, `premium`, ...).
/// The method says what it is called, costs and holds; the order keeps only the id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tier(String);

impl Tier {
    /// The id, as stored and sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` is an id as methods write them (tiers, categories, questions, options):
    /// lower-case letters, digits and `_`, starting with a letter, at most 40.
    pub fn is_id(s: &str) -> bool {
        s.len() <= 40
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tier {
    type Err = String;

    /// An id: lower-case letters, digits and `_`, starting with a letter, at most 40.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if Tier::is_id(s) {
            Ok(Tier(s.to_owned()))
        } else {
            Err(format!(
                "tier `{s}` is not an id (lower-case letters, digits and _, starting with a letter)"
            ))
        }
    }
}

impl TryFrom<String> for Tier {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Tier> for String {
    fn from(tier: Tier) -> String {
        tier.0
    }
}
