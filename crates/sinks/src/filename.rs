//! File names from mail are attacker-controlled. [`sanitize`] turns any of
//! them into one plain file name that stays inside the document folder on
//! Linux, macOS and Windows alike; [`unique_names`] makes a document's names
//! distinct (case-insensitively, as Windows and macOS compare them).

use std::collections::HashSet;

/// Longest name in bytes: ext4 and NTFS allow 255, and `" (9999)"` must fit.
pub const MAX_NAME_BYTES: usize = 200;
/// An extension longer than this is not kept when a long name is truncated.
const MAX_EXTENSION_BYTES: usize = 24;
/// The name of a part that has none, or whose name sanitises to nothing.
pub const FALLBACK_STEM: &str = "attachment";

const WINDOWS_RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Characters Windows forbids in names; replaced rather than dropped so the
/// name keeps its shape.
fn is_forbidden(c: char) -> bool {
    matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
}

/// Invisible characters that reorder or hide text: `invoice\u{202e}fdp.exe`
/// would display as `invoiceexe.pdf`.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// One safe file name (never empty, never a path, never `.`/`..`, never
/// hidden, never a Windows device name, at most [`MAX_NAME_BYTES`] bytes).
/// Directory parts are dropped: `../../etc/passwd` becomes `passwd`.
pub fn sanitize(raw: &str) -> String {
    // The last component, whichever separator the sender's system used.
    let base = raw
        .split(['/', '\\'])
        .rev()
        .find(|part| !part.trim().is_empty())
        .unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .map(|c| if is_forbidden(c) { '_' } else { c })
        .collect();
    // Leading dots hide files (and `..` climbs); trailing dots and spaces are
    // silently dropped by Windows, which would merge distinct names.
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut name = if trimmed.is_empty() {
        FALLBACK_STEM.to_owned()
    } else {
        trimmed.to_owned()
    };
    // Cut first, then guard device names: a long name can cut down to
    // one (found by fuzzing: spaces around `com5`).
    name = truncate_keeping_extension(&name, MAX_NAME_BYTES);
    let stem_lower = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_ascii_lowercase();
    if WINDOWS_RESERVED.contains(&stem_lower.as_str()) {
        name.insert(0, '_');
        // The prefix may push a name of exactly the limit over it.
        name = truncate_keeping_extension(&name, MAX_NAME_BYTES);
    }
    name
}

/// `name` cut to at most `max` bytes at a character boundary, keeping a
/// short extension so the file still opens with the right program.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= MAX_EXTENSION_BYTES {
        ext
    } else {
        ""
    };
    let room = max - ext.len();
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let stem = if stem.is_empty() { FALLBACK_STEM } else { stem };
    format!("{stem}{ext}")
}

/// `("report", ".pdf")`; a name without a dot, or only a leading one, has no extension.
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Distinct names for one document, in order: a repeated name (compared
/// case-insensitively) becomes `name (2).pdf`, `name (3).pdf`, ….
pub fn unique_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for raw in names {
        let name = sanitize(raw);
        let mut candidate = name.clone();
        let mut n = 2;
        while !taken.insert(candidate.to_lowercase()) {
            let (stem, ext) = split_extension(&name);
            let suffix = format!(" ({n}){ext}");
            let stem = truncate_keeping_extension(stem, MAX_NAME_BYTES + 8 - suffix.len());
            candidate = format!("{stem}{suffix}");
            n += 1;
        }
        out.push(candidate);
    }
    out
}

