//! Signal names, both ways: `"TERM"`/`"SIGTERM"`/`"term"` to a number for
//! service files, and a number to `"TERM"` for log lines. Pure; no signal is
//! sent or caught here.

const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The signal a name stands for, case-insensitive, with or without `SIG`.
pub fn by_name(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(n, _)| *n == bare).map(|&(_, s)| s)
}

/// A short name for log lines: `TERM`, or the number when it has no name
/// (real-time signals).
pub fn name(signal: i32) -> String {
    let found = NAMES.iter().find(|&&(_, number)| number == signal);
    found.map_or_else(|| signal.to_string(), |(n, _)| (*n).to_string())
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
    }
}
