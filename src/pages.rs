//! The customer-facing pages: handlebars templates embedded in the binary, rendered with HTML
//! escaping on (`{{x}}` escapes; nothing uses triple braces), in strict mode so a misspelt
//! variable is an error, not an empty string.
//!
//! The policy pages (terms, privacy, refund policy) are the operator's to rewrite: a file of
//! the same name in the configured folder replaces the built-in page, under the same rules.

use std::path::Path;

use anyhow::Context;
use handlebars::Handlebars;
use serde::Serialize;

/// The pages and their shared layout.
#[derive(Debug)]
pub struct Pages {
    registry: Handlebars<'static>,
}

const TEMPLATES: [(&str, &str); 9] = [
    ("layout", include_str!("../templates/pages/layout.hbs")),
    ("intake", include_str!("../templates/pages/intake.hbs")),
    ("question", include_str!("../templates/pages/question.hbs")),
    ("payment", include_str!("../templates/pages/payment.hbs")),
    ("message", include_str!("../templates/pages/message.hbs")),
    ("status", include_str!("../templates/pages/status.hbs")),
    ("my", include_str!("../templates/pages/my.hbs")),
    ("sign_in", include_str!("../templates/pages/sign_in.hbs")),
    (
        "my_orders",
        include_str!("../templates/pages/my_orders.hbs"),
    ),
];

/// The policy pages, by route: the built-in text of each, which names the configured business
/// and states the configured refund rule.
pub const POLICIES: [(&str, &str); 3] = [
    ("terms", include_str!("../templates/policies/terms.hbs")),
    ("privacy", include_str!("../templates/policies/privacy.hbs")),
    (
        "refund-policy",
        include_str!("../templates/policies/refund-policy.hbs"),
    ),
];

/// The stylesheet every page links.
pub const SITE_CSS: &str = include_str!("../templates/assets/site.css");
/// The payment page's script (Stripe Payment Element).
pub const PAY_JS: &str = include_str!("../templates/assets/pay.js");
/// The intake form's script: asks a conditional question only when its condition holds.
pub const INTAKE_JS: &str = include_str!("../templates/assets/intake.js");
/// The status page's script: polls the order's state while work is pending.
pub const STATUS_JS: &str = include_str!("../templates/assets/status.js");

impl Pages {
    /// Compiles the embedded templates, with the built-in policy pages.
    pub fn new() -> anyhow::Result<Pages> {
        Pages::with_policies(None)
    }

    /// Compiles the embedded templates; a policy page found in `policies` as `{name}.hbs`
    /// replaces the built-in one.
    pub fn with_policies(policies: Option<&Path>) -> anyhow::Result<Pages> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.set_prevent_indent(true);
        for (name, text) in TEMPLATES {
            registry
                .register_template_string(name, text)
                .with_context(|| format!("template {name} does not compile"))?;
        }
        for (name, builtin) in POLICIES {
            let own = policies.map(|dir| dir.join(format!("{name}.hbs")));
            match own.filter(|path| path.exists()) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    registry
                        .register_template_string(name, text)
                        .with_context(|| format!("{} does not compile", path.display()))?;
                }
                None => registry
                    .register_template_string(name, builtin)
                    .with_context(|| format!("policy page {name} does not compile"))?,
            }
        }
        Ok(Pages { registry })
    }

    /// Renders page `name` with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> anyhow::Result<String> {
        self.registry
            .render(name, data)
            .with_context(|| format!("cannot render page {name}"))
    }

    /// `render`, taking the data as it is: no copy of it is made for the template.
    pub fn render_value(&self, name: &str, data: serde_json::Value) -> anyhow::Result<String> {
        self.registry
            .render_with_context(name, &handlebars::Context::from(data))
            .with_context(|| format!("cannot render page {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_in_pages() {
        let pages = Pages::new().expect("templates compile");
        let html = pages
            .render(
                "message",
                &serde_json::json!({
                    "title": "t", "business": "B&B <Ltd>", "support_email": "a@b.co",
                    "heading": "<script>alert(1)</script>", "message": "\" onload=\"x",
                }),
            )
            .expect("renders");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("B&amp;B &lt;Ltd&gt;"));
        assert!(html.contains("&quot; onload&#x3D;&quot;x"));
        assert!(!html.contains("<script>alert"));
    }

    #[test]
    fn a_missing_value_is_an_error_not_an_empty_string() {
        let pages = Pages::new().expect("templates compile");
        assert!(pages.render("message", &serde_json::json!({})).is_err());
    }
}
