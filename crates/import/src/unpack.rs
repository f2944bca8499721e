//! Containers inside a mail → the files in them: ZIP archives (encrypted
//! ones opened with the password agreed with the sender) and Outlook's
//! `winmail.dat` (TNEF). Pure, like [`crate::mime`]: bytes in, files or a
//! [`Reason`] out.
//!
//! Limits keep a hostile archive from costing more than a large mail: at
//! most [`MAX_ZIP_DEPTH`] archives deep, [`MAX_ZIP_ENTRIES`] files, no
//! entry compressed more than [`MAX_ZIP_RATIO`]× once it is over 1 MiB,
//! and no more unpacked bytes in all than the importer's `max_mail_bytes`.
//! Sizes are checked while reading, not only from the headers, which a
//! bomb can fake.

use bytes::Bytes;
use std::io::{Cursor, Read};

use domain::content::{ContentKeys, MAX_ZIP_DEPTH, MAX_ZIP_ENTRIES, MAX_ZIP_RATIO};
use secrecy::ExposeSecret;
use zip::ZipArchive;
use zip::result::ZipError;

use crate::mime::{Extracted, Reason};

pub const ZIP_PASSWORD: &str = "zip_password";
pub const ZIP_TOO_LARGE: &str = "zip_too_large";

/// Entries below this size are never called bombs, whatever their ratio.
const RATIO_FLOOR: u64 = 1024 * 1024;

/// What the unpacking of one mail may use, shared by all its containers.
pub struct Budget<'a> {
    pub keys: &'a ContentKeys,
    /// The mail's sender: it chooses the ZIP password.
    pub from: Option<&'a str>,
    /// Unpacked bytes still allowed.
    pub bytes_left: u64,
    pub entries_left: usize,
}

/// The files of a container part.
pub struct Contents {
    pub files: Vec<Extracted>,
    pub container: Container,
}

pub enum Container {
    /// Kept beside its files when the importer says so.
    Zip,
    /// Outlook's wrapping, no document of its own, unless it is damaged
    /// past the files read from it: then it is kept, so nothing is lost.
    Tnef { damaged: bool },
}

/// Opens `part` if it is a container.
pub fn open(part: &Extracted, budget: &mut Budget<'_>) -> Result<Option<Contents>, Reason> {
    if is_zip(part) {
        return unzip(part, budget, 1).map(|files| {
            files.map(|files| Contents {
                files,
                container: Container::Zip,
            })
        });
    }
    if is_tnef(part) {
        return untnef(part, budget);
    }
    Ok(None)
}

fn is_zip(part: &Extracted) -> bool {
    matches!(
        part.content_type.as_str(),
        "application/zip" | "application/x-zip-compressed" | "application/x-zip"
    ) || part
        .filename
        .as_deref()
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".zip"))
}

