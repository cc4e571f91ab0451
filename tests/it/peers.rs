//! Where a company stands against its peers, through the real binary: 60 completed orders over
//! three industries and two sizes, then a preview and a paid order processed against llmock
//! compare with the right group and its quartiles (worked out here from the seeded answers);
//! with 5 orders, the method's reference figures stand in and the report says so.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::services::service;
use crate::support::{Install, NOW, stdout};

const INDUSTRIES: [&str; 3] = ["Logistics", "Retail and e-commerce", "Manufacturing"];

/// Order `i`'s answers: an industry, a size, and one strategy answer from 1 to 5 (so its only
/// assessed pillar scores that, and its overall score is (answer - 1) * 25).
fn answers(i: usize, email: &str) -> BTreeMap<String, String> {
    let industry = INDUSTRIES[i % 3];
    let employees = if (i / 3).is_multiple_of(2) {
        "11-50"
    } else {
        "51-250"
    };
    let strategy = 1 + (i * 7) % 5;
    [
        ("company", format!("Peer {i} Ltd")),
        ("industry", industry.to_owned()),
        ("employees", employees.to_owned()),
        ("country", "UK".to_owned()),
        ("name", "Pat".to_owned()),
        ("email", email.to_owned()),
        ("tier", "standard".to_owned()),
        ("strategy_1", strategy.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Quartiles as a spreadsheet computes them (linear between closest ranks), one decimal.
fn quartiles(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = q * (values.len() - 1) as f64;
        let low = rank.floor() as usize;
        let high = rank.ceil() as usize;
        let value = values[low] + (values[high] - values[low]) * (rank - low as f64);
        (value * 10.0).round() / 10.0
    };
    [at(0.25), at(0.5), at(0.75)]
}

fn seed(install: &Install, orders: usize) -> Vec<BTreeMap<String, String>> {
    let mut db = install.db();
    (0..orders)
        .map(|i| {
            let fields = answers(i, &format!("peer{i}@example.com"));
            crate::seed::completed_order_from(&mut db, &fields, NOW).expect("a completed order");
            fields
        })
        .collect()
}

fn preview(install: &Install, fields: &BTreeMap<String, String>) -> Value {
    let file = install.dir.path().join("answers.json");
    std::fs::write(&file, serde_json::to_string(fields).expect("json")).expect("write");
    let out = install.dir.path().join("preview");
    let printed = stdout(&install.compass(&[
        "preview",
        "--answers",
        file.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    assert!(printed.contains("report.pdf"), "{printed}");
    serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
        .expect("JSON")
}

#[test]
fn the_comparison_rests_on_the_right_group_with_its_quartiles() {
    let model = format!("claude-peers-{}", std::process::id());
    let install = Install::with_claude(&service("COMPASS_TEST_CLAUDE_URL"), &model);
    let seeded = seed(&install, 60);
    // A logistics company of 11-50: its group is the ten seeded ones of that industry and size.
    let own = answers(0, "own@example.com");
    let group: Vec<&BTreeMap<String, String>> = seeded
        .iter()
        .filter(|f| f["industry"] == own["industry"] && f["employees"] == own["employees"])
        .collect();
    assert_eq!(group.len(), 10);
    let strategy: Vec<f64> = group
        .iter()
        .map(|f| f["strategy_1"].parse().expect("n"))
        .collect();
    let overall: Vec<f64> = strategy.iter().map(|s| (s - 1.0) * 25.0).collect();
    let expected = |values: Vec<f64>| {
        let [p25, median, p75] = quartiles(values);
        json!({ "p25": p25, "median": median, "p75": p75 })
    };

    // Claude (llmock) writes the words of the preview and of the order alike.
    let reply = serde_json::to_string(&crate::seed::sample_written("standard")).expect("json");
    crate::llmock::script(
        &model,
        json!([{ "type": "reply", "text": reply, "times": null }]),
    );
    let report = preview(&install, &own);
    let peers = &report["peers"];
    assert_eq!(
        peers["group"],
        json!({ "kind": "industry_and_size", "industry": "Logistics", "employees": "11-50" }),
        "{peers}"
    );
    assert_eq!(peers["count"], 10);
    assert_eq!(peers["overall"], expected(overall.clone()));
    assert_eq!(peers["categories"]["strategy"], expected(strategy.clone()));
    assert!(
        peers["categories"].get("data").is_none(),
        "no peer answered data"
    );

    // A paid order written by process: the same group, itself left out.
    let mut db = install.db();
    let id = crate::seed::paid_order_from(&mut db, &own, None, NOW).expect("paid");
    drop(db);
    let mut command = install.command(&["process"]);
    let printed = stdout(&command.output().expect("process"));
    assert!(printed.contains("1 completed"), "{printed}");
    let written: Value = serde_json::from_slice(
        &install
            .db()
            .artifact(&id, "json")
            .expect("read")
            .expect("the report"),
    )
    .expect("JSON");
    assert_eq!(written["peers"], report["peers"], "the same comparison");
    let html = String::from_utf8(
        install
            .db()
            .artifact(&id, "html")
            .expect("read")
            .expect("html"),
    )
    .expect("utf-8");
    let [p25, median, p75] = quartiles(overall);
    let line = format!(
        "Companies like yours (Logistics, 11-50 employees, 10 assessed): median {median:.0}, \
         middle half {p25:.0} to {p75:.0}."
    );
    assert!(html.contains(&line), "{line} in {html}");
    // The model was told the same figures, outside the customer's data block.
    let prompt = crate::llmock::requests(&model)
        .last()
        .map(ToString::to_string)
        .expect("a request");
    let told = prompt
        .find("How it compares with 10 companies like it (Logistics, 11-50 employees)")
        .unwrap_or_else(|| panic!("the peers in the prompt: {prompt}"));
    let data = prompt.rfind("<customer_answers>").expect("the data block");
    assert!(told < data, "compass's figures, not the customer's data");
}

#[test]
fn with_too_few_companies_the_report_says_so_and_uses_the_reference_figures() {
    let install = Install::new();
    seed(&install, 5);
    let method = install.dir.path().join("method/method.toml");
    let text = std::fs::read_to_string(&method).expect("the built-in method");
    std::fs::write(
        &method,
        format!(
            "{text}\n[benchmarks.baseline]\noverall = [30, 45, 60]\n\
             categories = {{ strategy = [2.0, 2.6, 3.4] }}\n"
        ),
    )
    .expect("write");
    let report = preview(&install, &answers(0, "own@example.com"));
    assert_eq!(report["peers"]["group"], json!({ "kind": "baseline" }));
    assert_eq!(report["peers"]["count"], 5);
    assert_eq!(
        report["peers"]["overall"],
        json!({ "p25": 30.0, "median": 45.0, "p75": 60.0 })
    );
    let html = std::fs::read_to_string(install.dir.path().join("preview/report.html"))
        .expect("report.html");
    assert!(
        html.contains(
            "Too few companies have been assessed to compare with yet (5); reference figures: \
             median 45, middle half 30 to 60."
        ),
        "{html}"
    );
    assert!(html.contains("Reference: median 2.6, middle half 2.0 to 3.4."));
}
