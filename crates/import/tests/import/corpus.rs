//! Every corpus mail is decided as expected, and the decision is stable.

use import::corpus::{self, CorpusMail, Expected};
use import::mime::{Decision, analyze};
use proptest::prelude::*;

fn check(mail: &CorpusMail) {
    let analysis = analyze(
        &mail.raw,
        &corpus::attachment_rules(),
        &corpus::import_rules(),
    );
    let label = mail.label();
    match (&mail.expected, &analysis.decision) {
        (Expected::Error(code), Decision::ToError { reason }) => {
            assert_eq!(reason.code, *code, "{label}: {}", reason.detail);
            assert!(!reason.detail.is_empty(), "{label}");
        }
        (Expected::Import(files), Decision::Import { attachments }) => {
            let names = sinks::filename::unique_names(
                attachments
                    .iter()
                    .map(|a| a.filename.as_deref().unwrap_or(&a.fallback_name)),
            );
            let got: Vec<(&str, usize)> = names
                .iter()
                .zip(attachments)
                .map(|(n, a)| (n.as_str(), a.bytes.len()))
                .collect();
            let want: Vec<(&str, usize)> = files
                .iter()
                .map(|f| (f.name.as_str(), f.size as usize))
                .collect();
            assert_eq!(got, want, "{label}: skipped {:?}", analysis.skipped);
            for (file, a) in files.iter().zip(attachments) {
                assert!(
                    file.matches(&a.bytes),
                    "{label}: bytes of {} differ from the source",
                    file.name
                );
            }
        }
        (want, got) => panic!(
            "{label}: expected {want:?}, decided {}: {:?}",
            got.code(),
            match got {
                Decision::ToError { reason } => reason.detail.clone(),
                Decision::Import { attachments } => format!("{} attachments", attachments.len()),
            }
        ),
    }
}

#[test]
fn the_corpus_has_at_least_30_varied_mails() {
    let all = corpus::corpus();
    assert!(all.len() >= 30, "{}", all.len());
    let mut names: Vec<_> = all.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "names are unique");
    for code in [
        "no_importable_attachment",
        "unparsable",
        "rule:sender_allow",
        "rule:subject_block",
    ] {
        assert!(
            all.iter()
                .any(|m| m.expected == Expected::Error(code.to_owned())),
            "the corpus covers {code}"
        );
    }
}

#[test]
fn every_corpus_mail_lands_where_the_rules_say() {
    for mail in corpus::corpus() {
        check(&mail);
    }
}

#[test]
fn every_fixture_pair_is_in_the_corpus() {
    let all = corpus::corpus();
    let fixtures = corpus::fixtures();
    assert!(fixtures.len() >= 10, "{}", fixtures.len());
    for fixture in &fixtures {
        assert!(
            all.iter()
                .any(|m| m.fixture == fixture.fixture && m.raw == fixture.raw),
            "{}",
            fixture.label()
        );
    }
}

#[test]
fn a_fixture_without_its_json_fails_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("lonely.eml"), b"Subject: x\r\n\r\nx").expect("write");
    let message = std::panic::catch_unwind(|| corpus::fixtures_in(dir.path()))
        .expect_err("a missing .json fails");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.contains("lonely.json"), "{message}");

    std::fs::write(
        dir.path().join("lonely.json"),
        r#"{"decision": "import", "files": []}"#,
    )
    .expect("write");
    let message = std::panic::catch_unwind(|| corpus::fixtures_in(dir.path()))
        .expect_err("an import without files fails");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.contains("lonely.json"), "{message}");

    std::fs::write(
        dir.path().join("lonely.json"),
        r#"{"decision": "error", "code": "unparsable"}"#,
    )
    .expect("write");
    let loaded = corpus::fixtures_in(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, "lonely");
    assert_eq!(loaded[0].expected, Expected::Error("unparsable".to_owned()));
}

#[test]
fn a_20_mb_attachment_is_imported_byte_for_byte() {
    check(&corpus::large_mail());
}

#[test]
fn facts_are_read_from_the_headers() {
    let all = corpus::corpus();
    let by = |n: &str| all.iter().find(|m| m.name == n).expect("in corpus");
    let a = analyze(
        &by("rfc2047_filename").raw,
        &corpus::attachment_rules(),
        &corpus::import_rules(),
    );
    assert_eq!(a.facts.subject.as_deref(), Some("Rechnung für März"));
    assert_eq!(a.facts.from.as_deref(), Some("juergen@contoso.com"));
    assert_eq!(
        a.facts.internet_message_id.as_deref(),
        Some("<rfc2047-filename@contoso.com>")
    );
    assert_eq!(
        a.facts.date,
        Some("2026-03-02T09:01:00Z".parse().expect("ts"))
    );
    let a = analyze(
        &by("single_pdf").raw,
        &corpus::attachment_rules(),
        &corpus::import_rules(),
    );
    assert_eq!(a.facts.to, ["invoices@contoso.com", "archive@contoso.com"]);
}

#[test]
fn inline_images_are_imported_when_include_inline_is_set() {
    let all = corpus::corpus();
    let mail = all
        .iter()
        .find(|m| m.name == "html_with_only_inline_images")
        .expect("in corpus");
    let mut rules = corpus::attachment_rules();
    rules.include_inline = true;
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    let Decision::Import { attachments } = a.decision else {
        panic!("imported with include_inline: {:?}", a.skipped)
    };
    assert_eq!(attachments.len(), 2);
    assert!(attachments.iter().all(|a| a.inline));
}

