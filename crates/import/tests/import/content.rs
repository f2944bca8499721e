//! Wrapped content against real inputs: ZIPs made by Debian's `zip -P`
//! and `7z -mem=AES256`, S/MIME mails made by the `openssl` command-line
//! tool, and `winmail.dat` files written by Outlook.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use domain::content::{ContentKeys, OnBadSignature, SmimeSettings, ZipPassword, ZipSettings};
use domain::importer::{AttachmentRules, ImportBody};
use domain::rules::ImportRules;
use import::Decision;
use import::mime::{Analysis, Policy, analyze_with};
use secrecy::SecretString;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed (scripts/install-test-deps.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A mail from `from` with a text body and one attachment.
fn mail_with(from: &str, name: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let body = B64.encode(bytes);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "From: {from}\r\nTo: invoices@contoso.example\r\nSubject: Invoice\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{name}@supplier.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

struct Setup {
    attachments: AttachmentRules,
    rules: ImportRules,
    zip: ZipSettings,
    smime: SmimeSettings,
    keys: ContentKeys,
    max_unpacked_bytes: u64,
}

impl Setup {
    fn new() -> Self {
        Self {
            attachments: AttachmentRules {
                allowed_types: vec!["application/pdf".into()],
                exclude_names: vec!["*agb*.pdf".into()],
                ..AttachmentRules::default()
            },
            rules: ImportRules::default(),
            zip: ZipSettings::default(),
            smime: SmimeSettings {
                platform_roots: false,
                ..SmimeSettings::default()
            },
            keys: ContentKeys {
                zip_passwords: vec![ZipPassword {
                    sender: "*@supplier.example".into(),
                    password: SecretString::from("s3cret"),
                }],
                ..ContentKeys::default()
            },
            max_unpacked_bytes: 150 * 1024 * 1024,
        }
    }

    fn analyze(&self, raw: &[u8]) -> Analysis {
        analyze_with(
            raw,
            &Policy {
                attachments: &self.attachments,
                rules: &self.rules,
                body: ImportBody::Never,
                zip: &self.zip,
                smime: &self.smime,
                keys: &self.keys,
                max_unpacked_bytes: self.max_unpacked_bytes,
            },
        )
    }
}

/// A file's name and bytes.
type File = (String, Vec<u8>);

/// The imported files, or the Error reason as (code, detail).
fn files(a: &Analysis) -> Result<Vec<File>, (String, String)> {
    match &a.decision {
        Decision::Import { attachments } => Ok(attachments
            .iter()
            .map(|x| (x.display_name(), x.bytes.to_vec()))
            .collect()),
        Decision::ToError { reason } => Err((reason.code.clone(), reason.detail.clone())),
    }
}

fn names(a: &Analysis) -> Vec<String> {
    files(a)
        .unwrap_or_else(|e| panic!("expected an import, got {e:?}"))
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

const INVOICE: &[u8] = b"%PDF-1.4\n% the invoice\n%%EOF\n";

/// A directory with `invoice.pdf` and `agb.pdf` (the terms, excluded by name).
fn pdfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("invoice.pdf"), INVOICE).expect("write");
    std::fs::write(dir.path().join("agb.pdf"), b"%PDF-1.4\n% terms\n").expect("write");
    dir
}

fn zip_made_by(dir: &Path, program: &str, args: &[&str], out: &str) -> Vec<u8> {
    run(dir, program, args);
    std::fs::read(dir.join(out)).expect("archive")
}

#[test]
fn a_zipcrypto_zip_from_zip_p_opens_with_the_senders_password() {
    let dir = pdfs();
    let zip = zip_made_by(
        dir.path(),
        "zip",
        &["-q", "-P", "s3cret", "a.zip", "invoice.pdf", "agb.pdf"],
        "a.zip",
    );
    let raw = mail_with(
        "Billing <billing@supplier.example>",
        "a.zip",
        "application/zip",
        &zip,
    );
    let a = Setup::new().analyze(&raw);
    let got = files(&a).expect("imported");
    // The terms are excluded by name; the archive is kept beside its files.
    assert_eq!(
        got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["invoice.pdf", "a.zip"]
    );
    assert_eq!(got[0].1, INVOICE);
    assert_eq!(got[1].1, zip);
    assert!(
        a.skipped
            .iter()
            .any(|s| s.name == "agb.pdf" && s.why.contains("in `a.zip`")),
        "{:?}",
        a.skipped
    );
}

#[test]
fn an_aes256_zip_from_7z_opens_and_the_archive_can_be_left_out() {
    let dir = pdfs();
    let zip = zip_made_by(
        dir.path(),
        "7z",
        &[
            "a",
            "-tzip",
            "-ps3cret",
            "-mem=AES256",
            "b.zip",
            "invoice.pdf",
        ],
        "b.zip",
    );
    let raw = mail_with(
        "billing@supplier.example",
        "b.zip",
        "application/x-zip-compressed",
        &zip,
    );
    let mut setup = Setup::new();
    setup.zip.keep_archive = false;
    let got = files(&setup.analyze(&raw)).expect("imported");
    assert_eq!(got, [("invoice.pdf".to_owned(), INVOICE.to_vec())]);
}

#[test]
fn a_wrong_or_missing_password_is_zip_password_naming_the_pattern_or_the_sender() {
    let dir = pdfs();
    for (program, args) in [
        ("zip", vec!["-q", "-P", "other", "c.zip", "invoice.pdf"]),
        (
            "7z",
            vec![
                "a",
                "-tzip",
                "-pother",
                "-mem=AES256",
                "c.zip",
                "invoice.pdf",
            ],
        ),
    ] {
        let _ = std::fs::remove_file(dir.path().join("c.zip"));
        let zip = zip_made_by(dir.path(), program, &args, "c.zip");
        let raw = mail_with("billing@supplier.example", "c.zip", "application/zip", &zip);
        let (code, detail) = files(&Setup::new().analyze(&raw)).expect_err("to Error");
        assert_eq!(code, "zip_password", "{program}");
        assert!(detail.contains("`*@supplier.example`"), "{detail}");

        let raw = mail_with(
            "someone@elsewhere.example",
            "c.zip",
            "application/zip",
            &zip,
        );
        let (code, detail) = files(&Setup::new().analyze(&raw)).expect_err("to Error");
        assert_eq!(code, "zip_password");
        assert!(detail.contains("someone@elsewhere.example"), "{detail}");
    }
}

#[test]
fn zips_in_zips_are_opened_to_a_bounded_depth() {
    let dir = pdfs();
    run(dir.path(), "zip", &["-q", "inner.zip", "invoice.pdf"]);
    run(dir.path(), "zip", &["-q", "outer.zip", "inner.zip"]);
    let outer = std::fs::read(dir.path().join("outer.zip")).expect("zip");
    let raw = mail_with(
        "billing@supplier.example",
        "outer.zip",
        "application/zip",
        &outer,
    );
    assert_eq!(
        names(&Setup::new().analyze(&raw)),
        ["invoice.pdf", "outer.zip"]
    );

    // Four levels: one more than opened.
    run(dir.path(), "zip", &["-q", "l3.zip", "outer.zip"]);
    run(dir.path(), "zip", &["-q", "l4.zip", "l3.zip"]);
    let deep = std::fs::read(dir.path().join("l4.zip")).expect("zip");
    let raw = mail_with(
        "billing@supplier.example",
        "l4.zip",
        "application/zip",
        &deep,
    );
    let (code, detail) = files(&Setup::new().analyze(&raw)).expect_err("to Error");
    assert_eq!(code, "zip_too_large");
    assert!(detail.contains("nested"), "{detail}");
}

#[test]
fn a_zip_bomb_is_zip_too_large_and_so_is_a_zip_over_the_mail_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("zeros.pdf"), vec![0u8; 20 * 1024 * 1024]).expect("write");
    run(dir.path(), "zip", &["-q", "bomb.zip", "zeros.pdf"]);
    let bomb = std::fs::read(dir.path().join("bomb.zip")).expect("zip");
    assert!(bomb.len() < 200 * 1024, "the test's bomb compresses well");
    let raw = mail_with(
        "billing@supplier.example",
        "bomb.zip",
        "application/zip",
        &bomb,
    );
    let (code, detail) = files(&Setup::new().analyze(&raw)).expect_err("to Error");
    assert_eq!(code, "zip_too_large");
    assert!(detail.contains("bomb"), "{detail}");

    let dir = pdfs();
    run(
        dir.path(),
        "zip",
        &["-q", "ok.zip", "invoice.pdf", "agb.pdf"],
    );
    let zip = std::fs::read(dir.path().join("ok.zip")).expect("zip");
    let raw = mail_with(
        "billing@supplier.example",
        "ok.zip",
        "application/zip",
        &zip,
    );
    let mut setup = Setup::new();
    setup.max_unpacked_bytes = INVOICE.len() as u64 + 5;
    let (code, detail) = files(&setup.analyze(&raw)).expect_err("to Error");
    assert_eq!(code, "zip_too_large");
    assert!(detail.contains("max_mail_bytes"), "{detail}");
}

