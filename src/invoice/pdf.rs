//! An invoice or credit note as a PDF, typeset from the built-in `templates/invoice/invoice.typ`
//! in the brand of the method the order was sold with. Rendered once: `db` keeps the bytes.

use serde_json::json;

use super::{Document, Kind, Party, country};
use crate::method::Method;
use crate::{clock, money, typeset};

const TEMPLATE: &str = include_str!("../../templates/invoice/invoice.typ");

/// Who issues the documents: the business's support address, printed for questions.
pub struct Issuer<'a> {
    pub support_email: &'a str,
}

/// What the template prints, every amount formatted (a credit note's as negative).
pub fn data(doc: &Document, method: &Method, issuer: &Issuer<'_>) -> serde_json::Value {
    let sign = match doc.kind {
        Kind::Invoice => "",
        Kind::CreditNote => "−",
    };
    let date =
        |at: time::OffsetDateTime| clock::long_date(at.to_offset(time::UtcOffset::UTC).date());
    let amount = |cents: i64| format!("{sign}{}", money::format(cents, &doc.currency));
    let party = |p: &Party| {
        json!({
            "name": p.name,
            "address": p.address,
            "country": country::name(&p.country).unwrap_or(&p.country),
            "tax_id": p.tax_id,
        })
    };
    let buyer = match &doc.terms.buyer {
        Some(buyer) => party(buyer),
        None => json!({
            "name": doc.terms.contact.company,
            "address": null,
            "country": null,
            "tax_id": null,
        }),
    };
    let what = format!(
        "{} {} report for {}",
        method.tier_name(&doc.tier),
        method.assessment.name,
        doc.terms.contact.company
    );
    let line = match doc.kind {
        Kind::Invoice => what,
        Kind::CreditNote => format!("Refund: {what}"),
    };
    let payment_line = match doc.kind {
        Kind::Invoice => "Paid in full by card through Stripe. Nothing is due.",
        Kind::CreditNote => "Refunded to the card that paid, through Stripe.",
    };
    json!({
        "kind": doc.kind.as_str(),
        "title": doc.kind.title(),
        "number": doc.number,
        "issued": date(doc.issued_at),
        "supplied": doc.paid_at.filter(|_| doc.kind == Kind::Invoice).map(date),
        "corrects": doc.corrects.as_ref().map(|(number, issued)| json!({
            "number": number,
            "issued": date(*issued),
        })),
        "order": doc.order_id,
        "seller": party(&doc.terms.seller),
        "buyer": buyer,
        "contact": { "name": doc.terms.contact.name, "email": doc.terms.contact.email },
        "line": line,
        "net": amount(doc.net_cents),
        "rate": doc.terms.sale.rate.to_string(),
        "tax": amount(doc.tax_cents),
        "total": amount(doc.gross_cents),
        "currency": doc.currency.to_ascii_uppercase(),
        "note": doc.terms.note,
        "payment_line": payment_line,
        "reference": doc.payment_intent,
        "support_email": issuer.support_email,
        "primary": method.brand.primary(),
        "logo": null,
    })
}

/// Typesets `doc` in `method`'s brand into PDF bytes.
pub fn render(doc: &Document, method: &Method, issuer: &Issuer<'_>) -> anyhow::Result<Vec<u8>> {
    let mut data = data(doc, method, issuer);
    let image = method.logo_image()?;
    if let Some((path, _)) = &image {
        data["logo"] = json!(path);
    }
    let what = format!("{} {}", doc.kind.title().to_lowercase(), doc.number);
    let document = typeset::typeset(typeset::Job {
        what: &what,
        name: "invoice.typ",
        template: TEMPLATE,
        input: "document",
        data: &data,
        image,
    })?;
    typeset::pdf(&document, &what)
}
