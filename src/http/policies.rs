//! The policy pages: terms, privacy and refund policy. Their data comes from the
//! configuration, so the refund rule a page states is the rule `order::step` applies.

use serde_json::json;

use super::Response;
use super::page::{base_of, refund_rule, render};
use super::site::Site;
use crate::config::Config;
use crate::method::Method;
use crate::money;

/// The page for `name` (`terms`, `privacy` or `refund-policy`), with `method`'s tiers.
pub fn page(config: &Config, method: &Method, site: &Site, name: &str) -> anyhow::Result<Response> {
    let title = match name {
        "terms" => "Terms of service",
        "privacy" => "Privacy notice",
        _ => "Refund policy",
    };
    let tiers: Vec<_> = method
        .tiers
        .iter()
        .map(|tier| {
            json!({
                "title": tier.name,
                "price": money::format(tier.price, &method.currency),
                "description": tier.description,
            })
        })
        .collect();
    let mut data = base_of(config, method, title);
    data["legal_name"] = json!(config.business_name);
    data["site"] = json!(config.public_url);
    data["tiers"] = json!(tiers);
    data["refund_rule"] = json!(refund_rule(config));
    data["window_days"] = json!(config.policy.refund_window.whole_days());
    data["auto_approve"] = json!(config.policy.auto_approve_refunds);
    data["retention"] = json!(retention(config));
    data["invoices"] = json!(config.invoices.is_some());
    render(site, 200, name, data)
}

fn retention(config: &Config) -> String {
    match config.retention {
        Some(after) => format!(
            "Your answers and your report are erased {} days after you order; after that the \
             report can no longer be downloaded.",
            after.whole_days()
        ),
        None => "Your answers and your report are kept so that you can download the report \
                 again, until you ask us to erase them."
            .to_owned(),
    }
}

/// Renders every policy page as `serve` would: a template that does not compile, or that
/// names a value compass does not give it, is an error here rather than a 500 for a
/// customer. Returns the pages the operator's folder replaced.
pub fn check(config: &Config, method: &Method) -> anyhow::Result<Vec<&'static str>> {
    let site = Site::new(config)?;
    let mut own = Vec::new();
    for (name, _) in crate::pages::POLICIES {
        page(config, method, &site, name)?;
        if config.policies_dir.join(format!("{name}.hbs")).exists() {
            own.push(name);
        }
    }
    Ok(own)
}
