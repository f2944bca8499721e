//! The file-name sanitiser on any text: one plain name that stays inside
//! the document folder — no separator, not `.`/`..`, not hidden, valid
//! UTF-8, at most 255 bytes — and sanitising it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let name = sinks::filename::sanitize(raw);
    assert!(!name.is_empty());
    assert!(name.len() <= 255, "{} bytes", name.len());
    assert!(!name.contains(['/', '\\', '\0']), "{name:?}");
    assert!(name != "." && name != ".." && !name.starts_with('.'), "{name:?}");
    assert_eq!(sinks::filename::sanitize(&name), name, "not idempotent");
});
