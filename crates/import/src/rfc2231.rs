//! RFC 2231 parameter continuations, decoded as the RFC says: percent-decode
//! every section to octets, join them, then decode the charset once
//! (§3–4). mail-parser 0.11 decodes each section on its own, so a UTF-8
//! character split across `filename*0*` and `filename*1*` comes out as
//! U+FFFD (upstream: stalwartlabs/mail-parser pull request 154, open). This
//! reads the part's raw header instead, only for names that have encoded
//! continuations; every other name is mail-parser's.

use mail_parser::decoders::charsets::map::charset_decoder;

/// The file name of a part whose header carries `filename*N*=` (in
/// `Content-Disposition`) or `name*N*=` (in `Content-Type`) sections, joined
/// and decoded; `None` when there are no encoded continuations.
pub fn continued_file_name(raw_header: &[u8]) -> Option<String> {
    let header = unfold(raw_header);
    field_value(&header, "content-disposition")
        .and_then(|v| continued_parameter(v, "filename"))
        .or_else(|| {
            field_value(&header, "content-type").and_then(|v| continued_parameter(v, "name"))
        })
}

/// The header with folded lines joined (a line break before white space).
fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        out.push_str(line.trim_end_matches('\r'));
        let continues = lines
            .peek()
            .is_some_and(|next| next.starts_with([' ', '\t']));
        if !continues {
            out.push('\n');
        }
    }
    out
}

/// The value of the first header field named `name` (case-insensitive).
fn field_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.trim().eq_ignore_ascii_case(name).then_some(value)
    })
}

/// One section: its number, whether it is percent-encoded, and its text.
struct Section<'v> {
    index: u32,
    encoded: bool,
    value: &'v str,
}

fn continued_parameter(field: &str, name: &str) -> Option<String> {
    let mut sections: Vec<Section<'_>> = parameters(field)
        .filter_map(|(key, value)| {
            let rest = key.strip_prefix(name)?.strip_prefix('*')?;
            let (digits, encoded) = match rest.strip_suffix('*') {
                Some(d) => (d, true),
                None => (rest, false),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Section {
                index: digits.parse().ok()?,
                encoded,
                value,
            })
        })
        .collect();
    if sections.len() < 2 || !sections.iter().any(|s| s.encoded) {
        return None;
    }
    sections.sort_by_key(|s| s.index);
    // Sections count from 0 without gaps; anything else is not a value we
    // can put back together, so mail-parser's reading stands.
    if sections
        .iter()
        .enumerate()
        .any(|(i, s)| u32::try_from(i).ok() != Some(s.index))
    {
        return None;
    }
    let mut charset = "us-ascii";
    let mut octets = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        let mut value = section.value;
        if section.encoded {
            if i == 0 {
                // `charset'language'octets`
                let mut parts = value.splitn(3, '\'');
                let (Some(cs), Some(_lang), Some(rest)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return None;
                };
                if !cs.is_empty() {
                    charset = cs;
                }
                value = rest;
            }
            octets.extend(percent_decode(value));
        } else {
            octets.extend_from_slice(value.as_bytes());
        }
    }
    let text = match charset_decoder(charset.as_bytes()) {
        Some(decode) => decode(&octets),
        None => String::from_utf8_lossy(&octets).into_owned(),
    };
    Some(text)
}

/// `key=value` pairs after the field's first token; quoted values unquoted.
fn parameters(field: &str) -> impl Iterator<Item = (String, &str)> {
    split_outside_quotes(field)
        .into_iter()
        .skip(1)
        .filter_map(|param| {
            let (key, value) = param.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((key.trim().to_ascii_lowercase(), value))
        })
}

fn split_outside_quotes(field: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in field.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(field.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(field.get(start..).unwrap_or_default());
    out
}

/// `%XX` → the octet; anything else, including a broken escape, as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(octet)) => {
                out.push(octet);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_sections_is_joined_before_decoding() {
        let header = b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''Gr%C3%B6%C3;\r\n filename*1*=%9Fe%20M%C3;\r\n filename*2*=%A4rz.pdf\r\n\r\n";
        assert_eq!(
            continued_file_name(header).as_deref(),
            Some("Größe März.pdf")
        );
    }

    #[test]
    fn the_first_sections_charset_holds_for_all_and_literal_sections_mix_in() {
        let header = b"Content-Type: application/pdf;\r\n name*0*=ISO-8859-1''K%F6ln%20;\r\n name*1=\"Rechnung \";\r\n name*2*=%E4.pdf\r\n";
        assert_eq!(
            continued_file_name(header).as_deref(),
            Some("Köln Rechnung ä.pdf")
        );
    }

    #[test]
    fn names_without_encoded_continuations_are_left_to_mail_parser() {
        for header in [
            &b"Content-Disposition: attachment; filename=\"a.pdf\"\r\n"[..],
            b"Content-Disposition: attachment; filename*=UTF-8''%C3%A4.pdf\r\n",
            b"Content-Disposition: attachment; filename*0=\"a\"; filename*1=\"b.pdf\"\r\n",
            // A gap in the numbering.
            b"Content-Disposition: attachment; filename*0*=UTF-8''a; filename*2*=b\r\n",
        ] {
            assert_eq!(continued_file_name(header), None);
        }
    }

    #[test]
    fn broken_escapes_and_odd_input_never_panic() {
        for header in [
            &b"Content-Disposition: attachment; filename*0*=UTF-8''%; filename*1*=%G1%\r\n"[..],
            b"Content-Disposition: ;;;===; filename*0*=''; filename*1*=\r\n",
            b"Content-Disposition: attachment; filename*0*=x; filename*1*=\"%E2\r\n",
            b"",
        ] {
            let _ = continued_file_name(header);
        }
    }
}
