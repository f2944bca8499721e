//! API robustness: schemathesis (a property-based API tester, run as the
//! unmodified Python tool from `$MAILFERRY_TEST_PYTHON`) reads our own
//! `/api/v2/openapi.json` and throws valid and invalid requests at every
//! operation. It fails the run on a 5xx, on a status code, content type or
//! body the document does not declare, and on invalid input that is accepted.
//! So the document stays truthful and bad input always gets a 4xx problem.

use std::fmt::Write as _;
use std::time::Instant;

use crate::support::{TestApp, graph_importer_body, json};

/// Cases per operation and phase: enough to cover every declared field and
/// boundary (the coverage phase adds its own deterministic cases), small
/// enough that the run takes well under a minute on two cores.
const MAX_EXAMPLES: &str = "50";
/// Fixed, so that a failure is reproduced by running the test again.
const SEED: &str = "20260329";

fn install_hint(python: &str) -> String {
    format!(
        "schemathesis is not installed for `{python}` ($MAILFERRY_TEST_PYTHON).\n\
         Install it with `python3 -m venv .venv-test && .venv-test/bin/pip install -r scripts/test-requirements.txt` \
         (scripts/test.sh does this) and set MAILFERRY_TEST_PYTHON=$PWD/.venv-test/bin/python"
    )
}

/// A TOML string literal (basic string, escaped).
fn toml_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| toml_str(v)).collect();
    format!("[{}]", quoted.join(", "))
}

