//! What Microsoft Graph answers, as the client reads it: a page of a
//! message listing and an error body, from any bytes — no panic, and a
//! page it accepts has an id for every message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = microsoft::graph::GraphErrorBody::parse(data).describe();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(page) = microsoft::graph::page_from_json(&value)
    {
        assert!(page.messages.iter().all(|m| !m.id.is_empty()));
    }
});
