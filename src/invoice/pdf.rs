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
    let what = format!("{} {}", doc.kind.title().to_lowercase(), doc.number);
    typeset::pdf(&typeset_document(doc, method, issuer)?, &what)
}

/// The laid-out pages of `doc`.
fn typeset_document(
    doc: &Document,
    method: &Method,
    issuer: &Issuer<'_>,
) -> anyhow::Result<typeset::PagedDocument> {
    let mut data = data(doc, method, issuer);
    let image = method.logo_image()?;
    if let Some((path, _)) = &image {
        data["logo"] = json!(path);
    }
    let what = format!("{} {}", doc.kind.title().to_lowercase(), doc.number);
    typeset::typeset(typeset::Job {
        what: &what,
        name: "invoice.typ",
        template: TEMPLATE,
        input: "document",
        data: &data,
        image,
    })
}

/// A made-up document of `kind` for a sale of `price_cents` under `rules` to `buyer`.
#[cfg(test)]
fn sample(
    kind: Kind,
    rules: &super::Rules,
    buyer: Option<Party>,
    tier: crate::order::Tier,
    price_cents: i64,
) -> Document {
    let at = time::macros::datetime!(2026-11-02 09:00 UTC);
    let terms = rules.terms(
        price_cents,
        buyer,
        super::Contact {
            name: "Sam Sample".into(),
            email: "sam@example.com".into(),
            company: "Sample Company Ltd".into(),
        },
    );
    let sale = terms.sale;
    Document {
        id: 0,
        kind,
        number: super::number(
            match kind {
                Kind::Invoice => &rules.invoice_prefix,
                Kind::CreditNote => &rules.credit_note_prefix,
            },
            2026,
            1,
        ),
        issued_at: at,
        order_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        terms,
        currency: "eur".into(),
        net_cents: sale.net_cents,
        tax_cents: sale.tax_cents,
        gross_cents: sale.gross_cents,
        corrects: (kind == Kind::CreditNote)
            .then(|| (super::number(&rules.invoice_prefix, 2026, 1), at)),
        paid_at: Some(at),
        payment_intent: Some("pi_3SampleSampleSample01".into()),
        tier,
        method_version: None,
        sha256: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use typst::layout::Abs;

    use super::*;
    use crate::invoice::{Rate, Rules, TaxRules};
    use crate::typeset::probe::{pages_text, text_past_the_edges};

    fn rules() -> Rules {
        Rules {
            seller: Party {
                name: "Compass Consulting Ltd".into(),
                address: "1 Main Street\nDublin D02 XY45".into(),
                country: "IE".into(),
                tax_id: Some("IE6388047V".into()),
            },
            tax: TaxRules {
                seller_country: "IE".into(),
                prices_include_tax: true,
                rate: Rate(2300),
                rates: BTreeMap::from([("DE".into(), Rate(1900))]),
                reverse_charge: true,
            },
            invoice_prefix: "INV".into(),
            credit_note_prefix: "CN".into(),
            reverse_charge_note: "Reverse charge: VAT to be accounted for by the recipient.".into(),
            tax_note: None,
            billing_required: false,
        }
    }

    fn issuer() -> Issuer<'static> {
        Issuer {
            support_email: "hello@example.com",
        }
    }

    fn german(tax_id: Option<&str>) -> Party {
        Party {
            name: "Analytical Engines GmbH".into(),
            address: "Musterstraße 1\n10115 Berlin".into(),
            country: "DE".into(),
            tax_id: tax_id.map(str::to_owned),
        }
    }

    #[test]
    fn an_invoice_prints_every_field_an_accountant_looks_for() {
        let method = Method::builtin();
        let tier = method.tiers[0].id.clone();
        let doc = sample(
            Kind::Invoice,
            &rules(),
            Some(german(Some("DE136695976"))),
            tier,
            49_900,
        );
        let pages = pages_text(&typeset_document(&doc, &method, &issuer()).expect("typesets"));
        assert_eq!(pages.len(), 1, "an invoice is one page");
        let text = pages.join(" ");
        for field in [
            "Invoice",
            "INV-2026-000001",
            "Date of issue",
            "2 November 2026",
            "Date of supply",
            "Compass Consulting Ltd",
            "1 Main Street",
            "Ireland",
            "IE6388047V",
            "Analytical Engines GmbH",
            "10115 Berlin",
            "Germany",
            "DE136695976",
            "Sam Sample",
            "sam@example.com",
            "Sample Company Ltd",
            "€419.33",
            "0 %",
            "Total (EUR)",
            "Reverse charge: VAT to be accounted for by the recipient.",
            "pi_3SampleSampleSample01",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        ] {
            assert!(text.contains(field), "{field} missing from: {text}");
        }
        render(&doc, &method, &issuer()).expect("exports as PDF/UA-1");
    }

    #[test]
    fn a_consumer_is_taxed_and_a_credit_note_names_its_invoice_with_negative_amounts() {
        let method = Method::builtin();
        let tier = method.tiers[0].id.clone();
        let doc = sample(
            Kind::Invoice,
            &rules(),
            Some(german(None)),
            tier.clone(),
            49_900,
        );
        let text =
            pages_text(&typeset_document(&doc, &method, &issuer()).expect("typesets")).join(" ");
        for field in ["19 %", "€419.33", "€79.67", "€499.00"] {
            assert!(text.contains(field), "{field} missing from: {text}");
        }
        assert!(!text.contains("Reverse charge"), "{text}");
        let note = sample(Kind::CreditNote, &rules(), None, tier, 49_900);
        let text =
            pages_text(&typeset_document(&note, &method, &issuer()).expect("typesets")).join(" ");
        for field in [
            "Credit note",
            "CN-2026-000001",
            "Credits invoice",
            "INV-2026-000001",
            "−€499.00",
            "23 %",
        ] {
            assert!(text.contains(field), "{field} missing from: {text}");
        }
    }

    #[test]
    fn the_longest_billing_details_stay_on_the_page_and_stay_text() {
        let method = Method::builtin();
        let tier = method.tiers[0].id.clone();
        let buyer = Party {
            name: format!("#set page(fill: red) {}", "W".repeat(180)),
            address: "A long street name with a number 12345 and more words\n".repeat(9),
            country: "DE".into(),
            tax_id: Some("DE136695976".into()),
        };
        let mut doc = sample(Kind::Invoice, &rules(), Some(buyer), tier, 49_900);
        doc.terms.contact.company = "C".repeat(200);
        doc.terms.contact.email = format!("{}@example.com", "e".repeat(60));
        let document = typeset_document(&doc, &method, &issuer()).expect("typesets");
        let past = text_past_the_edges(&document, Abs::cm(1.5));
        assert!(past.is_empty(), "{past:#?}");
        let pages = pages_text(&document);
        assert!(pages[0].contains("#set page(fill: red)"), "shown as text");
        assert!(pages.len() <= 2, "{} pages", pages.len());
    }
}
