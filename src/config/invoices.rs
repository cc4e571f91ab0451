//! `[invoices]`: who the seller is, how sales are taxed and numbered, and whether the intake
//! form asks for billing details. Off unless `issue = true`; then every key is checked.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::non_empty;
use crate::invoice::{Party, Rate, Rules, TaxRules, country};

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawInvoices {
    issue: bool,
    seller_name: String,
    seller_address: String,
    seller_country: String,
    seller_tax_id: Option<String>,
    invoice_prefix: String,
    credit_note_prefix: String,
    prices_include_tax: bool,
    tax_rate: String,
    rates: BTreeMap<String, String>,
    reverse_charge: bool,
    reverse_charge_note: String,
    tax_note: Option<String>,
    billing_details: String,
}

impl Default for RawInvoices {
    fn default() -> Self {
        RawInvoices {
            issue: false,
            seller_name: String::new(),
            seller_address: String::new(),
            seller_country: String::new(),
            seller_tax_id: None,
            invoice_prefix: "INV".into(),
            credit_note_prefix: "CN".into(),
            prices_include_tax: true,
            tax_rate: "0".into(),
            rates: BTreeMap::new(),
            reverse_charge: true,
            reverse_charge_note: "Reverse charge: VAT to be accounted for by the recipient \
                                  (Article 196, Council Directive 2006/112/EC)."
                .into(),
            tax_note: None,
            billing_details: "optional".into(),
        }
    }
}

impl RawInvoices {
    /// The rules, or `None` when invoices are off.
    pub(super) fn check(self) -> anyhow::Result<Option<Rules>> {
        if !self.issue {
            return Ok(None);
        }
        non_empty("invoices.seller_name", &self.seller_name)?;
        non_empty("invoices.seller_address", &self.seller_address)?;
        let seller_country = country::code(&self.seller_country).with_context(|| {
            format!(
                "invoices.seller_country must be a two-letter country code like IE or DE, got `{}`",
                self.seller_country
            )
        })?;
        let seller_tax_id = self
            .seller_tax_id
            .filter(|id| !id.trim().is_empty())
            .map(|id| {
                country::check_tax_id(&seller_country, &id)
                    .map_err(|why| anyhow::anyhow!("invoices.seller_tax_id: {why}"))
            })
            .transpose()?;
        for (key, prefix) in [
            ("invoices.invoice_prefix", &self.invoice_prefix),
            ("invoices.credit_note_prefix", &self.credit_note_prefix),
        ] {
            if prefix.is_empty()
                || prefix.len() > 12
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                bail!("{key} must be 1 to 12 capital letters or digits, like INV, got `{prefix}`");
            }
        }
        if self.invoice_prefix == self.credit_note_prefix {
            bail!(
                "invoices.credit_note_prefix must differ from invoices.invoice_prefix: the two \
                 run in separate sequences"
            );
        }
        let rate = Rate::parse(&self.tax_rate)
            .map_err(|why| anyhow::anyhow!("invoices.tax_rate: {why}"))?;
        let mut rates = BTreeMap::new();
        for (code, text) in &self.rates {
            let key = format!("invoices.rates.{code}");
            let code = country::code(code)
                .with_context(|| format!("{key}: `{code}` is not a two-letter country code"))?;
            let rate = Rate::parse(text).map_err(|why| anyhow::anyhow!("{key}: {why}"))?;
            rates.insert(code, rate);
        }
        non_empty("invoices.reverse_charge_note", &self.reverse_charge_note)?;
        // A reverse-charge invoice names both parties' VAT numbers.
        if self.reverse_charge && country::is_eu(&seller_country) && seller_tax_id.is_none() {
            bail!(
                "invoices.reverse_charge needs invoices.seller_tax_id (your VAT number): set \
                 it, or set reverse_charge = false if you are not registered for VAT"
            );
        }
        let billing_required = match self.billing_details.as_str() {
            "optional" => false,
            "required" => true,
            other => bail!(
                "invoices.billing_details must be \"optional\" or \"required\", got `{other}`"
            ),
        };
        Ok(Some(Rules {
            seller: Party {
                name: self.seller_name.trim().to_owned(),
                address: self.seller_address.trim().to_owned(),
                country: seller_country.clone(),
                tax_id: seller_tax_id,
            },
            tax: TaxRules {
                seller_country,
                prices_include_tax: self.prices_include_tax,
                rate,
                rates,
                reverse_charge: self.reverse_charge,
            },
            invoice_prefix: self.invoice_prefix,
            credit_note_prefix: self.credit_note_prefix,
            reverse_charge_note: self.reverse_charge_note,
            tax_note: self.tax_note.filter(|n| !n.trim().is_empty()),
            billing_required,
        }))
    }
}
