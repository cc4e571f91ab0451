//! The tax of a sale, in whole cents and exact integer arithmetic: a rate is kept in basis
//! points (19 % is 1900), every division rounds half up, and the parts always add up.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::country;

/// A tax rate in hundredths of a percent: `Rate(1900)` is 19 %.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(pub u32);

impl Rate {
    /// Reads "19", "8.1", "5.5 %" or "0": a percentage below 100 with at most two decimals.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad =
            || format!("`{text}` is not a tax rate: write a percentage like \"19\" or \"8.1\"");
        let digits = text.trim().trim_end_matches('%').trim();
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || whole.len() > 2
            || fraction.len() > 2
            || !whole
                .chars()
                .chain(fraction.chars())
                .all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: u32 = whole.parse().map_err(|_| bad())?;
        let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        Ok(Rate(whole * 100 + fraction))
    }
}

impl fmt::Display for Rate {
    /// "19 %", "8.1 %", "0 %".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole} %"),
            h if h % 10 == 0 => write!(f, "{whole}.{} %", h / 10),
            h => write!(f, "{whole}.{h:02} %"),
        }
    }
}

/// How a sale is taxed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// The seller charges tax at the sale's rate (which may be 0).
    Taxed,
    /// A business buyer in another EU country accounts for the VAT: none is charged.
    ReverseCharge,
}

impl Treatment {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Treatment::Taxed => "taxed",
            Treatment::ReverseCharge => "reverse_charge",
        }
    }
}

/// The operator's tax rules, from `[invoices]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxRules {
    /// Where the seller is registered (ISO 3166 alpha-2).
    pub seller_country: String,
    /// Whether the tiers' prices include the tax (what a consumer pays) or exclude it.
    pub prices_include_tax: bool,
    /// The rate where no country's own applies.
    pub rate: Rate,
    /// A rate per buyer country (alpha-2), where it differs.
    pub rates: BTreeMap<String, Rate>,
    /// Whether a business buyer with a VAT id in another EU country pays no VAT.
    pub reverse_charge: bool,
}

/// What a sale comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    pub net_cents: i64,
    pub tax_cents: i64,
    /// What the customer pays: net plus tax.
    pub gross_cents: i64,
    pub rate: Rate,
    pub treatment: Treatment,
}

impl TaxRules {
    /// Whether a buyer in `country` with a checked VAT id (`has_tax_id`) is a reverse-charge
    /// sale: seller and buyer in two different EU countries.
    pub fn is_reverse_charge(&self, country: &str, has_tax_id: bool) -> bool {
        self.reverse_charge
            && has_tax_id
            && country != self.seller_country
            && country::is_eu(country)
            && country::is_eu(&self.seller_country)
    }

    /// The rate for a buyer in `country` (`None`: not known, the seller's own).
    pub fn rate_for(&self, country: Option<&str>) -> Rate {
        country
            .and_then(|c| self.rates.get(c))
            .copied()
            .unwrap_or(self.rate)
    }

    /// The sale of something priced `price_cents` to a buyer in `country` (if known) who gave
    /// a checked VAT id or not. With prices that include tax, a reverse-charge buyer pays the
    /// price less the tax a consumer in their country would pay.
    pub fn sale(&self, price_cents: i64, country: Option<&str>, has_tax_id: bool) -> Sale {
        let rate = self.rate_for(country);
        let net_of_price = |price: i64| {
            if self.prices_include_tax {
                price - share(price, rate.0.into(), 10_000 + i64::from(rate.0))
            } else {
                price
            }
        };
        if country.is_some_and(|c| self.is_reverse_charge(c, has_tax_id)) {
            let net = net_of_price(price_cents);
            return Sale {
                net_cents: net,
                tax_cents: 0,
                gross_cents: net,
                rate: Rate(0),
                treatment: Treatment::ReverseCharge,
            };
        }
        let net = net_of_price(price_cents);
        let tax = if self.prices_include_tax {
            price_cents - net
        } else {
            share(net, rate.0.into(), 10_000)
        };
        Sale {
            net_cents: net,
            tax_cents: tax,
            gross_cents: net + tax,
            rate,
            treatment: Treatment::Taxed,
        }
    }
}

/// `amount * numerator / denominator`, rounded half up (amounts are never negative).
pub fn share(amount: i64, numerator: i64, denominator: i64) -> i64 {
    let exact = i128::from(amount) * i128::from(numerator);
    let denominator = i128::from(denominator.max(1));
    i64::try_from((2 * exact + denominator) / (2 * denominator)).unwrap_or(i64::MAX)
}

