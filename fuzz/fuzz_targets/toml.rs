#![no_main]
//! See ../harness.rs: the same function replays the regressions under
//! `cargo test --test fuzz_regressions`.

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::toml(data));