#[test]
fn allowed_types_and_extensions_filter_parts() {
    let all = corpus::corpus();
    let mail = all
        .iter()
        .find(|m| m.name == "three_attachments")
        .expect("in corpus");
    let mut rules = corpus::attachment_rules();
    rules.allowed_types = vec!["image/*".into(), "application/pdf".into()];
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    let Decision::Import { attachments } = &a.decision else {
        panic!("imported")
    };
    assert_eq!(attachments.len(), 2);
    assert_eq!(a.skipped.len(), 1, "the xlsx: {:?}", a.skipped);
    assert!(a.skipped.iter().any(|s| s.why.contains("allowed_types")));
    rules.allowed_extensions = vec!["png".into()];
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    let Decision::Import { attachments } = &a.decision else {
        panic!("imported")
    };
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].filename.as_deref(), Some("chart.png"));
    rules.allowed_types = vec!["application/pdf".into()];
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    let Decision::ToError { reason } = &a.decision else {
        panic!("to error")
    };
    assert_eq!(reason.code, "no_importable_attachment");
    assert!(reason.detail.contains("chart.png"), "{}", reason.detail);
}

#[test]
fn the_body_joins_the_document_as_import_body_says() {
    use domain::importer::ImportBody;
    use import::mime::analyze_with;
    let all = corpus::corpus();
    let mail = |name: &str| &all.iter().find(|m| m.name == name).expect("in corpus").raw;
    let (attachments, rules) = (corpus::attachment_rules(), corpus::import_rules());
    let (zip, smime, keys) = Default::default();
    let files = |raw: &[u8], body| match analyze_with(
        raw,
        &import::mime::Policy {
            attachments: &attachments,
            rules: &rules,
            body,
            zip: &zip,
            smime: &smime,
            keys: &keys,
            max_unpacked_bytes: u64::MAX,
        },
    )
    .decision
    {
        Decision::Import { attachments } => attachments
            .iter()
            .map(|a| {
                (
                    a.display_name(),
                    a.content_type.clone(),
                    String::from_utf8_lossy(&a.bytes).into_owned(),
                )
            })
            .collect::<Vec<_>>(),
        Decision::ToError { reason } => vec![(reason.code, String::new(), String::new())],
    };

    // A mail without attachment: Error unless its body may be the document.
    let text_only = mail("no_attachment");
    assert_eq!(
        files(text_only, ImportBody::Never)[0].0,
        "no_importable_attachment"
    );
    let body = files(text_only, ImportBody::WhenNoAttachment);
    assert_eq!(body.len(), 1, "{body:?}");
    assert_eq!(body[0].0, "body.txt");
    assert_eq!(body[0].1, "text/plain");
    assert!(body[0].2.contains("Hello"), "{body:?}");

    // With attachments, `when_no_attachment` adds nothing; `always` adds
    // the text and the HTML body, never an inline image.
    let nested = mail("nested_multiparts");
    let only_attachments = files(nested, ImportBody::WhenNoAttachment);
    assert_eq!(only_attachments, files(nested, ImportBody::Never));
    let always = files(nested, ImportBody::Always);
    let names: Vec<&str> = always.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names.len(),
        only_attachments.len() + 2,
        "attachments plus two bodies: {names:?}"
    );
    assert!(
        names.contains(&"body.txt") && names.contains(&"body.html"),
        "{names:?}"
    );
    let html = always.iter().find(|f| f.0 == "body.html").expect("html");
    assert_eq!(html.1, "text/html");
    assert!(html.2.contains("cid:img1"), "{html:?}");
}

#[test]
fn file_name_patterns_exclude_and_include_attachments() {
    let all = corpus::corpus();
    let mail = all
        .iter()
        .find(|m| m.name == "three_attachments")
        .expect("in corpus");
    let names = |a: &import::mime::Analysis| match &a.decision {
        Decision::Import { attachments } => attachments
            .iter()
            .map(|x| x.display_name())
            .collect::<Vec<_>>(),
        other => panic!("imported, not {other:?}"),
    };
    let mut rules = corpus::attachment_rules();
    // Case-insensitive, several at once.
    rules.exclude_names = vec!["*.xlsx".into(), "chart*".into()];
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    assert_eq!(names(&a), ["report.pdf"]);
    assert!(
        a.skipped
            .iter()
            .any(|s| s.why.contains("attachments.exclude_names `chart*`")),
        "{:?}",
        a.skipped
    );

    rules.exclude_names = Vec::new();
    rules.include_names = vec!["*.png".into(), "report*".into()];
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    assert_eq!(names(&a), ["report.pdf", "chart.png"]);

    // Exclusion wins over inclusion; nothing left is a reason for Error.
    rules.exclude_names = vec!["*".into()];
    let a = analyze(&mail.raw, &rules, &corpus::import_rules());
    let Decision::ToError { reason } = &a.decision else {
        panic!("to error")
    };
    assert_eq!(reason.code, "no_importable_attachment");
    assert!(reason.detail.contains("exclude_names"), "{}", reason.detail);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_are_decided_without_panicking(raw in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = analyze(&raw, &corpus::attachment_rules(), &corpus::import_rules());
    }

    #[test]
    fn damaged_corpus_mails_are_decided_without_panicking(cut in 0usize..4000, flip in any::<u8>()) {
        for mail in corpus::corpus().iter().take(8) {
            let mut raw = mail.raw.clone();
            raw.truncate(cut.min(raw.len()));
            if let Some(b) = raw.get_mut(cut / 2) { *b ^= flip; }
            let _ = analyze(&raw, &corpus::attachment_rules(), &corpus::import_rules());
        }
    }
}
