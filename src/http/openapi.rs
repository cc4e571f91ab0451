//! The public HTTP contract, served at `/api/openapi.json`. People edit docs/openapi.yaml;
//! docs/openapi.json is the same document as JSON, committed and embedded in the binary (a
//! test holds the two equal: `UPDATE_EXPECT=1 cargo test --lib openapi` writes the JSON anew).
//! Its tests hold it to the routes and to the questionnaire. It describes the built-in method;
//! an installation selling another method serves it with the intake's schema written from that
//! method (its questions, tiers and choices), so the contract a client reads is the one the
//! validator applies.

use serde_json::{Value, json};

use super::Response;
use crate::method::questionnaire::PROFILE_FIELDS;
use crate::method::{Kind, Method};

/// The document, as served for the built-in method.
pub const JSON: &str = include_str!("../../docs/openapi.json");

/// `GET /api/openapi.json` for an installation selling `method`.
pub fn response(method: &Method, invoices: bool) -> Response {
    let mut response = Response::json(200, &serde_json::Value::Null);
    response.body = if method.is_builtin() && !invoices {
        JSON.as_bytes().to_vec()
    } else {
        let mut doc = document(method);
        if invoices {
            add_billing_fields(&mut doc);
        }
        doc.to_string().into_bytes()
    };
    response
        .headers
        .push(("Cache-Control", "public, max-age=3600".to_owned()));
    response
}

/// The intake's billing fields, where the installation issues invoices (elsewhere they are
/// refused as unknown fields).
fn add_billing_fields(doc: &mut Value) {
    let text = |max: usize, description: &str| json!({ "type": ["string", "null"], "maxLength": max, "description": description });
    let codes: Vec<&str> = crate::invoice::country::all()
        .into_iter()
        .map(|(code, _)| code)
        .collect();
    let properties = doc["components"]["schemas"]["Intake"]["properties"]
        .as_object_mut()
        .expect("the intake schema has properties (tested)");
    properties.insert(
        "billing_name".into(),
        text(
            200,
            "The legal name for the invoice. Billing details are optional unless the operator \
             requires them; once one is given, the name, address and country are required.",
        ),
    );
    properties.insert(
        "billing_address".into(),
        text(
            500,
            "The billing address, lines separated by line breaks, without the country.",
        ),
    );
    properties.insert(
        "billing_country".into(),
        json!({
            "enum": codes,
            "description": "The billing address's country, as an ISO 3166 two-letter code.",
        }),
    );
    properties.insert(
        "billing_tax_id".into(),
        text(
            40,
            "The buyer's VAT or tax id. For the EU countries and the UK it must have the \
             country's VAT format (its prefix, like DE, may be left out; spaces, dots and \
             dashes are ignored), or the order is refused (`invalid_fields`). A business in \
             another EU country than the seller's with one pays no VAT (reverse charge).",
        ),
    );
}

