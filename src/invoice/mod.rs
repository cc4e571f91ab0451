//! Invoices and credit notes. The buyer's billing details are checked at intake, and the terms
//! of the sale (seller, buyer, tax, numbering) are fixed with the order, so that what the
//! customer was shown is what the invoice says. `db` numbers an invoice in the transaction that
//! confirms the payment, and a credit note in the one that records a refund, each in its own
//! gapless sequence per year; `pdf.rs` typesets a document once, and `db` keeps those bytes
//! with their SHA-256 for good.

pub mod country;
pub mod pdf;
pub mod tax;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::method::FieldError;
use crate::method::questionnaire::text_problem;
pub use tax::{Rate, Sale, TaxRules, Treatment};

/// The intake form's billing fields.
pub const FIELDS: [&str; 4] = [
    "billing_name",
    "billing_address",
    "billing_country",
    "billing_tax_id",
];

const MAX_NAME: usize = 200;
const MAX_ADDRESS: usize = 500;

/// Who buys, as the invoice names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The legal name.
    pub name: String,
    /// The postal address, one line per line (without the country).
    pub address: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    /// The VAT or tax id, checked and written one way (`country::check_tax_id`).
    pub tax_id: Option<String>,
}

/// The operator's invoicing, from `[invoices]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Who sells (the seller's legal name, address, country and tax id).
    pub seller: Party,
    pub tax: TaxRules,
    /// Invoices are numbered `{prefix}-{year}-{number:06}`.
    pub invoice_prefix: String,
    pub credit_note_prefix: String,
    /// Printed on a reverse-charge invoice.
    pub reverse_charge_note: String,
    /// Printed on an invoice that charges no tax otherwise (an exemption the seller has).
    pub tax_note: Option<String>,
    /// Whether the intake form requires billing details.
    pub billing_required: bool,
}

/// Who placed the order, as the invoice names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub email: String,
    /// The company the report is about.
    pub company: String,
}

/// The terms of one order's sale, fixed when it is placed and kept with it (and with its
/// invoices when the customer is forgotten).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub seller: Party,
    pub contact: Contact,
    /// `None`: the customer gave no billing details (a consumer; the invoice names the
    /// contact and the company).
    pub buyer: Option<Party>,
    pub sale: Sale,
    pub invoice_prefix: String,
    pub credit_note_prefix: String,
    /// What the invoice must say of the tax (the reverse-charge note, an exemption).
    pub note: Option<String>,
}

impl Rules {
    /// The terms of selling something priced `price_cents` to `buyer`.
    pub fn terms(&self, price_cents: i64, buyer: Option<Party>, contact: Contact) -> Terms {
        let country = buyer.as_ref().map(|b| b.country.as_str());
        let has_tax_id = buyer.as_ref().is_some_and(|b| b.tax_id.is_some());
        let sale = self.tax.sale(price_cents, country, has_tax_id);
        let note = match sale.treatment {
            Treatment::ReverseCharge => Some(self.reverse_charge_note.clone()),
            Treatment::Taxed if sale.tax_cents == 0 => self.tax_note.clone(),
            Treatment::Taxed => None,
        };
        Terms {
            seller: self.seller.clone(),
            contact,
            buyer,
            sale,
            invoice_prefix: self.invoice_prefix.clone(),
            credit_note_prefix: self.credit_note_prefix.clone(),
            note,
        }
    }

    /// Takes the billing fields out of a submission and checks them: `None` when none was
    /// filled in and they are optional; every problem at once, by field.
    pub fn billing(
        &self,
        fields: &mut BTreeMap<String, String>,
    ) -> Result<Option<Party>, Vec<FieldError>> {
        let mut take = |name: &str| fields.remove(name).unwrap_or_default().trim().to_owned();
        let [name, address, country, tax_id] = FIELDS.map(&mut take);
        if !self.billing_required
            && [&name, &address, &country, &tax_id]
                .iter()
                .all(|v| v.is_empty())
        {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let mut error = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            })
        };
        for (field, value, label, max, multiline) in [
            (FIELDS[0], &name, "The legal name", MAX_NAME, false),
            (
                FIELDS[1],
                &address,
                "The billing address",
                MAX_ADDRESS,
                true,
            ),
        ] {
            if value.is_empty() {
                error(field, format!("{label} is required for an invoice"));
            } else if let Some(problem) = text_problem(value, max, multiline) {
                error(field, problem);
            }
        }
        let code = country::code(&country);
        if code.is_none() {
            error(
                FIELDS[2],
                if country.is_empty() {
                    "Choose the country of the billing address".to_owned()
                } else {
                    format!("`{country}` is not a country code like DE or GB")
                },
            );
        }
        let tax_id = match (&code, tax_id.is_empty()) {
            (_, true) => None,
            (Some(code), false) => match country::check_tax_id(code, &tax_id) {
                Ok(id) => Some(id),
                Err(problem) => {
                    error(FIELDS[3], problem);
                    None
                }
            },
            // The country is wrong already: its id cannot be checked.
            (None, false) => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Some(Party {
            name,
            address: address.replace("\r\n", "\n"),
            country: code.expect("checked above"),
            tax_id,
        }))
    }
}

