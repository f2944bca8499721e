//! S/MIME: a signed mail is verified and unwrapped, an encrypted one
//! decrypted with the importer's key, so its attachments become the
//! document like any mail's. OpenSSL does the cryptography (the same
//! library `openssl smime`/`openssl cms` use): PKCS#7 to verify both
//! `multipart/signed` and opaque `signed-data`, CMS to decrypt both
//! `enveloped-data` and AES-GCM `authEnveloped-data`.
//!
//! A signature is checked in two steps, so the verdict says which failed:
//! first the content against the signature alone (`invalid`), then the
//! signer's certificate chain against the trusted CAs (`untrusted`).

use base64::Engine;
use domain::content::{ContentKeys, OnBadSignature, SmimeSettings};
use domain::document::SmimeVerdict;
use mail_parser::{Message, MessageParser, MimeHeaders};
use openssl::cms::CmsContentInfo;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::SslFiletype;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509Ref};
use secrecy::ExposeSecret;

use crate::mime::{Reason, UNPARSABLE};

pub const SMIME_INVALID_SIGNATURE: &str = "smime_invalid_signature";
pub const SMIME_NO_KEY: &str = "smime_no_key";

/// Signed inside encrypted inside signed is as deep as real mail goes.
const MAX_LAYERS: usize = 4;

/// The mail inside the S/MIME wrapping, and what the wrapping said.
#[derive(Debug)]
pub struct Unwrapped {
    /// The inner MIME entity (headers and body), CRLF line ends.
    pub entity: Vec<u8>,
    pub verdict: SmimeVerdict,
}

enum Wrapping {
    Signed,
    Encrypted,
}

fn wrapping(message: &Message<'_>) -> Option<Wrapping> {
    let ct = message.content_type()?;
    let (ctype, sub) = (
        ct.ctype().to_ascii_lowercase(),
        ct.subtype().unwrap_or_default().to_ascii_lowercase(),
    );
    let attr = |name: &str| ct.attribute(name).map(str::to_ascii_lowercase);
    match (ctype.as_str(), sub.as_str()) {
        ("multipart", "signed")
            if attr("protocol").is_some_and(|p| p.ends_with("pkcs7-signature")) =>
        {
            Some(Wrapping::Signed)
        }
        ("application", "pkcs7-mime" | "x-pkcs7-mime") => match attr("smime-type").as_deref() {
            Some("signed-data") => Some(Wrapping::Signed),
            // Older clients send no smime-type with an encrypted mail.
            Some("enveloped-data" | "authenveloped-data") | None => Some(Wrapping::Encrypted),
            // `certs-only`, `compressed-data`: nothing to verify or decrypt.
            Some(_) => None,
        },
        _ => None,
    }
}

/// Whether the mail is signed or encrypted with S/MIME.
pub fn is_wrapped(message: &Message<'_>) -> bool {
    wrapping(message).is_some()
}

/// Unwraps `raw` if it is an S/MIME mail; `Ok(None)` when it is not.
pub fn unwrap(
    raw: &[u8],
    settings: &SmimeSettings,
    keys: &ContentKeys,
) -> Result<Option<Unwrapped>, Reason> {
    let mut verdict = SmimeVerdict {
        signed: false,
        encrypted: false,
        signature: None,
        signature_detail: None,
        signer: None,
    };
    let mut current = raw.to_vec();
    let mut layers = 0;
    while layers < MAX_LAYERS {
        let Some(message) = MessageParser::default().parse(&current) else {
            break;
        };
        let Some(kind) = wrapping(&message) else {
            break;
        };
        layers += 1;
        current = match kind {
            Wrapping::Encrypted => {
                verdict.encrypted = true;
                decrypt(&current, keys)?
            }
            Wrapping::Signed => {
                let signed = verify(&current, settings)?;
                // The outermost signature is the one the sender made.
                if !verdict.signed {
                    verdict.signed = true;
                    verdict.signature = Some(signed.verdict.to_owned());
                    verdict.signature_detail = signed.detail.clone();
                    verdict.signer = signed.signer.clone();
                }
                if signed.verdict != VALID && settings.on_bad_signature == OnBadSignature::Error {
                    return Err(bad_signature(&signed));
                }
                signed.content
            }
        };
    }
    Ok((layers > 0).then_some(Unwrapped {
        entity: current,
        verdict,
    }))
}

const VALID: &str = "valid";
const INVALID: &str = "invalid";
const UNTRUSTED: &str = "untrusted";