fn is_tnef(part: &Extracted) -> bool {
    part.content_type == "application/ms-tnef"
        || part
            .filename
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// The files of a ZIP, ZIPs inside it opened in turn; `None` when the
/// bytes are not a readable ZIP (the part is then an ordinary file).
fn unzip(
    part: &Extracted,
    budget: &mut Budget<'_>,
    depth: u32,
) -> Result<Option<Vec<Extracted>>, Reason> {
    let name = part.display_name();
    let Ok(mut archive) = ZipArchive::new(Cursor::new(&part.bytes[..])) else {
        return Ok(None);
    };
    if depth > MAX_ZIP_DEPTH {
        return Err(Reason::new(
            ZIP_TOO_LARGE,
            format!("`{name}` is a ZIP nested more than {MAX_ZIP_DEPTH} archives deep"),
        ));
    }
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let (entry_name, encrypted, size, compressed, is_dir) = match archive.by_index_raw(i) {
            Ok(f) => (
                f.name().map(|n| n.into_owned()).unwrap_or_default(),
                f.encrypted(),
                f.size(),
                f.compressed_size(),
                f.is_dir(),
            ),
            Err(e) => return Err(broken(&name, e)),
        };
        if is_dir {
            continue;
        }
        if budget.entries_left == 0 {
            return Err(Reason::new(
                ZIP_TOO_LARGE,
                format!("`{name}` holds more than {MAX_ZIP_ENTRIES} files"),
            ));
        }
        budget.entries_left -= 1;
        if size > RATIO_FLOOR && size / compressed.max(1) > MAX_ZIP_RATIO {
            return Err(Reason::new(
                ZIP_TOO_LARGE,
                format!(
                    "`{entry_name}` in `{name}` unpacks {size} bytes from {compressed} (over {MAX_ZIP_RATIO}×): a ZIP bomb is not opened"
                ),
            ));
        }
        let password = if encrypted {
            match budget.keys.zip_password_for(budget.from) {
                Some((sender, password)) => Some((sender.to_owned(), password.clone())),
                None => {
                    return Err(Reason::new(
                        ZIP_PASSWORD,
                        format!(
                            "`{name}` is encrypted and no zip_passwords entry matches the sender {}: add one for this sender, then reprocess the mail",
                            budget.from.unwrap_or("(none)")
                        ),
                    ));
                }
            }
        } else {
            None
        };
        let wrong_password = |sender: &str| {
            Reason::new(
                ZIP_PASSWORD,
                format!(
                    "the password of zip_passwords `{sender}` does not open `{entry_name}` in `{name}`: correct it, then reprocess the mail"
                ),
            )
        };
        let file = match &password {
            Some((sender, pw)) => {
                match archive.by_index_decrypt(i, pw.expose_secret().as_bytes()) {
                    Ok(f) => f,
                    Err(ZipError::InvalidPassword) => return Err(wrong_password(sender)),
                    Err(e) => return Err(broken(&name, e)),
                }
            }
            None => match archive.by_index(i) {
                Ok(f) => f,
                Err(e) => return Err(broken(&name, e)),
            },
        };
        let mut bytes = Vec::new();
        // One byte over the budget tells a lying size header from the truth.
        let read = file
            .take(budget.bytes_left.saturating_add(1))
            .read_to_end(&mut bytes);
        if let Err(e) = read {
            // ZipCrypto's check byte lets 1 wrong password in 256 through;
            // the CRC (or AES's MAC) then fails while reading.
            return Err(match &password {
                Some((sender, _)) => wrong_password(sender),
                None => broken(&name, ZipError::Io(e)),
            });
        }
        let got = bytes.len() as u64;
        if got > budget.bytes_left {
            return Err(Reason::new(
                ZIP_TOO_LARGE,
                format!(
                    "`{name}` unpacks to more than the importer's max_mail_bytes: raise max_mail_bytes if the archive is genuine, then reprocess the mail"
                ),
            ));
        }
        budget.bytes_left -= got;
        let member = member_file(&entry_name, bytes);
        // A ZIP in a ZIP: its files, not the inner archive. Only archives
        // named as ZIPs are opened: a .docx or .xlsx is a ZIP inside but a
        // document to keep whole.
        let inner = if is_zip(&member) {
            unzip(&member, budget, depth + 1)?
        } else {
            None
        };
        match inner {
            Some(inner) => files.extend(inner),
            None => files.push(member),
        }
    }
    Ok(Some(files))
}

fn broken(name: &str, e: ZipError) -> Reason {
    Reason::new(
        crate::mime::UNPARSABLE,
        format!("the ZIP `{name}` is damaged ({e}); ask the sender to send it again"),
    )
}

/// A file taken from a container, typed by its name.
fn member_file(path: &str, bytes: Vec<u8>) -> Extracted {
    let content_type = mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned();
    Extracted {
        filename: Some(path.to_owned()),
        fallback_name: "attachment.bin".to_owned(),
        content_type,
        bytes: Bytes::from(bytes),
        inline: false,
    }
}

/// The attachments of a `winmail.dat`; `None` when none can be read (it
/// is then kept as the sender sent it).
fn untnef(part: &Extracted, budget: &mut Budget<'_>) -> Result<Option<Contents>, Reason> {
    let Ok(reading) = crate::tnef::read(&part.bytes) else {
        return Ok(None);
    };
    if reading.files.is_empty() && reading.damage.is_some() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for a in reading.files {
        let got = a.data.len() as u64;
        if got > budget.bytes_left || budget.entries_left == 0 {
            return Err(Reason::new(
                ZIP_TOO_LARGE,
                format!(
                    "`{}` holds more than the importer's max_mail_bytes or more than {MAX_ZIP_ENTRIES} files: raise max_mail_bytes if the mail is genuine, then reprocess it",
                    part.display_name()
                ),
            ));
        }
        budget.bytes_left -= got;
        budget.entries_left -= 1;
        let mut file = member_file(&a.name, a.data);
        if let Some(ct) = a.content_type.filter(|c| c.contains('/')) {
            file.content_type = ct.to_ascii_lowercase();
        }
        files.push(file);
    }
    Ok(Some(Contents {
        files,
        container: Container::Tnef {
            damaged: reading.damage.is_some(),
        },
    }))
}