/// The S/MIME fixtures, made afresh by the `openssl` tool.
fn smime_fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smime/make.sh");
    let out = dir.path().to_str().expect("utf-8 path").to_owned();
    run(dir.path(), "bash", &[script.to_str().expect("utf-8"), &out]);
    dir
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn trusting(dir: &Path) -> Setup {
    let mut s = Setup::new();
    s.smime.trusted_ca_pem = Some(String::from_utf8(read(dir, "ca.pem")).expect("pem"));
    s
}

fn with_key(mut s: Setup, dir: &Path, p12: &str) -> Setup {
    s.keys.smime_pkcs12_base64 = Some(SecretString::from(B64.encode(read(dir, p12))));
    s.keys.smime_pkcs12_password = Some(SecretString::from("p12pass"));
    s
}

fn invoice_pdf(dir: &Path) -> Vec<u8> {
    read(dir, "invoice.pdf")
}

#[test]
fn signed_mails_clear_and_opaque_are_verified_and_unwrapped() {
    let fx = smime_fixtures();
    let dir = fx.path();
    for mail in ["signed-clear.eml", "signed-opaque.eml"] {
        let a = trusting(dir).analyze(&read(dir, mail));
        let got = files(&a).unwrap_or_else(|e| panic!("{mail}: {e:?}"));
        assert_eq!(
            got,
            [("invoice.pdf".to_owned(), invoice_pdf(dir))],
            "{mail}"
        );
        let v = a.smime.expect("a verdict");
        assert!(v.signed && !v.encrypted, "{mail}");
        assert_eq!(v.signature.as_deref(), Some("valid"), "{mail}: {v:?}");
        assert_eq!(v.signer.as_deref(), Some("alice@example.com"));
        // The facts are the outer mail's.
        assert_eq!(a.facts.from.as_deref(), Some("alice@example.com"));
    }
    // The system's roots load beside the importer's CA (and do not trust
    // the test CA on their own).
    let mut with_roots = trusting(dir);
    with_roots.smime.platform_roots = true;
    let a = with_roots.analyze(&read(dir, "signed-clear.eml"));
    assert_eq!(a.smime.and_then(|v| v.signature).as_deref(), Some("valid"));
    let mut roots_only = Setup::new();
    roots_only.smime.platform_roots = true;
    let (code, _) =
        files(&roots_only.analyze(&read(dir, "signed-clear.eml"))).expect_err("untrusted");
    assert_eq!(code, "smime_invalid_signature");
}

