//! Signal names, both ways: `"TERM"`/`"SIGTERM"`/`"term"` to a number for
//! service files, and a number to `"TERM"` for log lines. Pure; no signal is
//! sent or caught here.

use nix::sys::signal::Signal;

/// The signal a name stands for, case-insensitive, with or without `SIG`.
pub fn by_name(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let named = |s: &Signal| s.as_str().strip_prefix("SIG") == Some(bare);
    Signal::iterator().find(named).map(|s| s as i32)
}

/// A short name for log lines: `TERM`, or the number when it has no name
/// (real-time signals).
pub fn name(signal: i32) -> String {
    let named = Signal::try_from(signal).ok();
    let named = named.and_then(|s| s.as_str().strip_prefix("SIG"));
    named.map_or_else(|| signal.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_every_spelling() {
        assert_eq!(by_name("TERM"), Some(15));
        assert_eq!(by_name("SIGTERM"), Some(15));
        assert_eq!(by_name("term"), Some(15));
        assert_eq!(by_name("sigkill"), Some(9));
        assert_eq!(by_name(" HUP "), Some(1));
        assert_eq!(by_name("WINCH"), Some(libc::SIGWINCH));
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(by_name("TERMINATE"), None);
        assert_eq!(by_name("SIG"), None);
        assert_eq!(by_name(""), None);
        assert_eq!(by_name("15"), None);
    }

    #[test]
    fn numbers_print_as_names() {
        assert_eq!(name(9), "KILL");
        assert_eq!(name(15), "TERM");
        assert_eq!(name(40), "40");
        assert_eq!(name(0), "0");
        assert_eq!(name(libc::SIGSTKFLT), "STKFLT");
        assert_eq!(name(libc::SIGPWR), "PWR");
        for signal in 1..=31 {
            assert_eq!(by_name(&name(signal)), Some(signal));
        }
    }
}
