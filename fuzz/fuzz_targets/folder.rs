//! Folder paths as an admin types them: parsing never panics, and a
//! parsed path shows as text that parses back to the same path.
#![no_main]

use domain::folder::FolderSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Ok(spec) = FolderSpec::parse(raw) {
        let shown = spec.to_string();
        let again = FolderSpec::parse(&shown).expect("a shown path parses");
        assert!(again.same_as(&spec), "{raw:?} → {shown:?}");
    }
});
