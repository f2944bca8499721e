//! The attachments of a TNEF stream (`winmail.dat`, `application/ms-tnef`;
//! [MS-OXTNEF]), read leniently. Outlook and Exchange write attributes and
//! MAPI properties that no reader knows all of, checksums nobody verifies
//! and bytes after the last attribute. A strict reader (the `tnef` crate)
//! turns any of these into a mail whose attachments are lost. So this one
//! skips what it does not know, does not check checksums, and when the
//! stream is damaged it stops and keeps the attachments it has read.
//!
//! Every length and count in the stream is the sender's claim. It is checked
//! against the bytes that are really there before anything is read, and
//! nothing is allocated from it: a hostile count must not exhaust memory
//! or time.

use std::borrow::Cow;

use mail_parser::decoders::charsets::{DecoderFnc, map::charset_decoder};

/// A file found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefFile {
    pub name: String,
    pub data: Vec<u8>,
    /// The sender's MIME type (`PR_ATTACH_MIME_TAG`), if it gave one.
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TnefError {
    #[error("not TNEF: the bytes do not start with the TNEF signature 0x223E9F78")]
    NotTnef,
    #[error("the TNEF stream is cut off: it ends inside the item at byte {offset}")]
    Truncated { offset: usize },
    #[error(
        "the TNEF stream is damaged at byte {offset}: attribute level {level} is \
         neither message (1) nor attachment (2)"
    )]
    BadLevel { offset: usize, level: u8 },
}

/// What [`read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub files: Vec<TnefFile>,
    /// Why reading stopped before the end of the stream, if it did. The
    /// attachments after that point are lost: a caller that drops the
    /// `winmail.dat` in favour of `files` loses them with it.
    pub damage: Option<TnefError>,
}

/// The attachments of a TNEF stream, in stream order.
///
/// # Errors
///
/// It fails when nothing can be recovered: the bytes are not TNEF, or the
/// stream is damaged before any attachment was read. A caller can then
/// keep the `winmail.dat` as it came, rather than lose it for an empty
/// list. An intact stream with no attachments (a TNEF that carries only a
/// rich-text body) is `Ok` and empty.
pub fn read_attachments(bytes: &[u8]) -> Result<Vec<TnefFile>, TnefError> {
    let reading = read(bytes)?;
    match reading.damage {
        Some(damage) if reading.files.is_empty() => Err(damage),
        _ => Ok(reading.files),
    }
}

/// The attachments of a TNEF stream and whether the stream was damaged.
///
/// # Errors
///
/// Only when the bytes are not TNEF or the header is cut off.
pub fn read(bytes: &[u8]) -> Result<Reading, TnefError> {
    let mut input = Cursor::new(bytes);
    if input.u32() != Some(SIGNATURE) {
        return Err(TnefError::NotTnef);
    }
    // The legacy key: nothing later depends on its value.
    if input.u16().is_none() {
        return Err(TnefError::Truncated {
            offset: input.offset(),
        });
    }
    let mut message = Message::default();
    let damage = loop {
        // A remainder too short for an attribute header is padding, not a
        // cut attribute: Exchange Online ends streams with a CRLF.
        if input.remaining() < ATTRIBUTE_HEADER {
            break None;
        }
        let offset = input.offset();
        let (Some(level), Some(id), Some(len)) = (input.u8(), input.u32(), input.size()) else {
            break Some(TnefError::Truncated { offset });
        };
        if level != LEVEL_MESSAGE && level != LEVEL_ATTACHMENT {
            // The rest is not attributes (or not aligned to them any more),
            // so reading on would only pick up noise.
            break Some(TnefError::BadLevel { offset, level });
        }
        // A cut attribute's data is not kept: half a PDF is no document.
        let Some(data) = input.take(len) else {
            break Some(TnefError::Truncated { offset });
        };
        message.attribute(id, data);
        // The checksum is not checked: a wrong one means some wrong bytes
        // inside this attribute, but its length still frames it, so the
        // attributes after it are sound, and a file with a flipped byte is
        // worth more than a lost one. A stream that ends without the last
        // checksum has lost nothing.
        if input.take(CHECKSUM).is_none() {
            break None;
        }
    };
    Ok(Reading {
        files: message.finish(),
        damage,
    })
}

const SIGNATURE: u32 = 0x223E_9F78;
/// Level (1 byte), attribute id (4) and data length (4).
const ATTRIBUTE_HEADER: usize = 9;
const CHECKSUM: usize = 2;
const LEVEL_MESSAGE: u8 = 1;
const LEVEL_ATTACHMENT: u8 = 2;

// Attribute ids without their high word, which only repeats the data type
// (atpString, atpByte, …): the low word alone names the attribute, and no
// two attributes of either level share it, so a writer that gets the type
// word wrong still says which attribute it means.
const ATTRIBUTE_ID: u32 = 0xFFFF;
const ATT_ATTACH_DATA: u32 = 0x800F;
const ATT_ATTACH_TITLE: u32 = 0x8010;
const ATT_ATTACH_REND_DATA: u32 = 0x9002;
const ATT_ATTACHMENT: u32 = 0x9005;
const ATT_OEM_CODEPAGE: u32 = 0x9007;

