//! What Prometheus scrapes: after an import (with a 429 on the way), a
//! token refresh and script runs, /metrics exposes every series the
//! Grafana dashboard in `deploy/grafana/` queries.

use msemu::{FaultKind, FaultRule, demo};
use serde_json::json;

use crate::support::{
    TestApp, app_only_importer_body, empty_demo_emulator, graph_importer_body, invoice_mail,
    run_script,
};

#[tokio::test]
async fn every_series_the_dashboard_queries_is_exposed() {
    let emu = empty_demo_emulator().await;
    let app = TestApp::spawn().await;
    let created = app
        .post_json(
            "/api/v2/importers/email",
            &app_only_importer_body(&emu, &json!({})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let delegated = app
        .post_json("/api/v2/importers/email", &graph_importer_body("Delegated"))
        .await;
    assert_eq!(delegated.status(), 201);
    emu.add_message(
        demo::ALICE,
        "Inbox",
        &invoice_mail("<metrics-1@contoso.example>", "Invoice", b"%PDF-1.4 m"),
    )
    .expect("deliver");
    emu.add_fault(FaultRule {
        count: Some(1),
        ..FaultRule::graph(FaultKind::Throttle { retry_after: 0.1 })
    });
    crate::support::run_import_emails(&app).await;
    let (_, lines) = run_script(&app, &grants::RefreshTokens::new()).await;
    assert!(lines.iter().any(|l| l.contains("Delegated")), "{lines:?}");

    let exposed = app.get("/metrics").await.text().await.expect("metrics");
    let dashboard: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../deploy/grafana/mailferry-dashboard.json"
    ))
    .expect("the dashboard is JSON");
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = word.strip_prefix("mailferry_") {
                    let base = name
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_count")
                        .trim_end_matches("_sum");
                    queried.push(format!("mailferry_{base}"));
                }
            }
        }
    }
    assert!(queried.len() >= 8, "{queried:?}");
    for name in &queried {
        assert!(
            exposed.contains(name.as_str()),
            "{name} is queried by the dashboard but not exposed:\n{exposed}"
        );
    }
    assert!(
        exposed.contains("mailferry_grants{state=\"reauth_required\"}"),
        "{exposed}"
    );
    emu.shutdown().await;
}