#[test]
fn a_tampered_or_untrusted_signature_is_smime_invalid_signature_unless_set_to_import() {
    let fx = smime_fixtures();
    let dir = fx.path();
    let tampered = read(dir, "signed-clear-tampered.eml");
    let (code, detail) = files(&trusting(dir).analyze(&tampered)).expect_err("to Error");
    assert_eq!(code, "smime_invalid_signature");
    assert!(detail.contains("does not match the signature"), "{detail}");

    // Not tampered, but its CA is not trusted.
    let (code, detail) =
        files(&Setup::new().analyze(&read(dir, "signed-clear.eml"))).expect_err("to Error");
    assert_eq!(code, "smime_invalid_signature");
    assert!(
        detail.contains("not trusted") && detail.contains("trusted_ca_pem"),
        "{detail}"
    );

    let mut lenient = trusting(dir);
    lenient.smime.on_bad_signature = OnBadSignature::Import;
    let a = lenient.analyze(&tampered);
    assert_eq!(names(&a), ["invoice.pdf"]);
    let v = a.smime.expect("a verdict");
    assert_eq!(v.signature.as_deref(), Some("invalid"));
    assert!(v.signature_detail.is_some());
}

#[test]
fn encrypted_mails_are_decrypted_with_the_importers_key_and_without_it_are_smime_no_key() {
    let fx = smime_fixtures();
    let dir = fx.path();
    for mail in ["encrypted.eml", "encrypted-gcm.eml"] {
        let raw = read(dir, mail);
        let (code, detail) = files(&trusting(dir).analyze(&raw)).expect_err("no key");
        assert_eq!(code, "smime_no_key", "{mail}");
        assert!(detail.contains("smime.key_pkcs12_base64"), "{detail}");

        let a = with_key(trusting(dir), dir, "alice.p12").analyze(&raw);
        let got = files(&a).unwrap_or_else(|e| panic!("{mail}: {e:?}"));
        assert_eq!(
            got,
            [("invoice.pdf".to_owned(), invoice_pdf(dir))],
            "{mail}"
        );
        let v = a.smime.expect("a verdict");
        assert!(v.encrypted && !v.signed);
    }
}

