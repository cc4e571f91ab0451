//! The optional CAPTCHA on the intake form (Cloudflare Turnstile or hCaptcha): the widget's
//! answer is checked with the provider, server-side, before anything is stored. Both providers
//! take the same form (`secret`, `response`, `remoteip`) and answer `{"success": bool,
//! "error-codes": [...]}`. If the provider cannot be reached the form is refused, not waved
//! through: the person can send it again.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Captcha;

/// Checks the widget's `answer` with the provider.
pub fn verify(
    captcha: &Captcha,
    answer: Option<&str>,
    client: Option<IpAddr>,
) -> Result<(), String> {
    let answer = answer
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or("no CAPTCHA answer in the form")?;
    let secret = captcha.secret.get().map_err(|err| format!("{err:#}"))?;
    let client = client.map(|ip| ip.to_string()).unwrap_or_default();
    let mut form = vec![("secret", secret.expose()), ("response", answer)];
    if !client.is_empty() {
        form.push(("remoteip", client.as_str()));
    }
    let mut response = crate::retry::agent(Duration::from_secs(10))
        .post(&captcha.verify_url)
        .send_form(form)
        .map_err(|err| format!("cannot reach the CAPTCHA provider: {err}"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    let verdict: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| format!("the CAPTCHA provider answered {status} with no verdict"))?;
    if verdict["success"] == true {
        Ok(())
    } else {
        Err(format!(
            "the CAPTCHA provider said no: {}",
            verdict["error-codes"]
        ))
    }
}
