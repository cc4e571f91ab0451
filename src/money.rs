//! Amounts of money as people read them. Amounts are always whole numbers of the currency's
//! smallest unit (cents), as Stripe counts them; no floating point touches money.

/// Currencies without a minor unit, where Stripe's amount is already whole units.
const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// `149.00`, `-10.00`, `4900` (yen): the amount in the currency's units, for spreadsheets.
pub fn decimal(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}{}", units(amount.unsigned_abs(), currency))
}

/// The digits of `abs` in the currency's units.
fn units(abs: u64, currency: &str) -> String {
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        abs.to_string()
    } else {
        format!("{}.{:02}", abs / 100, abs % 100)
    }
}

/// `$149.00`, `€49.00`, `¥4900`, `149.00 CHF`.
pub fn format(amount: i64, currency: &str) -> String {
    let currency = currency.to_ascii_lowercase();
    let sign = if amount < 0 { "-" } else { "" };
    let number = units(amount.unsigned_abs(), &currency);
    match currency.as_str() {
        "usd" => format!("{sign}${number}"),
        "eur" => format!("{sign}€{number}"),
        "gbp" => format!("{sign}£{number}"),
        "jpy" => format!("{sign}¥{number}"),
        other => format!("{sign}{number} {}", other.to_ascii_uppercase()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_are_the_units_without_the_symbol() {
        assert_eq!(super::decimal(49_900, "usd"), "499.00");
        assert_eq!(super::decimal(-1_000, "EUR"), "-10.00");
        assert_eq!(super::decimal(4_900, "jpy"), "4900");
        assert_eq!(super::decimal(5, "gbp"), "0.05");
    }

    #[test]
    fn amounts_read_as_money() {
        assert_eq!(super::format(14_900, "usd"), "$149.00");
        assert_eq!(super::format(4_905, "EUR"), "€49.05");
        assert_eq!(super::format(7, "gbp"), "£0.07");
        assert_eq!(super::format(4_900, "jpy"), "¥4900");
        assert_eq!(super::format(39_900, "chf"), "399.00 CHF");
        assert_eq!(super::format(-150, "usd"), "-$1.50");
    }
}