/// The document with the intake's schema written from `method`.
pub fn document(method: &Method) -> Value {
    let mut doc: Value = serde_json::from_str(JSON).expect("docs/openapi.json is JSON (tested)");
    let q = &method.questionnaire;
    let intake = &mut doc["components"]["schemas"]["Intake"];
    let mut required: Vec<Value> = intake["required"].as_array().cloned().unwrap_or_default();
    let properties = intake["properties"]
        .as_object_mut()
        .expect("the intake schema has properties (tested)");
    properties.retain(|name, _| PROFILE_FIELDS.contains(&name.as_str()));
    let mut industries: Vec<Value> = q.industries.iter().map(|i| json!(i)).collect();
    industries.push(json!("Other"));
    properties.insert(
        "industry".into(),
        json!({ "type": "string", "enum": industries }),
    );
    properties.insert(
        "employees".into(),
        json!({ "type": "string", "enum": q.employees }),
    );
    let tiers: Vec<&str> = method.tiers.iter().map(|t| t.id.as_str()).collect();
    properties.insert("tier".into(), json!({ "type": "string", "enum": tiers }));
    for question in q.questions() {
        let described = |mut schema: Value| {
            schema["description"] = json!(question.text);
            schema
        };
        let ids = |options: &[crate::method::Choice]| -> Vec<Value> {
            options.iter().map(|o| json!(o.id)).collect()
        };
        let schema = match &question.kind {
            Kind::Scale => json!({
                "type": ["integer", "null"], "minimum": q.scale.min, "maximum": q.scale.max,
            }),
            Kind::Single(options) => {
                let mut choices = ids(options);
                choices.push(Value::Null);
                json!({ "enum": choices })
            }
            Kind::Multiple(options) => json!({
                "type": ["array", "null"], "uniqueItems": true, "items": { "enum": ids(options) },
            }),
            Kind::YesNo { .. } => json!({ "type": ["boolean", "null"] }),
            Kind::Number { min, max, .. } => {
                let mut schema = json!({ "type": ["integer", "null"] });
                if let Some(min) = min {
                    schema["minimum"] = json!(min);
                }
                if let Some(max) = max {
                    schema["maximum"] = json!(max);
                }
                schema
            }
            Kind::Text => json!({ "type": ["string", "null"], "maxLength": 5000 }),
        };
        properties.insert(question.id.clone(), described(schema));
        if question.required && question.show_when.is_none() {
            required.push(json!(question.id));
        }
    }
    for category in q.categories.iter().filter(|c| c.note) {
        properties.insert(
            format!("{}_note", category.id),
            json!({ "$ref": "#/components/schemas/Note" }),
        );
    }
    intake["required"] = json!(required);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;

    fn document() -> serde_json::Value {
        serde_json::from_str(JSON).expect("docs/openapi.json is JSON")
    }

    #[test]
    fn the_served_json_is_the_yaml_people_edit() {
        let written: serde_json::Value =
            serde_yaml::from_str(include_str!("../../docs/openapi.yaml")).expect("valid YAML");
        let json = serde_json::to_string_pretty(&written).expect("a JSON value serialises");
        expect_test::expect_file!["../../docs/openapi.json"].assert_eq(&format!("{json}\n"));
        assert_eq!(document()["openapi"], "3.1.0");
        let served: serde_json::Value =
            serde_json::from_slice(&response(&Method::builtin(), false).body).expect("JSON");
        assert_eq!(served, written);
    }

    #[test]
    fn another_method_is_served_with_its_own_intake_schema() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/methods/security");
        let method = Method::load_dir(&dir).expect("valid");
        let served: Value = serde_json::from_slice(&response(&method, false).body).expect("JSON");
        let intake = &served["components"]["schemas"]["Intake"];
        let mut documented: Vec<String> = intake["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let mut fields = method.questionnaire.fields();
        documented.sort();
        fields.sort();
        assert_eq!(documented, fields);
        assert_eq!(
            intake["properties"]["tier"]["enum"],
            json!(["essentials", "full"])
        );
        assert_eq!(
            intake["properties"]["protections"]["items"]["enum"],
            json!(["disk", "antivirus", "firewall"])
        );
        assert_eq!(
            intake["properties"]["shared_accounts"]["type"],
            json!(["boolean", "null"])
        );
        assert!(
            intake["required"]
                .as_array()
                .expect("required")
                .contains(&json!("has_backups"))
        );
    }

    #[test]
    fn the_intake_schema_lists_exactly_the_questionnaires_fields() {
        let doc = document();
        let mut documented: Vec<String> = doc["components"]["schemas"]["Intake"]["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let mut fields = Method::builtin().questionnaire.fields();
        documented.sort();
        fields.sort();
        assert_eq!(documented, fields);
        let industries = &doc["components"]["schemas"]["Intake"]["properties"]["industry"]["enum"];
        let mut expected: Vec<String> = Method::builtin().questionnaire.industries.clone();
        expected.push("Other".to_owned());
        assert_eq!(industries, &serde_json::json!(expected));
    }

    #[test]
    fn an_installation_with_invoices_documents_its_billing_fields() {
        let served: Value =
            serde_json::from_slice(&response(&Method::builtin(), true).body).expect("JSON");
        let properties = &served["components"]["schemas"]["Intake"]["properties"];
        for field in crate::invoice::FIELDS {
            assert!(properties[field].is_object(), "{field}");
        }
        let codes = properties["billing_country"]["enum"]
            .as_array()
            .expect("codes");
        assert!(codes.contains(&json!("DE")) && codes.contains(&json!("GB")));
    }

    #[test]
    fn every_error_code_the_server_uses_is_documented() {
        let doc = document();
        let codes = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
            ["enum"];
        let sources = [
            include_str!("routes.rs"),
            include_str!("intake.rs"),
            include_str!("customer.rs"),
            include_str!("mod.rs"),
        ];
        let mut used = Vec::new();
        for source in sources {
            for (i, _) in source.match_indices("Response::json_error(") {
                let rest = &source[i..];
                let Some(start) = rest.find('"') else {
                    continue;
                };
                let code: String = rest[start + 1..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                if code.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !code.is_empty() {
                    used.push(code);
                }
            }
        }
        used.extend(["invalid_fields".to_owned()]);
        assert!(used.len() > 10, "{used:?}");
        for code in used {
            assert!(
                codes
                    .as_array()
                    .expect("enum")
                    .contains(&serde_json::json!(code)),
                "`{code}` is not in docs/openapi.yaml"
            );
        }
    }
}
