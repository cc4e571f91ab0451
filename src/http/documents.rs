//! An order's invoice and credit notes for its customer: listed on the status page, in its
//! JSON and on "My orders", and downloaded at `/status/{token}/invoices/{number}.pdf`, where an
//! unknown number is the same 404 as any unknown path.

use serde_json::json;

use super::Response;
use super::page::{no_store, not_found, order_by_token};
use super::site::Site;
use crate::app::App;
use crate::db::Db;
use crate::money;

/// The order's documents as the customer's pages list them: title, number, date, amount and
/// where to download it.
pub fn listed(db: &Db, order_id: &str, token: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(db
        .documents_of(order_id)?
        .into_iter()
        .map(|doc| {
            json!({
                "title": doc.kind.title(),
                "kind": doc.kind.as_str(),
                "number": doc.number,
                "date": doc.issued_at.date().to_string(),
                "amount": money::format(doc.gross_cents, &doc.currency),
                "url": format!("/status/{token}/invoices/{}", doc.file_name()),
            })
        })
        .collect())
}

/// `GET /status/{token}/invoices/{number}.pdf`.
pub fn download(app: &mut App, site: &Site, token: &str, file: &str) -> anyhow::Result<Response> {
    let Some(order) = order_by_token(app, token)? else {
        return Ok(not_found(app, site));
    };
    let Some(number) = file.strip_suffix(".pdf") else {
        return Ok(not_found(app, site));
    };
    let Some(doc) = app.db.document(number)?.filter(|d| d.order_id == order.id) else {
        return Ok(not_found(app, site));
    };
    let pdf = crate::billing::pdf(app, &doc)?;
    Ok(no_store(Response {
        status: 200,
        headers: vec![
            ("Content-Type", "application/pdf".to_owned()),
            (
                "Content-Disposition",
                format!("attachment; filename=\"{}\"", doc.file_name()),
            ),
        ],
        body: pdf,
    }))
}