const MULTI_VALUED: u16 = 0x1000;
const PT_OBJECT: u16 = 0x000D;
const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const PT_BINARY: u16 = 0x0102;
const PR_ATTACH_DATA_OBJ: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;
const FIRST_NAMED_ID: u16 = 0x8000;
const GUID_LEN: usize = 16;
const NAME_KIND_ID: u32 = 0;
const NAME_KIND_STRING: u32 = 1;

const FALLBACK_NAME: &str = "attachment.bin";

/// The message's state while its attributes are read. Attachments stay
/// slices of the input until the end, so that their names are decoded with
/// the code page however late it comes, and nothing is copied for an
/// attachment that turns out to have no data.
#[derive(Default)]
struct Message<'a> {
    codepage: Option<u32>,
    done: Vec<Attachment<'a>>,
    /// The attachment being read. Before the first attAttachRendData it
    /// collects attachment attributes that come without one: no writer is
    /// known to emit them so, but dropping them would lose a file.
    current: Attachment<'a>,
}

#[derive(Default)]
struct Attachment<'a> {
    title: Option<&'a [u8]>,
    data: Option<&'a [u8]>,
    properties: Properties<'a>,
}

impl<'a> Message<'a> {
    fn attribute(&mut self, id: u32, data: &'a [u8]) {
        match id & ATTRIBUTE_ID {
            ATT_ATTACH_REND_DATA => self.done.push(std::mem::take(&mut self.current)),
            ATT_ATTACH_TITLE => self.current.title = Some(data),
            ATT_ATTACH_DATA => self.current.data = Some(data),
            ATT_ATTACHMENT => self.current.properties.merge(read_properties(data)),
            // The second u32 (the secondary code page) is never used.
            ATT_OEM_CODEPAGE => self.codepage = Cursor::new(data).u32(),
            _ => {}
        }
    }

    fn finish(self) -> Vec<TnefFile> {
        let narrow = narrow_decoder(self.codepage);
        self.done
            .into_iter()
            .chain([self.current])
            .filter_map(|a| a.into_file(narrow))
            .collect()
    }
}

impl Attachment<'_> {
    fn into_file(self, narrow: DecoderFnc) -> Option<TnefFile> {
        let p = self.properties;
        // An empty attAttachData beside a PR_ATTACH_DATA_OBJ is a writer
        // that put the bytes in the property; a lone empty one is an
        // empty file.
        let data = self
            .data
            .filter(|d| !d.is_empty())
            .or(p.data_obj)
            .or(self.data)?;
        // The long name first: attAttachTitle is the 8.3 name (QUICK~1.HTM)
        // whenever the real one is longer.
        let name = p
            .long_name
            .and_then(|t| t.decode(narrow))
            .or_else(|| self.title.and_then(|t| Text::Narrow(t).decode(narrow)))
            .or_else(|| p.file_name.and_then(|t| t.decode(narrow)))
            .unwrap_or_else(|| FALLBACK_NAME.to_owned());
        // An embedded message is itself a TNEF stream; saying so lets it be
        // told from an opaque `attachment.bin`.
        let content_type = p
            .mime_tag
            .and_then(|t| t.decode(narrow))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .or_else(|| {
                data.starts_with(&SIGNATURE.to_le_bytes())
                    .then(|| "application/ms-tnef".to_owned())
            });
        Some(TnefFile {
            name,
            data: data.to_vec(),
            content_type,
        })
    }
}

/// The attachment properties this reader uses, from an attAttachment block.
#[derive(Default, Clone, Copy)]
struct Properties<'a> {
    long_name: Option<Text<'a>>,
    file_name: Option<Text<'a>>,
    mime_tag: Option<Text<'a>>,
    data_obj: Option<&'a [u8]>,
}

impl<'a> Properties<'a> {
    fn merge(&mut self, later: Self) {
        self.long_name = self.long_name.or(later.long_name);
        self.file_name = self.file_name.or(later.file_name);
        self.mime_tag = self.mime_tag.or(later.mime_tag);
        self.data_obj = self.data_obj.or(later.data_obj);
    }

    fn record(&mut self, id: u16, kind: u16, value: &'a [u8]) {
        let text = match kind {
            PT_STRING8 => Some(Text::Narrow(value)),
            PT_UNICODE => Some(Text::Wide(value)),
            _ => None,
        };
        let slot = match id {
            PR_ATTACH_LONG_FILENAME => &mut self.long_name,
            PR_ATTACH_FILENAME => &mut self.file_name,
            PR_ATTACH_MIME_TAG => &mut self.mime_tag,
            PR_ATTACH_DATA_OBJ => {
                // A PT_OBJECT value starts with the interface id of the
                // object (IID_IMessage, IID_IStorage, …), counted in its size.
                let data = match kind {
                    PT_BINARY => Some(value),
                    PT_OBJECT => value.get(GUID_LEN..),
                    _ => None,
                };
                self.data_obj = self.data_obj.or(data);
                return;
            }
            _ => return,
        };
        *slot = slot.or(text);
    }
}

