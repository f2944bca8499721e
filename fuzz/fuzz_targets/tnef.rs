//! The winmail.dat reader on any bytes: no panic, no allocation beyond the
//! input's size, and every file it returns lies within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reading) = import::tnef::read(data) {
        let total: usize = reading.files.iter().map(|f| f.data.len()).sum();
        assert!(total <= data.len(), "files larger than their container");
    }
});