/// A default extension for a part without a file name, from its type.
pub fn extension_for(content_type: &str) -> &'static str {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/pdf" => "pdf",
        "message/rfc822" | "message/global" => "eml",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/tiff" => "tif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "text/xml" | "application/xml" => "xml",
        "application/json" => "json",
        "application/zip" => "zip",
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => "p7m",
        "application/pkcs7-signature" | "application/x-pkcs7-signature" => "p7s",
        "application/ms-tnef" | "application/vnd.ms-tnef" => "dat",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    #[test]
    fn paths_and_traversal_are_reduced_to_a_plain_name() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("..\\..\\Windows\\win.ini"), "win.ini");
        assert_eq!(sanitize("/etc/shadow"), "shadow");
        assert_eq!(sanitize("C:\\boot.ini"), "boot.ini");
        assert_eq!(sanitize("C:boot.ini"), "C_boot.ini");
        assert_eq!(sanitize(".."), FALLBACK_STEM);
        assert_eq!(sanitize("../"), FALLBACK_STEM);
        assert_eq!(sanitize(""), FALLBACK_STEM);
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize("report.pdf. . "), "report.pdf");
    }

    #[test]
    fn control_and_invisible_characters_are_removed() {
        assert_eq!(sanitize("in\0voice\n.pdf"), "invoice.pdf");
        assert_eq!(sanitize("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(sanitize("a<b>c:d\"e|f?g*h.txt"), "a_b_c_d_e_f_g_h.txt");
    }

    #[test]
    fn windows_device_names_are_defused() {
        assert_eq!(sanitize("CON"), "_CON");
        assert_eq!(sanitize("con.txt"), "_con.txt");
        assert_eq!(sanitize("lpt1.tar.gz"), "_lpt1.tar.gz");
        assert_eq!(sanitize("console.txt"), "console.txt");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.pdf", "ä".repeat(300));
        let s = sanitize(&long);
        assert!(s.len() <= MAX_NAME_BYTES, "{}", s.len());
        assert!(s.ends_with(".pdf"));
        assert!(s.starts_with("ää"));
    }

    #[test]
    fn non_ascii_names_survive() {
        assert_eq!(sanitize("Rechnung März 2024.pdf"), "Rechnung März 2024.pdf");
        assert_eq!(sanitize("請求書.pdf"), "請求書.pdf");
    }

    #[test]
    fn duplicates_are_numbered() {
        assert_eq!(
            unique_names(["a.pdf", "A.PDF", "a.pdf", "b", "b", "../a.pdf"]),
            ["a.pdf", "A (2).PDF", "a (3).pdf", "b", "b (2)", "a (4).pdf"]
        );
    }

    #[test]
    fn default_extensions_follow_the_type() {
        assert_eq!(extension_for("application/PDF; name=x"), "pdf");
        assert_eq!(extension_for("message/rfc822"), "eml");
        assert_eq!(extension_for("x-unknown/thing"), "bin");
    }

    fn assert_safe(name: &str) {
        assert!(!name.is_empty());
        assert!(name.len() <= MAX_NAME_BYTES + 8, "too long: {}", name.len());
        assert!(!name.contains(['/', '\\', '\0']), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(!name.starts_with('.') && !name.ends_with('.'), "{name:?}");
        assert!(!name.ends_with(' '), "{name:?}");
        let stem = name.split('.').next().unwrap_or_default().trim_end();
        assert!(
            !WINDOWS_RESERVED.contains(&stem.to_ascii_lowercase().as_str()),
            "{name:?}"
        );
        let components: Vec<_> = Path::new(name).components().collect();
        assert_eq!(components.len(), 1, "{name:?}");
        assert!(matches!(components[0], Component::Normal(_)), "{name:?}");
        let joined = Path::new("/spool/doc/attachments").join(name);
        assert_eq!(
            joined.parent(),
            Some(Path::new("/spool/doc/attachments")),
            "{name:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_name_sanitises_to_one_safe_component(raw in any::<String>()) {
            assert_safe(&sanitize(&raw));
        }

        #[test]
        fn path_like_names_stay_inside(parts in prop::collection::vec(
            prop_oneof![Just("..".to_owned()), Just(".".to_owned()), Just(String::new()),
                        Just("CON".to_owned()), Just("a\0b".to_owned()), "[a-zA-Z0-9 ._-]{0,12}",
                        "\\PC{0,300}"],
            0..6),
            sep in prop_oneof![Just("/"), Just("\\")]) {
            assert_safe(&sanitize(&parts.join(sep)));
        }

        #[test]
        fn unique_names_are_distinct_and_safe(raws in prop::collection::vec(
            prop_oneof![Just("a.pdf".to_owned()), Just("A.pdf".to_owned()), Just("".to_owned()),
                        "\\PC{0,250}"], 0..20)) {
            let names = unique_names(raws.iter().map(String::as_str));
            prop_assert_eq!(names.len(), raws.len());
            let lower: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
            prop_assert_eq!(lower.len(), names.len());
            for n in &names {
                assert_safe(n);
            }
        }
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// The fuzz target's properties: one plain name, within the limit,
    /// that sanitising again leaves as it is.
    fn check(raw: &str) {
        let name = sanitize(raw);
        assert!(!name.is_empty());
        assert!(name.len() <= 255, "{} bytes", name.len());
        assert!(!name.contains(['/', '\\', '\0']), "{name:?}");
        assert!(
            name != "." && name != ".." && !name.starts_with('.'),
            "{name:?}"
        );
        assert_eq!(sanitize(&name), name, "not idempotent");
    }

    #[test]
    fn names_found_by_fuzzing() {
        check(include_str!("../tests/fixtures/fuzz-filename-1.txt"));
        // A device name at the very length limit (found by review).
        check(&format!("com5.{}.pdf", "a".repeat(300)));
        check(&format!("com5{}", " ".repeat(300)));
    }
}