struct Signed {
    content: Vec<u8>,
    verdict: &'static str,
    detail: Option<String>,
    signer: Option<String>,
}

fn bad_signature(s: &Signed) -> Reason {
    let detail = s.detail.as_deref().unwrap_or("no detail");
    let by = s
        .signer
        .as_deref()
        .map(|x| format!(" by {x}"))
        .unwrap_or_default();
    let fix = if s.verdict == UNTRUSTED {
        "if the signer is genuine, add its CA certificate to smime.trusted_ca_pem (or set smime.on_bad_signature to `import`), then reprocess the mail"
    } else {
        "the mail was changed after it was signed: ask the sender to send it again"
    };
    let what = if s.verdict == UNTRUSTED {
        "its signer is not trusted"
    } else {
        "its content does not match the signature"
    };
    Reason::new(
        SMIME_INVALID_SIGNATURE,
        format!("the S/MIME signature{by} does not hold: {what} ({detail}); {fix}"),
    )
}

fn verify(current: &[u8], settings: &SmimeSettings) -> Result<Signed, Reason> {
    let unreadable = |e: ErrorStack| {
        Reason::new(
            UNPARSABLE,
            format!(
                "the S/MIME signature cannot be read ({})",
                openssl_words(&e)
            ),
        )
    };
    let (p7, detached) = match Pkcs7::from_smime(current) {
        Ok(read) => read,
        // A clear-signed mail still carries its content: an unreadable
        // signature is a signature that does not hold, not a lost mail.
        Err(e) => {
            let content = signed_content(current).ok_or_else(|| unreadable(e.clone()))?;
            return Ok(Signed {
                content,
                verdict: INVALID,
                detail: Some(format!(
                    "the signature cannot be read: {}",
                    openssl_words(&e)
                )),
                signer: None,
            });
        }
    };
    let no_certs = Stack::new().map_err(unreadable)?;
    let store = trust_store(settings).map_err(unreadable)?;
    let mut out = Vec::new();
    let (verdict, detail) = match p7.verify(
        &no_certs,
        &store,
        detached.as_deref(),
        Some(&mut out),
        Pkcs7Flags::NOVERIFY,
    ) {
        Err(e) => (INVALID, Some(openssl_words(&e))),
        Ok(()) => match p7.verify(
            &no_certs,
            &store,
            detached.as_deref(),
            None,
            Pkcs7Flags::empty(),
        ) {
            Ok(()) => (VALID, None),
            Err(e) => (UNTRUSTED, Some(openssl_words(&e))),
        },
    };
    let content = match detached {
        Some(content) => content,
        None if verdict == INVALID => {
            // An opaque signature that fails still holds the content.
            let mut out = Vec::new();
            p7.verify(
                &no_certs,
                &store,
                None,
                Some(&mut out),
                Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOSIGS,
            )
            .map_err(unreadable)?;
            out
        }
        None => out,
    };
    let signer = p7
        .signers(&no_certs, Pkcs7Flags::empty())
        .ok()
        .and_then(|s| s.iter().next().and_then(signer_name));
    Ok(Signed {
        content,
        verdict,
        detail,
        signer,
    })
}

/// The signed part of a `multipart/signed` mail (its first part, headers
/// and body), as the sender's client wrote it.
fn signed_content(raw: &[u8]) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let mail_parser::PartType::Multipart(children) = &message.parts.first()?.body else {
        return None;
    };
    let first = message
        .parts
        .get(usize::try_from(*children.first()?).ok()?)?;
    let start = usize::try_from(first.raw_header_offset()).ok()?;
    let end = usize::try_from(first.raw_end_offset()).ok()?;
    raw.get(start..end).map(<[u8]>::to_vec)
}

fn trust_store(settings: &SmimeSettings) -> Result<X509Store, ErrorStack> {
    let mut b = X509StoreBuilder::new()?;
    if settings.platform_roots {
        // The system's roots, wherever this distribution keeps them (the
        // built-in OpenSSL's own default path is under its build prefix).
        let found = openssl_probe::probe();
        if let Some(file) = &found.cert_file {
            b.add_lookup(X509Lookup::file())?
                .load_cert_file(file, SslFiletype::PEM)?;
        }
        for dir in found.cert_dir.iter().filter_map(|d| d.to_str()) {
            b.add_lookup(X509Lookup::hash_dir())?
                .add_dir(dir, SslFiletype::PEM)?;
        }
    }
    if let Some(pem) = &settings.trusted_ca_pem {
        for cert in X509::stack_from_pem(pem.as_bytes())? {
            b.add_cert(cert)?;
        }
    }
    Ok(b.build())
}