#[test]
fn a_pkcs12_is_checked_with_its_password() {
    let fx = smime_fixtures();
    let p12 = B64.encode(read(fx.path(), "alice.p12"));
    assert!(import::smime::open_pkcs12(&p12, "p12pass").is_ok());
    let e = import::smime::open_pkcs12(&p12, "wrong").expect_err("wrong password");
    assert!(e.starts_with("smime.pkcs12_password"), "{e}");
    let e = import::smime::open_pkcs12("not base64!", "p12pass").expect_err("not base64");
    assert!(e.starts_with("smime.key_pkcs12_base64"), "{e}");
}

fn tnef_fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tnef")
            .join(name),
    )
    .expect("fixture")
}

#[test]
fn a_winmail_dat_from_outlook_gives_its_attachments_under_their_long_names() {
    let raw = mail_with(
        "billing@supplier.example",
        "winmail.dat",
        "application/ms-tnef",
        &tnef_fixture("quick-winmail.dat"),
    );
    let mut setup = Setup::new();
    setup.attachments = AttachmentRules::default();
    let a = setup.analyze(&raw);
    let mut got = names(&a);
    got.sort();
    assert_eq!(
        got,
        [
            "quick.doc",
            "quick.html",
            "quick.pdf",
            "quick.txt",
            "quick.xml"
        ]
    );
    // Outlook's wrapping itself is no document.
    assert!(
        a.skipped.iter().any(|s| s.name == "winmail.dat"),
        "{:?}",
        a.skipped
    );

    // With the PDF rule, only the PDF passes.
    assert_eq!(names(&Setup::new().analyze(&raw)), ["quick.pdf"]);
}

#[test]
fn an_office_file_in_a_zip_stays_whole() {
    let dir = pdfs();
    // A .docx is a ZIP inside; its parts compress far better than 200× when
    // large, which must not make the mail a "ZIP bomb".
    std::fs::write(dir.path().join("document.xml"), vec![b'x'; 4 * 1024 * 1024]).expect("write");
    run(dir.path(), "zip", &["-q", "report.docx", "document.xml"]);
    run(
        dir.path(),
        "zip",
        &["-q", "office.zip", "report.docx", "invoice.pdf"],
    );
    let zip = std::fs::read(dir.path().join("office.zip")).expect("zip");
    let docx = std::fs::read(dir.path().join("report.docx")).expect("docx");
    let raw = mail_with(
        "billing@supplier.example",
        "office.zip",
        "application/zip",
        &zip,
    );
    let mut setup = Setup::new();
    setup.attachments = AttachmentRules::default();
    setup.zip.keep_archive = false;
    let got = files(&setup.analyze(&raw)).expect("imported");
    assert_eq!(
        got,
        [
            ("report.docx".to_owned(), docx),
            ("invoice.pdf".to_owned(), INVOICE.to_vec())
        ]
    );
}
