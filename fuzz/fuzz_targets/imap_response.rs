//! What an IMAP server sends, as mailferry reads it: every response of a
//! byte stream parsed the way async-imap parses it (imap-proto), the
//! folder names of LIST answers decoded from modified UTF-7 for display,
//! and message ids made from server names parsed back — no panic.
#![no_main]

use imap_proto::{MailboxDatum, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Bounded: every successful parse consumes at least one byte.
    while !rest.is_empty() {
        match Response::parse(rest) {
            Ok((next, response)) => {
                if let Response::MailboxData(MailboxDatum::List(list)) = &response {
                    let name = &list.name;
                    let shown = imap::folder_display(name);
                    let id = format!("1:2:{name}");
                    let parsed = imap::MessageId::parse(&id).expect("our own id format");
                    assert_eq!(parsed.folder, name.as_ref());
                    let _ = shown;
                }
                if next.len() >= rest.len() {
                    break;
                }
                rest = next;
            }
            Err(_) => break,
        }
    }
});
