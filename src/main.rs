//! going's entry point: block signals before anything else, then run the
//! mode the command line asks for (`going::run`, which gives a client its
//! inherited signal mask back).
//!
//! `no_main`: going's own C `main` skips std's runtime set-up, which
//! would install signal handlers and an alternate signal stack (memory that
//! counts against going's 1 MB budget) before the signals are blocked.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    use std::ffi::{CStr, OsStr, OsString};
    use std::os::unix::ffi::OsStrExt;
    let inherited = going::event_loop::handled_signals()
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .unwrap_or_else(|_| nix::sys::signal::SigSet::empty());
    let args = (1..usize::try_from(argc).unwrap_or(0))
        .filter_map(|i| {
            // SAFETY: the C runtime passes argc valid, NUL-terminated strings.
            let arg = unsafe { *argv.add(i) };
            (!arg.is_null()).then(|| {
                OsString::from(OsStr::from_bytes(unsafe { CStr::from_ptr(arg) }.to_bytes()))
            })
        })
        .collect();
    going::run(args, inherited)
}