/// Net and tax of a credit note for `refund_cents` of a sale, when `credited_cents` (gross)
/// of it were credited before with `credited_tax_cents` of tax: the tax credited in all is
/// always the sale's tax in proportion, so the notes of a full refund add up to the invoice.
pub fn credit(
    sale: &Sale,
    credited_cents: i64,
    credited_tax_cents: i64,
    refund_cents: i64,
) -> (i64, i64) {
    let refund = refund_cents.min(sale.gross_cents - credited_cents).max(0);
    let tax_after = share(sale.tax_cents, credited_cents + refund, sale.gross_cents);
    let tax = (tax_after - credited_tax_cents).clamp(0, refund);
    (refund - tax, tax)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(include: bool) -> TaxRules {
        TaxRules {
            seller_country: "IE".into(),
            prices_include_tax: include,
            rate: Rate(2300),
            rates: BTreeMap::from([("DE".into(), Rate(1900)), ("US".into(), Rate(0))]),
            reverse_charge: true,
        }
    }

    #[test]
    fn rates_are_read_exactly_and_shown_as_people_write_them() {
        for (text, bp, shown) in [
            ("19", 1900, "19 %"),
            ("8.1", 810, "8.1 %"),
            ("5.5 %", 550, "5.5 %"),
            ("0", 0, "0 %"),
            ("2.25", 225, "2.25 %"),
        ] {
            let rate = Rate::parse(text).expect(text);
            assert_eq!(rate, Rate(bp), "{text}");
            assert_eq!(rate.to_string(), shown);
        }
        for bad in ["", "100", "-1", "1.234", "abc", ".5", "19,5"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_consumer_pays_the_price_with_the_tax_of_their_country_inside_or_on_top() {
        let inside = rules(true).sale(49_900, Some("DE"), false);
        assert_eq!(
            (
                inside.net_cents,
                inside.tax_cents,
                inside.gross_cents,
                inside.rate
            ),
            (41_933, 7_967, 49_900, Rate(1900))
        );
        let on_top = rules(false).sale(49_900, Some("DE"), false);
        assert_eq!(
            (on_top.net_cents, on_top.tax_cents, on_top.gross_cents),
            (49_900, 9_481, 59_381)
        );
        let unknown = rules(false).sale(10_000, None, false);
        assert_eq!((unknown.tax_cents, unknown.rate), (2_300, Rate(2300)));
        assert_eq!(rules(true).sale(10_000, Some("US"), true).tax_cents, 0);
    }

    #[test]
    fn a_business_in_another_eu_country_with_a_vat_id_is_reverse_charged() {
        let sale = rules(false).sale(49_900, Some("DE"), true);
        assert_eq!(sale.treatment, Treatment::ReverseCharge);
        assert_eq!(
            (sale.net_cents, sale.tax_cents, sale.gross_cents),
            (49_900, 0, 49_900)
        );
        // Prices with tax inside: the buyer pays the price less the tax of their country.
        let inside = rules(true).sale(49_900, Some("DE"), true);
        assert_eq!((inside.net_cents, inside.gross_cents), (41_933, 41_933));
        // Same country, no VAT id, outside the EU: taxed.
        for (country, id) in [("IE", true), ("DE", false), ("GB", true), ("US", true)] {
            let sale = rules(false).sale(10_000, Some(country), id);
            assert_eq!(sale.treatment, Treatment::Taxed, "{country} {id}");
        }
        let mut off = rules(false);
        off.reverse_charge = false;
        assert_eq!(
            off.sale(10_000, Some("DE"), true).treatment,
            Treatment::Taxed
        );
    }

    #[test]
    fn credit_notes_of_a_whole_refund_add_up_to_the_invoice() {
        let sale = rules(true).sale(49_900, Some("DE"), false);
        let (net1, tax1) = credit(&sale, 0, 0, 10_001);
        assert_eq!(net1 + tax1, 10_001);
        let (net2, tax2) = credit(&sale, 10_001, tax1, 39_899);
        assert_eq!(net2 + tax2, 39_899);
        assert_eq!((net1 + net2, tax1 + tax2), (sale.net_cents, sale.tax_cents));
        // Never more than is left.
        assert_eq!(credit(&sale, 49_900, sale.tax_cents, 100), (0, 0));
    }
}
