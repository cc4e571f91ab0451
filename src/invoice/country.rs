//! Countries as ISO 3166 alpha-2 codes, which of them are in the EU, and the check of a
//! buyer's VAT or tax id: for the EU countries and the UK, the country's format (by
//! `vat_id_validator`, with the country's prefix added when it was left out); elsewhere any
//! short printable id.

use isocountry::CountryCode;

/// The EU member states, as ISO codes (Greece's VAT prefix is EL, its ISO code GR).
const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The longest tax id taken where there is no format to check.
const MAX_OTHER_ID: usize = 40;

/// Whether `code` (alpha-2) is an EU member state.
pub fn is_eu(code: &str) -> bool {
    EU.contains(&code)
}

/// The country's English name, if `code` is an ISO 3166 alpha-2 code.
pub fn name(code: &str) -> Option<&'static str> {
    CountryCode::for_alpha2(code).ok().map(|c| c.name())
}

/// The code of a country as typed ("de", " DE "), if it is one.
pub fn code(typed: &str) -> Option<String> {
    let code = typed.trim().to_ascii_uppercase();
    name(&code).map(|_| code)
}

/// Every country, by name: for the billing form's choice.
pub fn all() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = CountryCode::iter()
        .map(|c| (c.alpha2(), c.name()))
        .collect();
    all.sort_by_key(|(_, name)| *name);
    all
}

/// The VAT prefix of an EU country or the UK.
fn vat_prefix(code: &str) -> Option<&'static str> {
    match code {
        "GR" => Some("EL"),
        "GB" => Some("GB"),
        code if is_eu(code) => EU.iter().find(|c| **c == code).copied(),
        _ => None,
    }
}

/// A buyer's tax id for `country`, checked and written the one way (upper case, no spaces,
/// dots or dashes, the VAT prefix in front), or what is wrong with it, for the form.
pub fn check_tax_id(country: &str, typed: &str) -> Result<String, String> {
    let id: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '/'))
        .collect::<String>()
        .to_ascii_uppercase();
    let Some(prefix) = vat_prefix(country) else {
        if id.is_empty()
            || id.chars().count() > MAX_OTHER_ID
            || !id.chars().all(|c| c.is_alphanumeric())
        {
            return Err(format!(
                "Enter the tax id as it is registered: letters and digits, at most {MAX_OTHER_ID}"
            ));
        }
        return Ok(id);
    };
    let id = if id.starts_with(prefix) {
        id
    } else {
        format!("{prefix}{id}")
    };
    if vat_id_validator::check_vat_by_country(&id, country).is_valid_format {
        Ok(id)
    } else {
        let country_name = name(country).unwrap_or(country);
        Err(format!(
            "{id} is not a VAT number of {country_name}: check it against your VAT registration \
             (it starts with {prefix})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_numbers_in_each_countrys_format_are_taken_and_written_one_way() {
        // Published examples in each format (VIES, HMRC).
        for (country, typed, stored) in [
            ("AT", "ATU13585627", "ATU13585627"),
            ("BE", "BE 0403.170.701", "BE0403170701"),
            ("DE", "136695976", "DE136695976"),
            ("ES", "esa28015865", "ESA28015865"),
            ("FR", "FR 40 303 265 045", "FR40303265045"),
            ("GR", "094259216", "EL094259216"),
            ("IE", "IE6388047V", "IE6388047V"),
            ("IT", "IT00743110157", "IT00743110157"),
            ("NL", "NL004495445B01", "NL004495445B01"),
            ("PL", "526-000-12-46", "PL5260001246"),
            ("SE", "SE556188840401", "SE556188840401"),
            ("GB", "GB 999 9999 73", "GB999999973"),
            ("US", "12-3456789", "123456789"),
        ] {
            assert_eq!(
                check_tax_id(country, typed).as_deref(),
                Ok(stored),
                "{country} {typed}"
            );
        }
    }

    #[test]
    fn a_vat_number_out_of_its_countrys_format_is_refused_with_what_to_do() {
        for (country, typed) in [
            ("DE", "DE12345678"),
            ("DE", "FR40303265045"),
            ("FR", "FR4030326504"),
            ("NL", "NL004495445"),
            ("GB", "GB12345"),
            ("AT", "AT13585627"),
        ] {
            let err = check_tax_id(country, typed).expect_err(typed);
            assert!(err.contains("is not a VAT number of"), "{err}");
        }
        assert!(check_tax_id("US", "<script>").is_err());
        assert!(check_tax_id("US", &"1".repeat(41)).is_err());
    }

    #[test]
    fn countries_are_iso_codes_with_names() {
        assert_eq!(code(" de "), Some("DE".into()));
        assert_eq!(code("XX"), None);
        assert_eq!(name("GR"), Some("Greece"));
        assert!(all().len() > 240);
        assert!(EU.iter().all(|c| name(c).is_some()));
    }
}