/// The signer's address (from the certificate's subject or its alternative
/// names), else its common name.
fn signer_name(cert: &X509Ref) -> Option<String> {
    let entry = |nid: Nid| {
        cert.subject_name()
            .entries_by_nid(nid)
            .next()
            .and_then(|e| e.data().to_string().ok())
    };
    entry(Nid::PKCS9_EMAILADDRESS)
        .or_else(|| {
            cert.subject_alt_names()
                .and_then(|names| names.iter().find_map(|n| n.email().map(str::to_owned)))
        })
        .or_else(|| entry(Nid::COMMONNAME))
}

fn decrypt(current: &[u8], keys: &ContentKeys) -> Result<Vec<u8>, Reason> {
    let (pkey, cert) = key_of(keys).map_err(|why| Reason::new(SMIME_NO_KEY, why))?;
    let cms = CmsContentInfo::smime_read_cms(current).map_err(|e| {
        Reason::new(
            UNPARSABLE,
            format!(
                "the encrypted S/MIME part cannot be read ({})",
                openssl_words(&e)
            ),
        )
    })?;
    cms.decrypt(&pkey, &cert).map_err(|e| {
        let whom = signer_name(&cert).unwrap_or_else(|| "the importer's certificate".to_owned());
        Reason::new(
            SMIME_NO_KEY,
            format!("the mail cannot be decrypted with the key of {whom} ({}): most often it was encrypted for another recipient; upload that recipient's key and certificate as smime.key_pkcs12_base64, then reprocess the mail", openssl_words(&e)),
        )
    })
}

/// The importer's decryption key and certificate from its sealed PKCS#12.
fn key_of(keys: &ContentKeys) -> Result<(PKey<Private>, X509), String> {
    let (Some(p12), Some(password)) = (&keys.smime_pkcs12_base64, &keys.smime_pkcs12_password)
    else {
        return Err("the mail is encrypted with S/MIME and the importer has no key: upload the recipient's key and certificate (PKCS#12) as smime.key_pkcs12_base64, then reprocess the mail".to_owned());
    };
    open_pkcs12(p12.expose_secret(), password.expose_secret())
}

/// Opens a PKCS#12 file given in base64; the error names the field to fix.
pub fn open_pkcs12(base64: &str, password: &str) -> Result<(PKey<Private>, X509), String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64.split_whitespace().collect::<String>())
        .map_err(|_| "smime.key_pkcs12_base64 is not base64: encode the .p12/.pfx file, e.g. `base64 -w0 key.p12`".to_owned())?;
    let parsed = Pkcs12::from_der(&der)
        .map_err(|_| "smime.key_pkcs12_base64 is not a PKCS#12 file: export the key with its certificate as .p12/.pfx".to_owned())?
        .parse2(password)
        .map_err(|_| "smime.pkcs12_password does not open the PKCS#12 file: give the password it was exported with (a file from an old tool that uses RC2 encryption must be exported again: `openssl pkcs12 -legacy -in old.p12 -nodes | openssl pkcs12 -export -out new.p12`)".to_owned())?;
    match (parsed.pkey, parsed.cert) {
        (Some(k), Some(c)) => Ok((k, c)),
        _ => Err(
            "the PKCS#12 file holds no private key with its certificate: export both together"
                .to_owned(),
        ),
    }
}

/// The certificate a PKCS#12 holds, described for the admin (`alice@… (expires …)`).
pub fn describe_pkcs12(base64: &str, password: &str) -> Result<String, String> {
    let (_, cert) = open_pkcs12(base64, password)?;
    let who = signer_name(&cert).unwrap_or_else(|| "a certificate without a name".to_owned());
    Ok(format!("{who} (valid until {})", cert.not_after()))
}

/// OpenSSL's reasons without its source paths: `digest failure; signature failure`.
fn openssl_words(e: &ErrorStack) -> String {
    let words: Vec<String> = e
        .errors()
        .iter()
        .map(|x| {
            let reason = x.reason().unwrap_or("error");
            match x.data() {
                Some(d) if !d.is_empty() => format!("{reason}: {d}"),
                _ => reason.to_owned(),
            }
        })
        .collect();
    if words.is_empty() {
        "OpenSSL gave no reason".to_owned()
    } else {
        words.join("; ")
    }
}
