//! What the handlers build their answers with: the data every page starts from, rendering,
//! the message, not-found and failure pages, the order a status token opens, and the refund
//! rule as the pages state it. Handlers import this; it imports no handler and no router.

use serde_json::json;

use super::site::Site;
use super::{Request, Response};
use crate::app::App;
use crate::config::Config;
use crate::db::StoredOrder;
use crate::method::Method;

/// The page every page is built from.
/// What every page's layout shows: the title, the brand's name (and whether it has a logo,
/// served at `/assets/logo`) and where to write.
pub(super) fn base(app: &App, title: &str) -> serde_json::Value {
    base_of(&app.config, &app.method, title)
}

/// [`base`] from the parts.
pub(super) fn base_of(config: &Config, method: &Method, title: &str) -> serde_json::Value {
    json!({
        "title": title,
        "business": method.display_name(&config.business_name),
        "logo": method.brand.logo.is_some(),
        "support_email": config.support_email,
    })
}

pub(super) fn render(
    site: &Site,
    status: u16,
    page: &str,
    data: serde_json::Value,
) -> anyhow::Result<Response> {
    Ok(Response::html(status, site.pages.render_value(page, data)?))
}

pub(super) fn message(app: &App, site: &Site, status: u16, heading: &str, text: &str) -> Response {
    let mut data = base(app, heading);
    data["heading"] = json!(heading);
    data["message"] = json!(text);
    render(site, status, "message", data).unwrap_or_else(|_| Response::text(status, text))
}

pub(super) fn not_found(app: &App, site: &Site) -> Response {
    message(
        app,
        site,
        404,
        "Not found",
        "There is nothing at this address. If you followed a link from an email, check that \
         it was copied whole.",
    )
}

pub(super) fn wants_json(req: &Request) -> bool {
    req.header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"))
}

/// The page for a request that failed on our side.
pub(super) fn failure(app: &App, site: &Site) -> Response {
    message(
        app,
        site,
        500,
        "Something went wrong",
        "Please try again in a minute.",
    )
}

/// Status tokens are 43 URL-safe base64 characters; anything else is not looked up.
pub(super) fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The order a status token opens.
pub(super) fn order_by_token(app: &App, token: &str) -> anyhow::Result<Option<StoredOrder>> {
    if !plausible_token(token) {
        return Ok(None);
    }
    app.db.order_by_token(token)
}

/// The refund rule in one or two sentences, as the status page and the policies state it.
pub fn refund_rule(config: &Config) -> String {
    let policy = &config.policy;
    if policy.auto_approve_refunds {
        format!(
            "Within {} days of payment, before you download the report, your first refund goes \
             through at once. Any other request is reviewed by a person, usually within one \
             business day.",
            policy.refund_window.whole_days()
        )
    } else {
        "Every refund request is reviewed by a person, usually within one business day.".to_owned()
    }
}

/// A private page: never cached, and its address never sent on as a referrer.
pub(super) fn no_store(mut response: Response) -> Response {
    response
        .headers
        .push(("Cache-Control", "no-store".to_owned()));
    response
        .headers
        .push(("Referrer-Policy", "no-referrer".to_owned()));
    response
}
