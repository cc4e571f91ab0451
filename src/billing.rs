//! The invoices' and credit notes' PDFs: each rendered once, in the brand of the method its
//! order was sold with, and stored for good (`Db::store_document_pdf` keeps the first). `process`
//! renders what was issued since its last pass before it sends the emails that carry them; a
//! download renders a document that no pass has reached yet.

use anyhow::Context;

use crate::app::App;
use crate::invoice::Document;
use crate::invoice::pdf::{Issuer, render};

/// The PDF of `doc` as issued: the stored one, or rendered and stored now.
pub fn pdf(app: &mut App, doc: &Document) -> anyhow::Result<Vec<u8>> {
    if let Some(pdf) = app.db.document_pdf(doc.id)? {
        return Ok(pdf);
    }
    let method = app.method_of(doc.method_version.as_deref())?;
    let issuer = Issuer {
        support_email: &app.config.support_email,
    };
    let bytes =
        render(doc, &method, &issuer).with_context(|| format!("cannot render {}", doc.number))?;
    app.db.store_document_pdf(doc.id, &bytes)
}

/// Renders and stores the documents issued without their PDF yet (up to 500 a pass); how
/// many. One that does not render is logged and left for the next pass: its email waits.
pub fn render_pending(app: &mut App) -> anyhow::Result<usize> {
    let mut rendered = 0;
    for doc in app.db.unrendered_documents(500)? {
        match pdf(app, &doc) {
            Ok(_) => rendered += 1,
            Err(err) => tracing::error!(order = %doc.order_id, "{err:#}"),
        }
    }
    Ok(rendered)
}