async fn created_id(response: reqwest::Response, what: &str) -> String {
    let status = response.status();
    let body = json(response).await;
    assert_eq!(status, 201, "creating {what} for the fuzz run: {body}");
    body["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_our_openapi_document() {
    let python = std::env::var("MAILFERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import schemathesis"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run `{python}`: {e}\n{}", install_hint(&python)));
    assert!(
        probe.status.success(),
        "{}\n{}",
        install_hint(&python),
        String::from_utf8_lossy(&probe.stderr)
    );

    let app = TestApp::spawn().await;

    // Real ids, so that GET/PUT/DELETE on `{id}` reach the handlers' code
    // past the lookup, not only their 404. DELETE gets ids of its own, so
    // the other operations keep finding theirs.
    let mut importer_ids = Vec::new();
    for name in ["Invoices", "Receipts", "Archive", "Scans"] {
        let body = match name {
            "Archive" => {
                let mut app_only = graph_importer_body(name);
                app_only["protocol"] = "graph_client_credentials".into();
                app_only["tenant_id"] = "6f1c2a9e-0000-4000-8000-00000000c0de".into();
                app_only
            }
            "Scans" => serde_json::json!({
                "name": name,
                "protocol": "imap",
                "host": "imap.example.com",
                "port": 993,
                "security": "tls",
                "username": "scans@example.com",
                "password": "imap-password-1",
                "folders": { "inbox": "INBOX", "exported": "Exported", "error": "Error" }
            }),
            _ => graph_importer_body(name),
        };
        let created = app.post_json("/api/v2/importers/email", &body).await;
        importer_ids.push(created_id(created, name).await);
    }
    let mut disposable_importer_ids = Vec::new();
    for name in ["Old 1", "Old 2"] {
        let created = app
            .post_json("/api/v2/importers/email", &graph_importer_body(name))
            .await;
        disposable_importer_ids.push(created_id(created, name).await);
    }

    let mut job_ids = Vec::new();
    for (cron, timezone) in [
        ("*/50 * * * *", "Europe/Berlin"),
        ("0 3 * * *", "UTC"),
        ("@daily", "UTC"),
    ] {
        let body = serde_json::json!({
            "script": "purge-documents", "cron": cron, "timezone": timezone,
            "params": { "retention_days": 90 }, "description": "fuzz seed"
        });
        let created = app.post_json("/api/v2/jobs", &body).await;
        job_ids.push(created_id(created, "a job").await);
    }
    let disposable_job_ids = job_ids.split_off(2);

    let run = app
        .post_json(
            "/api/v2/scripts/purge-documents/run",
            &serde_json::json!({ "retention_days": 30 }),
        )
        .await;
    let execution_ids = vec![created_id(run, "a manual execution").await];

    // No cache: every run starts from the same state (`.schemathesis/`
    // would otherwise replay what an earlier run learnt).
    let mut config = String::from("[cache]\nenabled = false\n\n");
    // Error feedback guesses field types from our 422 messages (it reads
    // "params.retention_days: is required" as a string that must not be
    // blank) and then reports schema-valid requests as accepted invalid ones.
    // The document, not a guess, is what this test holds the API to.
    config.push_str("[phases.fuzzing.error-feedback]\nenabled = false\n\n");
    for (name, ids) in [
        ("importer_ids", &importer_ids),
        ("disposable_importer_ids", &disposable_importer_ids),
        ("job_ids", &job_ids),
        ("disposable_job_ids", &disposable_job_ids),
        ("execution_ids", &execution_ids),
    ] {
        writeln!(
            config,
            "[dictionaries.{name}]\nvalues = {}\n",
            toml_list(ids)
        )
        .expect("write");
    }
    // Most cases use a real id; the rest are generated, which covers unknown ids.
    for (path_regex, method, dictionary) in [
        ("^/api/v2/importers/email/\\{id\\}", None, "importer_ids"),
        (
            "^/api/v2/importers/email/\\{id\\}$",
            Some("DELETE"),
            "disposable_importer_ids",
        ),
        ("^/api/v2/jobs/\\{id\\}", None, "job_ids"),
        (
            "^/api/v2/jobs/\\{id\\}$",
            Some("DELETE"),
            "disposable_job_ids",
        ),
        ("^/api/v2/executions/\\{id\\}", None, "execution_ids"),
    ] {
        let method_filter = match method {
            Some(m) => format!("include-method = {}\n", toml_str(m)),
            None => "exclude-method = \"DELETE\"\n".to_owned(),
        };
        writeln!(
            config,
            "[[operations]]\ninclude-path-regex = {}\n{method_filter}parameters = {{ \"path.id\" = {{ dictionary = {}, probability = 0.7 }} }}\n",
            toml_str(path_regex),
            toml_str(dictionary)
        )
        .expect("write");
    }
    let config_path = app.dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, &config).expect("write schemathesis.toml");

    let schema_url = app.url("/api/v2/openapi.json");
    let auth_header = format!("Authorization: Bearer {}", app.token);
    let args: Vec<String> = [
        "-m",
        "schemathesis.cli",
        "--config-file",
        config_path.to_str().expect("UTF-8 path"),
        "--no-color",
        "run",
        &schema_url,
        "--header",
        &auth_header,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        // Also keeps no example database (`.hypothesis/`) between runs.
        "--generation-deterministic",
        // One worker: DELETE and GET on the same ids would otherwise race.
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--max-redirects",
        "0",
        // They call Microsoft, which the in-process app cannot reach here
        // (the OAuth and Graph flows are tested against the emulator in
        // `oauth`, `graph_mailbox` and `import`):
        // `/authenticate` redirects the browser to Microsoft's sign-in;
        "--exclude-path",
        "/api/v2/importers/email/{id}/authenticate",
        // `/test` and `/folders` ask the mailbox; `/dry-run` lists it.
        "--exclude-path",
        "/api/v2/importers/email/{id}/test",
        "--exclude-path",
        "/api/v2/importers/email/{id}/folders",
        "--exclude-path",
        "/api/v2/importers/email/{id}/dry-run",
        // Alerts go to whatever URL and SMTP server the settings name: a
        // fuzzed address must never be contacted (loopback only), so the
        // settings are not written and no test alert is sent here (both
        // are tested against real receivers in `oauth`).
        "--exclude-operation-id",
        "alerts_put_settings",
        "--exclude-operation-id",
        "alerts_test",
        // Prometheus text for scrapers, not part of the REST API.
        "--exclude-path",
        "/metrics",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let started = Instant::now();
    let output = tokio::process::Command::new(&python)
        .args(&args)
        .current_dir(app.dir.path())
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run schemathesis with `{python}`: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "schemathesis took {:.1}s: {python} {}",
        started.elapsed().as_secs_f64(),
        args.join(" ").replace(&app.token, "<token>")
    );
    println!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}\nconfig:\n{config}",
        output.status
    );
    // It ran the operations, rather than succeeding on an empty selection.
    assert!(
        stdout.contains(" selected /")
            && !stdout.contains(" 0 selected")
            && stdout.contains(" passed"),
        "schemathesis output does not show the operations it tested:\n{stdout}"
    );
}