/// The properties of a MAPI property block (attAttachment). A block that
/// cannot be read to its end keeps what was found before the trouble.
fn read_properties(block: &[u8]) -> Properties<'_> {
    let mut found = Properties::default();
    let mut input = Cursor::new(block);
    let Some(count) = input.u32() else {
        return found;
    };
    // Every property reads at least its 4-byte tag or stops the loop, so
    // the bytes there are bound the work, whatever `count` claims.
    for _ in 0..count {
        if read_property(&mut input, &mut found).is_none() {
            break;
        }
    }
    found
}

/// One property; `None` when it cannot be read, which ends the block: an
/// unknown type has an unknown size, so the next property's start is lost.
fn read_property<'a>(input: &mut Cursor<'a>, found: &mut Properties<'a>) -> Option<()> {
    let kind = input.u16()?;
    let id = input.u16()?;
    if id >= FIRST_NAMED_ID {
        skip_property_name(input)?;
    }
    let multi = kind & MULTI_VALUED != 0;
    let base = kind & !MULTI_VALUED;
    if matches!(base, PT_STRING8 | PT_UNICODE | PT_BINARY | PT_OBJECT) {
        // Variable-length values are counted even when single-valued.
        let values = input.u32()?;
        // Each value reads at least its 4-byte size, so this loop is bound
        // by the input too.
        for index in 0..values {
            let len = input.size()?;
            let value = input.take(len)?;
            input.skip_padding(len);
            if index == 0 && !multi && id < FIRST_NAMED_ID {
                found.record(id, base, value);
            }
        }
    } else {
        let size = fixed_size(base)?;
        let values = if multi { input.size()? } else { 1 };
        input.take(values.checked_mul(size)?)?;
    }
    Some(())
}

/// Skips a named property's name (GUID, kind, then a number or a string).
fn skip_property_name(input: &mut Cursor<'_>) -> Option<()> {
    input.take(GUID_LEN)?;
    match input.u32()? {
        NAME_KIND_ID => {
            input.u32()?;
        }
        NAME_KIND_STRING => {
            let len = input.size()?;
            input.take(len)?;
            input.skip_padding(len);
        }
        _ => return None,
    }
    Some(())
}

/// The size of one value of a fixed-size property type in TNEF, where
/// every value takes a multiple of 4 bytes: `PT_SHORT` and `PT_BOOLEAN` are
/// padded to 4.
fn fixed_size(kind: u16) -> Option<usize> {
    Some(match kind {
        0x0001 => 0,                                     // PT_NULL
        0x0002 | 0x0003 | 0x0004 | 0x000A | 0x000B => 4, // SHORT LONG FLOAT ERROR BOOLEAN
        0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => 8, // DOUBLE CURRENCY APPTIME I8 SYSTIME
        0x0048 => 16,                                    // CLSID
        _ => return None,
    })
}

/// A string property's bytes, not yet decoded.
#[derive(Clone, Copy)]
enum Text<'a> {
    /// In the stream's code page (attOemCodepage).
    Narrow(&'a [u8]),
    /// UTF-16LE.
    Wide(&'a [u8]),
}

impl Text<'_> {
    /// The text up to its first NUL (the terminator, and whatever a writer
    /// left after it); `None` when that is empty.
    fn decode(self, narrow: DecoderFnc) -> Option<String> {
        let text = match self {
            Text::Narrow(bytes) => {
                let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
                // Text that is valid UTF-8 is taken as UTF-8 whatever the
                // code page says: writers that emit UTF-8 do not always say
                // so, and text in a legacy code page is almost never valid
                // UTF-8 unless it is ASCII, which reads the same either way.
                match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_owned(),
                    Err(_) => narrow(bytes),
                }
            }
            Text::Wide(bytes) => {
                let units = bytes
                    .chunks_exact(2)
                    .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
                    .map(u16::from_le_bytes)
                    .take_while(|&unit| unit != 0);
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect()
            }
        };
        (!text.is_empty()).then_some(text)
    }
}

