//! A mail → what it becomes, on any bytes: no panic, with ZIP passwords,
//! the body and an S/MIME policy in play, and the decision consistent
//! (an import has files, an Error has a reason code).
#![no_main]

use domain::content::{ContentKeys, SmimeSettings, ZipPassword, ZipSettings};
use domain::importer::{AttachmentRules, ImportBody};
use domain::rules::ImportRules;
use import::mime::{Decision, Policy, analyze_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let attachments = AttachmentRules {
        exclude_names: vec!["*agb*.pdf".into()],
        ..AttachmentRules::default()
    };
    let rules = ImportRules::default();
    let keys = ContentKeys {
        zip_passwords: vec![ZipPassword {
            sender: "*".into(),
            password: secrecy::SecretString::from("s3cret"),
        }],
        ..ContentKeys::default()
    };
    let (zip, smime) = (ZipSettings::default(), SmimeSettings::default());
    let analysis = analyze_with(
        data,
        &Policy {
            attachments: &attachments,
            rules: &rules,
            body: ImportBody::WhenNoAttachment,
            zip: &zip,
            smime: &smime,
            keys: &keys,
            max_unpacked_bytes: 64 * 1024 * 1024,
        },
    );
    match analysis.decision {
        Decision::Import { attachments } => assert!(!attachments.is_empty()),
        Decision::ToError { reason } => assert!(!reason.code.is_empty()),
    }
});