/// Which of the two documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Invoice,
    CreditNote,
}

impl Kind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::CreditNote => "credit_note",
        }
    }

    /// As people read it.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Invoice => "Invoice",
            Kind::CreditNote => "Credit note",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "invoice" => Ok(Kind::Invoice),
            "credit_note" => Ok(Kind::CreditNote),
            other => Err(format!("unknown document kind `{other}`")),
        }
    }
}

/// An issued invoice or credit note, with what its PDF prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Its row.
    pub id: i64,
    pub kind: Kind,
    pub number: String,
    pub issued_at: OffsetDateTime,
    pub order_id: String,
    pub terms: Terms,
    /// Lower-case ISO 4217.
    pub currency: String,
    pub net_cents: i64,
    pub tax_cents: i64,
    pub gross_cents: i64,
    /// A credit note's invoice: its number and date.
    pub corrects: Option<(String, OffsetDateTime)>,
    /// When the report was paid for: the date of supply.
    pub paid_at: Option<OffsetDateTime>,
    /// The PaymentIntent that paid the order.
    pub payment_intent: Option<String>,
    pub tier: crate::order::Tier,
    /// The method the order was sold with (for the tier's name and the brand).
    pub method_version: Option<String>,
    /// The SHA-256 of the PDF as issued, once it is stored.
    pub sha256: Option<String>,
}

impl Document {
    /// The file name customers and the accountant see: `INV-2026-000123.pdf`.
    pub fn file_name(&self) -> String {
        format!("{}.pdf", self.number)
    }
}

/// A document's number: `INV-2026-000123`.
pub fn number(prefix: &str, year: i32, seq: i64) -> String {
    format!("{prefix}-{year}-{seq:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(required: bool) -> Rules {
        Rules {
            seller: Party {
                name: "Seller Ltd".into(),
                address: "1 Main Street\nDublin".into(),
                country: "IE".into(),
                tax_id: Some("IE6388047V".into()),
            },
            tax: TaxRules {
                seller_country: "IE".into(),
                prices_include_tax: false,
                rate: Rate(2300),
                rates: BTreeMap::new(),
                reverse_charge: true,
            },
            invoice_prefix: "INV".into(),
            credit_note_prefix: "CN".into(),
            reverse_charge_note: "Reverse charge".into(),
            tax_note: None,
            billing_required: required,
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn billing_details_are_optional_unless_required_and_leave_the_other_fields() {
        let mut given = fields(&[("company", "Acme")]);
        assert_eq!(rules(false).billing(&mut given), Ok(None));
        assert_eq!(given.len(), 1);
        let errors = rules(true).billing(&mut given).expect_err("required");
        let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            named,
            ["billing_name", "billing_address", "billing_country"]
        );
    }

    #[test]
    fn an_invalid_vat_id_is_refused_by_its_field_and_a_valid_one_reverse_charged() {
        let r = rules(false);
        let mut bad = fields(&[
            ("billing_name", "Acme GmbH"),
            ("billing_address", "Hauptstr. 1\r\n10115 Berlin"),
            ("billing_country", "de"),
            ("billing_tax_id", "DE12345678"),
        ]);
        let errors = r.billing(&mut bad).expect_err("bad VAT id");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "billing_tax_id");
        assert!(
            errors[0].message.contains("Germany"),
            "{}",
            errors[0].message
        );

        let mut good = fields(&[
            ("billing_name", "Acme GmbH"),
            ("billing_address", "Hauptstr. 1\r\n10115 Berlin"),
            ("billing_country", "de"),
            ("billing_tax_id", "DE 136 695 976"),
        ]);
        let buyer = r.billing(&mut good).expect("valid").expect("given");
        assert_eq!(buyer.country, "DE");
        assert_eq!(buyer.address, "Hauptstr. 1\n10115 Berlin");
        assert_eq!(buyer.tax_id.as_deref(), Some("DE136695976"));
        let contact = Contact {
            name: "Ada".into(),
            email: "ada@example.com".into(),
            company: "Acme".into(),
        };
        let terms = r.terms(49_900, Some(buyer), contact.clone());
        assert_eq!(terms.sale.treatment, Treatment::ReverseCharge);
        assert_eq!(terms.note.as_deref(), Some("Reverse charge"));
        assert_eq!(r.terms(49_900, None, contact).sale.tax_cents, 11_477);
    }

    #[test]
    fn numbers_run_per_year_with_the_prefix() {
        assert_eq!(number("INV", 2026, 123), "INV-2026-000123");
        assert_eq!(number("CN", 2027, 1), "CN-2027-000001");
    }
}