/// The decoder for the stream's 8-bit strings. Without attOemCodepage, or
/// with one mail-parser cannot decode, Windows-1252: it is Outlook's code
/// page in the West, and the one the Apache POI fixtures declare.
fn narrow_decoder(codepage: Option<u32>) -> DecoderFnc {
    codepage
        .and_then(charset_of)
        .and_then(|label| charset_decoder(label.as_bytes()))
        .or_else(|| charset_decoder(b"windows-1252"))
        .unwrap_or(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// The charset label of a Windows code page. mail-parser decodes the
/// multi-byte ones (932, 936, 949, 950, …) only with its `full_encoding`
/// feature; without it they come out as lossy UTF-8.
fn charset_of(codepage: u32) -> Option<Cow<'static, str>> {
    let label = match codepage {
        850 => "ibm850",
        866 => "ibm866",
        874 => "windows-874",
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        1250..=1258 => return Some(Cow::Owned(format!("windows-{codepage}"))),
        10000 => "macintosh",
        20866 => "koi8-r",
        21866 => "koi8-u",
        20932 | 51932 => "euc-jp",
        28591..=28599 => {
            let part = codepage.checked_sub(28590)?;
            return Some(Cow::Owned(format!("iso-8859-{part}")));
        }
        28603 => "iso-8859-13",
        28605 => "iso-8859-15",
        50220..=50222 => "iso-2022-jp",
        54936 => "gb18030",
        _ => return None,
    };
    Some(Cow::Borrowed(label))
}

/// Reads little-endian values off the front of a slice; every read checks
/// that the bytes are there.
struct Cursor<'a> {
    rest: &'a [u8],
    total: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            total: bytes.len(),
        }
    }

    fn offset(&self) -> usize {
        self.total.saturating_sub(self.rest.len())
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(u8::from_le_bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A u32 length or count, as a size.
    fn size(&mut self) -> Option<usize> {
        usize::try_from(self.u32()?).ok()
    }

    /// Skips the padding after a value of `len` bytes. A block that ends
    /// before its last value's padding has lost nothing, so missing
    /// padding is no error.
    fn skip_padding(&mut self, len: usize) {
        let padding = (4 - len % 4) % 4;
        self.rest = self.rest.get(padding..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    const QUICK: &[u8] = include_bytes!("../tests/fixtures/tnef/quick-winmail.dat");
    const SAMPLE1: &[u8] = include_bytes!("../tests/fixtures/tnef/winmail-sample1.dat");
    const BUG52400: &[u8] = include_bytes!("../tests/fixtures/tnef/bug52400-winmail-simple.dat");
    const OOM: &[u8] = include_bytes!("../tests/fixtures/tnef/oom.tnef");

    fn sha256(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn summary(files: &[TnefFile]) -> Vec<(&str, usize, String)> {
        files
            .iter()
            .map(|f| (f.name.as_str(), f.data.len(), sha256(&f.data)))
            .collect()
    }

    fn owned(want: &[(&'static str, usize, &str)]) -> Vec<(&'static str, usize, String)> {
        want.iter().map(|&(n, s, h)| (n, s, h.to_owned())).collect()
    }

    #[test]
    fn quick_winmail_has_its_five_files_under_their_long_names() {
        let files = read_attachments(QUICK).unwrap();
        assert_eq!(
            summary(&files),
            owned(&[
                (
                    "quick.doc",
                    19968,
                    "1240639edc264abf046523eed4bd0a154b0c4e487a9ec8b74be9d0c51b7de124"
                ),
                (
                    "quick.html",
                    428,
                    "5e7daab0b3edcfeec62bbde2371c95fc4fe7099469448abcee94cd49ffba072e"
                ),
                (
                    "quick.pdf",
                    18638,
                    "263bea348ce44185f191b32efee29be44ef7ef7cc45ed32b9ae6753b1103d7d0"
                ),
                (
                    "quick.txt",
                    235,
                    "becf39adaa5a3526600ed1d443b5fd382e9879c219a08d183c0660382c59fb56"
                ),
                (
                    "quick.xml",
                    143,
                    "cc1704ac3bf0c4b83388c4e1912bbca08cc4dadcfc551521112b55794770a20c"
                ),
            ])
        );
        assert_eq!(read(QUICK).unwrap().damage, None);
    }

    #[test]
    fn winmail_sample1_has_a_jpeg_and_a_bookmark_file() {
        let files = read_attachments(SAMPLE1).unwrap();
        assert_eq!(
            summary(&files),
            owned(&[
                (
                    "zappa_av1.jpg",
                    2937,
                    "bea844f30e0fcc20fad419a0d11032a6465da93c1da185a1196949955994409a"
                ),
                (
                    "bookmark.htm",
                    85805,
                    "1e08d6e23c75ff80ac992eebc24c2943c7843b7dfee235966b37de5eb4362599"
                ),
            ])
        );
        assert!(files[0].data.starts_with(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert_eq!(read(SAMPLE1).unwrap().damage, None);
    }

    #[test]
    fn the_fixtures_carry_no_mime_tags() {
        for fixture in [QUICK, SAMPLE1] {
            for file in read_attachments(fixture).unwrap() {
                assert_eq!(file.content_type, None, "{}", file.name);
            }
        }
    }

    /// Every attMsgProps and attAttachment block of the real fixtures reads
    /// to its last byte: the property sizes here are Outlook's and
    /// Exchange Online's, not only this reader's own idea of them.
    #[test]
    fn every_property_block_in_the_fixtures_reads_to_its_end() {
        let mut blocks = 0;
        for fixture in [QUICK, SAMPLE1, BUG52400] {
            let mut input = Cursor::new(fixture);
            input.take(6).unwrap();
            while input.remaining() >= ATTRIBUTE_HEADER {
                let (_, id, len) = (
                    input.u8().unwrap(),
                    input.u32().unwrap(),
                    input.size().unwrap(),
                );
                let data = input.take(len).unwrap();
                input.take(CHECKSUM).unwrap();
                if !matches!(id, 0x0006_9003 | 0x0006_9005) {
                    continue;
                }
                let mut props = Cursor::new(data);
                let count = props.u32().unwrap();
                let mut found = Properties::default();
                for i in 0..count {
                    assert!(
                        read_property(&mut props, &mut found).is_some(),
                        "property {i} of {count} in attribute {id:#010x}"
                    );
                }
                assert_eq!(props.remaining(), 0, "attribute {id:#010x}");
                blocks += 1;
            }
        }
        // quick: 1 + 5, sample1: 1 + 2, bug52400: 1.
        assert_eq!(blocks, 10);
    }

    #[test]
    fn a_body_only_stream_with_a_trailing_crlf_has_no_attachments() {
        assert!(BUG52400.ends_with(b"\r\n"));
        assert_eq!(read_attachments(BUG52400), Ok(vec![]));
        assert_eq!(read(BUG52400).unwrap().damage, None);
    }

    #[test]
    fn the_hostile_oom_stream_is_read_without_a_huge_allocation() {
        // Its hostile count is in attMsgProps, which nothing here reads, so
        // the stream itself is intact and has no attachments.
        let result = read_attachments(OOM);
        assert!(
            matches!(result, Ok(ref files) if files.is_empty()),
            "{result:?}"
        );
    }

    #[test]
    fn the_oom_property_block_read_as_attachment_properties_stops_cleanly() {
        // The attMsgProps data of oom.tnef: a PT_MV_LONG named property
        // claiming 0x340D0003 values in a block that ends after the count.
        let block = &OOM[15..51];
        assert_eq!(&block[block.len() - 4..], &0x340D_0003_u32.to_le_bytes());
        let found = read_properties(block);
        assert!(found.long_name.is_none() && found.data_obj.is_none());

        // The same block as an attachment's attAttachment, with data.
        let bytes = stream(&[
            (2, 0x0006_9002, &[1, 0, 0, 0]),
            (2, 0x0006_800F, b"payload"),
            (2, 0x0006_9005, block),
        ]);
        let files = read_attachments(&bytes).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "attachment.bin");
        assert_eq!(files[0].data, b"payload");
    }

    #[test]
    fn every_prefix_of_quick_winmail_gives_a_prefix_of_its_files() {
        let full = read_attachments(QUICK).unwrap();
        let mut most = 0;
        for len in 0..=QUICK.len() {
            match read_attachments(&QUICK[..len]) {
                Ok(files) => {
                    assert!(files.len() <= full.len(), "at {len}");
                    for (i, (got, want)) in files.iter().zip(&full).enumerate() {
                        assert_eq!(got.data, want.data, "file {i} of the first {len} bytes");
                        // The last file may have lost its name to the cut
                        // (its attAttachment was not reached); earlier ones
                        // are whole.
                        if i + 1 < files.len() {
                            assert_eq!(got.name, want.name, "file {i} of the first {len} bytes");
                        }
                    }
                    most = most.max(files.len());
                }
                Err(TnefError::NotTnef) => assert!(len < 4, "at {len}"),
                Err(TnefError::Truncated { offset }) => assert!(offset < len || len < 6),
                Err(e @ TnefError::BadLevel { .. }) => panic!("at {len}: {e}"),
            }
        }
        assert_eq!(most, full.len());
    }

    #[test]
    fn a_cut_in_a_later_attachment_keeps_the_earlier_ones() {
        // Just inside quick.pdf's attAttachData: quick.doc and quick.html
        // are whole.
        let pdf = read_attachments(QUICK).unwrap()[2].data.clone();
        let at = QUICK.windows(64).position(|w| w == &pdf[..64]).unwrap();
        let reading = read(&QUICK[..at + 100]).unwrap();
        let names: Vec<_> = reading.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["quick.doc", "quick.html"]);
        assert!(matches!(reading.damage, Some(TnefError::Truncated { offset }) if offset < at));
    }

    #[test]
    fn a_stream_cut_before_any_attachment_is_an_error() {
        assert!(matches!(
            read_attachments(&QUICK[..200]),
            Err(TnefError::Truncated { .. })
        ));
    }

    #[test]
    fn bytes_that_are_not_tnef_are_refused() {
        assert_eq!(
            read_attachments(b"PK\x03\x04 this is a zip, not TNEF"),
            Err(TnefError::NotTnef)
        );
        assert_eq!(read_attachments(b""), Err(TnefError::NotTnef));
        assert_eq!(read_attachments(b"\x78\x9f\x3e"), Err(TnefError::NotTnef));
        assert_eq!(
            read_attachments(b"\x78\x9f\x3e\x22\x01"),
            Err(TnefError::Truncated { offset: 4 })
        );
        assert_eq!(read_attachments(b"\x78\x9f\x3e\x22\x01\x00"), Ok(vec![]));
    }

    // A hand-built stream, for what the fixtures do not show.

    fn stream(attributes: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut out = SIGNATURE.to_le_bytes().to_vec();
        out.extend_from_slice(&0x1234_u16.to_le_bytes());
        for &(level, id, data) in attributes {
            out.push(level);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
            out.extend_from_slice(data);
            let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
            out.extend_from_slice(&sum.to_le_bytes());
        }
        out
    }

    fn padded(out: &mut Vec<u8>, value: &[u8]) {
        out.extend_from_slice(&u32::try_from(value.len()).unwrap().to_le_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    /// A single-valued variable-length property.
    fn var(kind: u16, id: u16, value: &[u8]) -> Vec<u8> {
        let mut out = [kind.to_le_bytes(), id.to_le_bytes()].concat();
        out.extend_from_slice(&1u32.to_le_bytes());
        padded(&mut out, value);
        out
    }

    fn string8(id: u16, text: &str) -> Vec<u8> {
        var(PT_STRING8, id, &[text.as_bytes(), b"\0"].concat())
    }

    fn unicode(id: u16, text: &str) -> Vec<u8> {
        let bytes: Vec<u8> = text
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        var(PT_UNICODE, id, &bytes)
    }

    fn block(properties: &[Vec<u8>]) -> Vec<u8> {
        let mut out = u32::try_from(properties.len())
            .unwrap()
            .to_le_bytes()
            .to_vec();
        for p in properties {
            out.extend_from_slice(p);
        }
        out
    }

    const REND: (u8, u32, &[u8]) = (2, 0x0006_9002, &[1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);

    fn names(bytes: &[u8]) -> Vec<String> {
        read_attachments(bytes)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect()
    }

    #[test]
    fn the_name_is_the_long_name_then_the_title_then_the_short_name() {
        let props_long = block(&[
            string8(PR_ATTACH_FILENAME, "SHORT~1.TXT"),
            unicode(PR_ATTACH_LONG_FILENAME, "Résumé – long name.txt"),
        ]);
        let props_short = block(&[string8(PR_ATTACH_FILENAME, "SHORT~2.TXT")]);
        let bytes = stream(&[
            REND,
            (2, 0x0001_8010, b"TITLE~1.TXT\0"),
            (2, 0x0006_800F, b"one"),
            (2, 0x0006_9005, &props_long),
            REND,
            (2, 0x0001_8010, b"title two.txt\0\0\0"),
            (2, 0x0006_800F, b"two"),
            (2, 0x0006_9005, &props_short),
            REND,
            (2, 0x0006_800F, b"three"),
            (2, 0x0006_9005, &props_short),
            REND,
            (2, 0x0006_800F, b"four"),
            (2, 0x0001_8010, b"\0"),
        ]);
        assert_eq!(
            names(&bytes),
            [
                "Résumé – long name.txt",
                "title two.txt",
                "SHORT~2.TXT",
                "attachment.bin"
            ]
        );
    }

    #[test]
    fn unknown_attributes_bad_checksums_and_short_trailers_are_ignored() {
        let mut bytes = stream(&[
            (1, 0x0008_9006, &[0, 0, 1, 0]),
            (1, 0x0042_4242, b"something new"),
            REND,
            (2, 0x0003_8013, &[0; 14]),
            (2, 0x0007_7777, b"unknown attachment attribute"),
            (2, 0x0001_8010, b"a.txt\0"),
            (2, 0x0006_800F, b"data"),
        ]);
        // Spoil every checksum.
        let len = bytes.len();
        bytes[len - 2] ^= 0xFF;
        bytes[len - 1] ^= 0x55;
        bytes.extend_from_slice(b"\r\n\0\0\0\0\0\0");
        let files = read_attachments(&bytes).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            (files[0].name.as_str(), &files[0].data[..]),
            ("a.txt", &b"data"[..])
        );
        assert_eq!(read(&bytes).unwrap().damage, None);
    }

    #[test]
    fn a_stream_ending_without_its_last_checksum_has_lost_nothing() {
        let mut bytes = stream(&[REND, (2, 0x0006_800F, b"data")]);
        bytes.truncate(bytes.len() - 2);
        assert_eq!(read(&bytes).unwrap().damage, None);
        assert_eq!(read_attachments(&bytes).unwrap()[0].data, b"data");
    }

    #[test]
    fn an_unknown_level_ends_the_stream_keeping_what_came_before() {
        let bytes = stream(&[
            REND,
            (2, 0x0006_800F, b"first"),
            (3, 0x0006_800F, b"not an attribute"),
            REND,
            (2, 0x0006_800F, b"second"),
        ]);
        let reading = read(&bytes).unwrap();
        assert_eq!(reading.files.len(), 1);
        assert_eq!(reading.files[0].data, b"first");
        assert!(matches!(
            reading.damage,
            Some(TnefError::BadLevel { level: 3, .. })
        ));

        let nothing = stream(&[(0, 0, b"")]);
        assert!(matches!(
            read_attachments(&nothing),
            Err(TnefError::BadLevel {
                offset: 6,
                level: 0
            })
        ));
    }

    #[test]
    fn an_attachment_without_data_is_skipped() {
        let bytes = stream(&[
            REND,
            (2, 0x0001_8010, b"nothing.txt\0"),
            REND,
            (2, 0x0001_8010, b"empty.txt\0"),
            (2, 0x0006_800F, b""),
        ]);
        let files = read_attachments(&bytes).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "empty.txt");
        assert!(files[0].data.is_empty());
    }

    #[test]
    fn attach_data_obj_stands_in_for_missing_attach_data() {
        let iid = [0x22u8; 16];
        let object = [&iid[..], b"object bytes"].concat();
        let bytes = stream(&[
            REND,
            (
                2,
                0x0006_9005,
                &block(&[
                    string8(PR_ATTACH_LONG_FILENAME, "o.bin"),
                    var(PT_OBJECT, PR_ATTACH_DATA_OBJ, &object),
                ]),
            ),
            REND,
            (
                2,
                0x0006_9005,
                &block(&[var(PT_BINARY, PR_ATTACH_DATA_OBJ, b"binary bytes")]),
            ),
            REND,
            // Shorter than an IID: no data.
            (
                2,
                0x0006_9005,
                &block(&[var(PT_OBJECT, PR_ATTACH_DATA_OBJ, &iid[..8])]),
            ),
        ]);
        let files = read_attachments(&bytes).unwrap();
        let got: Vec<_> = files
            .iter()
            .map(|f| (f.name.as_str(), &f.data[..]))
            .collect();
        assert_eq!(
            got,
            [
                ("o.bin", &b"object bytes"[..]),
                ("attachment.bin", &b"binary bytes"[..])
            ]
        );
    }

    #[test]
    fn an_embedded_tnef_stream_is_typed_as_tnef() {
        let inner = stream(&[REND, (2, 0x0006_800F, b"inner")]);
        let object = [
            &[
                0x07u8, 0x03, 0x02, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
            ][..],
            &inner,
        ]
        .concat();
        let bytes = stream(&[
            REND,
            (
                2,
                0x0006_9005,
                &block(&[var(PT_OBJECT, PR_ATTACH_DATA_OBJ, &object)]),
            ),
        ]);
        let files = read_attachments(&bytes).unwrap();
        assert_eq!(files[0].data, inner);
        assert_eq!(
            files[0].content_type.as_deref(),
            Some("application/ms-tnef")
        );
    }

    #[test]
    fn named_and_fixed_size_properties_are_stepped_over() {
        let mut named_id = [0x03u16.to_le_bytes(), 0x8001u16.to_le_bytes()].concat();
        named_id.extend_from_slice(&[0xAB; 16]);
        named_id.extend_from_slice(&NAME_KIND_ID.to_le_bytes());
        named_id.extend_from_slice(&0x8510u32.to_le_bytes());
        named_id.extend_from_slice(&7u32.to_le_bytes());

        let mut named_string = [PT_UNICODE.to_le_bytes(), 0x8002u16.to_le_bytes()].concat();
        named_string.extend_from_slice(&[0xCD; 16]);
        named_string.extend_from_slice(&NAME_KIND_STRING.to_le_bytes());
        padded(&mut named_string, &[b'x', 0, b'y', 0, 0, 0]);
        named_string.extend_from_slice(&1u32.to_le_bytes());
        padded(&mut named_string, &[b'z', 0, 0, 0]);

        let short = [
            0x02u16.to_le_bytes(),
            0x0E21u16.to_le_bytes(),
            [5, 0],
            [0, 0],
        ]
        .concat();
        let boolean = [
            0x0Bu16.to_le_bytes(),
            0x7FFEu16.to_le_bytes(),
            [1, 0],
            [0, 0],
        ]
        .concat();
        let time = [[0x40u8, 0, 0x06, 0x30], [1; 4], [2; 4]].concat();
        let clsid = [&[0x48u8, 0, 0x01, 0x37][..], &[9; 16]].concat();
        let mut multi_long = [(0x1003u16).to_le_bytes(), 0x3702u16.to_le_bytes()].concat();
        multi_long.extend_from_slice(&2u32.to_le_bytes());
        multi_long.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        let mut multi_string =
            [(0x101Eu16).to_le_bytes(), PR_ATTACH_FILENAME.to_le_bytes()].concat();
        multi_string.extend_from_slice(&2u32.to_le_bytes());
        padded(&mut multi_string, b"no\0");
        padded(&mut multi_string, b"not this\0");
        let null = [0x01u16.to_le_bytes(), 0x3000u16.to_le_bytes()].concat();

        let props = block(&[
            named_id,
            named_string,
            short,
            boolean,
            time,
            clsid,
            multi_long,
            multi_string,
            null,
            string8(PR_ATTACH_MIME_TAG, " text/plain "),
            string8(PR_ATTACH_LONG_FILENAME, "found it.txt"),
        ]);
        let bytes = stream(&[REND, (2, 0x0006_800F, b"x"), (2, 0x0006_9005, &props)]);
        let files = read_attachments(&bytes).unwrap();
        assert_eq!(files[0].name, "found it.txt");
        assert_eq!(files[0].content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn an_unknown_property_type_ends_the_block_keeping_what_came_before() {
        let unknown = [
            0x00FBu16.to_le_bytes(),
            0x3000u16.to_le_bytes(),
            [1, 0],
            [0, 0],
        ]
        .concat();
        let props = block(&[
            string8(PR_ATTACH_FILENAME, "before.txt"),
            unknown,
            string8(PR_ATTACH_LONG_FILENAME, "after.txt"),
        ]);
        let bytes = stream(&[REND, (2, 0x0006_800F, b"x"), (2, 0x0006_9005, &props)]);
        assert_eq!(names(&bytes), ["before.txt"]);
    }

    #[test]
    fn hostile_counts_cost_nothing() {
        let huge = u32::MAX.to_le_bytes();
        let cases: Vec<Vec<u8>> = vec![
            // A property count far beyond the block.
            [&huge[..], &string8(PR_ATTACH_LONG_FILENAME, "kept.txt")].concat(),
            // A variable-length value count.
            [
                &[1, 0, 0, 0][..],
                &PT_BINARY.to_le_bytes(),
                &0x3701u16.to_le_bytes(),
                &huge,
            ]
            .concat(),
            // A value length.
            [
                &[1, 0, 0, 0][..],
                &PT_BINARY.to_le_bytes(),
                &0x3701u16.to_le_bytes(),
                &[1, 0, 0, 0],
                &huge,
            ]
            .concat(),
            // A multi-valued fixed-size count, and PT_MV_NULL whose values take no room.
            [
                &[2, 0, 0, 0][..],
                &0x1014u16.to_le_bytes(),
                &0x3000u16.to_le_bytes(),
                &huge,
            ]
            .concat(),
            [
                &[2, 0, 0, 0][..],
                &0x1001u16.to_le_bytes(),
                &0x3000u16.to_le_bytes(),
                &huge,
            ]
            .concat(),
            // A named property's string length.
            [
                &[1, 0, 0, 0][..],
                &0x0003u16.to_le_bytes(),
                &0x8000u16.to_le_bytes(),
                &[0; 16],
                &[1, 0, 0, 0],
                &huge,
            ]
            .concat(),
        ];
        for (i, props) in cases.iter().enumerate() {
            let found = read_properties(props);
            if i == 0 {
                assert!(found.long_name.is_some());
            }
        }
        // An attribute length beyond the stream.
        let mut bytes = stream(&[REND, (2, 0x0006_800F, b"first")]);
        bytes.extend_from_slice(&[2, 0x0F, 0x80, 0x06, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
        let reading = read(&bytes).unwrap();
        assert_eq!(reading.files.len(), 1);
        assert!(matches!(reading.damage, Some(TnefError::Truncated { .. })));
    }

    #[test]
    fn eight_bit_names_follow_the_code_page() {
        let attachment = |title: &'static [u8]| -> Vec<(u8, u32, &'static [u8])> {
            vec![REND, (2, 0x0001_8010, title), (2, 0x0006_800F, b"x")]
        };
        let latin = stream(&attachment(b"caf\xe9 \x80.txt\0"));
        assert_eq!(names(&latin), ["café €.txt"]);

        let mut cyrillic = vec![(1u8, 0x0006_9007u32, &[0xE3u8, 0x04, 0, 0, 0, 0, 0, 0][..])];
        cyrillic.extend(attachment(b"\xcf\xf0\xe8\xe2\xe5\xf2.txt\0"));
        assert_eq!(names(&stream(&cyrillic)), ["Привет.txt"]);

        // UTF-8 from a writer that did not say so.
        let utf8 = stream(&attachment("naïve.txt\0".as_bytes()));
        assert_eq!(names(&utf8), ["naïve.txt"]);
    }

    #[test]
    fn attachment_attributes_before_any_rend_data_still_make_a_file() {
        let bytes = stream(&[(2, 0x0001_8010, b"early.txt\0"), (2, 0x0006_800F, b"x")]);
        assert_eq!(names(&bytes), ["early.txt"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn damaged_fixtures_never_panic(
            edits in proptest::collection::vec((0..QUICK.len(), any::<u8>()), 1..8),
            cut in 0..=QUICK.len(),
        ) {
            let mut bytes = QUICK.to_vec();
            for (at, value) in edits {
                bytes[at] = value;
            }
            bytes.truncate(cut.max(6));
            if let Ok(files) = read_attachments(&bytes) {
                let total: usize = files.iter().map(|f| f.data.len()).sum();
                prop_assert!(total <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_bytes_after_the_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let bytes = [&SIGNATURE.to_le_bytes()[..], &[0, 0], &tail].concat();
            let _ = read(&bytes);
        }
    }
}
