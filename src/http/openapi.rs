//! The public HTTP contract, served at `/api/openapi.json`. People edit docs/openapi.yaml;
//! docs/openapi.json is the same document as JSON, committed and embedded in the binary (a
//! test holds the two equal: `UPDATE_EXPECT=1 cargo test --lib openapi` writes the JSON anew).
//! Its tests hold it to the routes and to the questionnaire.

use super::Response;

/// The document, as served.
pub const JSON: &str = include_str!("../../docs/openapi.json");

/// `GET /api/openapi.json`.
pub fn response() -> Response {
    let mut response = Response::json(200, &serde_json::Value::Null);
    response.body = JSON.as_bytes().to_vec();
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
        serde_json::from_str(JSON).expect("docs/openapi.json is JSON")
    }

    #[test]
    fn the_served_json_is_the_yaml_people_edit() {
        let written: serde_json::Value =
            serde_yaml::from_str(include_str!("../../docs/openapi.yaml")).expect("valid YAML");
        let json = serde_json::to_string_pretty(&written).expect("a JSON value serialises");
        expect_test::expect_file!["../../docs/openapi.json"].assert_eq(&format!("{json}\n"));
        assert_eq!(document()["openapi"], "3.1.0");
        let served: serde_json::Value = serde_json::from_slice(&response().body).expect("JSON");
        assert_eq!(served, written);
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
