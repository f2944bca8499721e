//! What Microsoft Graph answers, as the client reads it: a page of a
//! message listing and an error body, from any bytes — no panic, and a
//! page it accepts has an id for every message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let error = microsoft::graph::GraphErrorBody::parse(data);
    // A body that is not Graph's shape keeps only its first characters.
    assert!(error.message.chars().count() <= data.len());
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(page) = microsoft::graph::page_from_json(&value)
    {
        assert!(page.messages.iter().all(|m| !m.id.is_empty()));
    }
});
