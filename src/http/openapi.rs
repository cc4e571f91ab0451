//! The public HTTP contract, docs/openapi.yaml, served as JSON at `/api/openapi.json`. The
//! document is embedded in the binary and converted once; its tests hold it to the routes and
//! to the questionnaire.

use std::sync::LazyLock;

use super::Response;

/// The document as written.
pub const YAML: &str = include_str!("../../docs/openapi.yaml");

static JSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let document: serde_json::Value =
        serde_yaml::from_str(YAML).expect("docs/openapi.yaml is valid YAML (a test checks it)");
    serde_json::to_vec_pretty(&document).expect("a JSON value always serialises")
});

/// `GET /api/openapi.json`.
pub fn response() -> Response {
    let mut response = Response::json(200, &serde_json::Value::Null);
    response.body.clone_from(&JSON);
    response
        .headers
        .push(("Cache-Control", "public, max-age=3600".to_owned()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::questionnaire::Questionnaire;

    fn document() -> serde_json::Value {
        serde_yaml::from_str(YAML).expect("valid YAML")
    }

    #[test]
    fn the_document_is_openapi_3_1_and_served_as_json() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let served: serde_json::Value = serde_json::from_slice(&response().body).expect("JSON");
        assert_eq!(served, doc);
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
        let mut fields = Questionnaire::builtin().fields();
        documented.sort();
        fields.sort();
        assert_eq!(documented, fields);
        let industries = &doc["components"]["schemas"]["Intake"]["properties"]["industry"]["enum"];
        let mut expected: Vec<String> = Questionnaire::builtin().industries.clone();
        expected.push("Other".to_owned());
        assert_eq!(industries, &serde_json::json!(expected));
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
