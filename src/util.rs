//! Small helpers used everywhere: FNV-1a, and how errors, durations and
//! counts are written in log lines and messages.

use std::time::Duration;

/// FNV-1a, 64 bits, fed piece by piece: a stable short name for a
/// directory, a command line's fingerprint in the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn feed(mut self, bytes: &[u8]) -> Fnv {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// The hash of `bytes` in one piece.
    pub fn hash(bytes: &[u8]) -> u64 {
        Fnv::default().feed(bytes).0
    }
}

/// An I/O error without std's `(os error N)` suffix.
pub fn describe_io(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// A duration as log lines print it: `0.2s`, `12.8s`, `30s`, `5m`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 100 {
        return format!("{millis}ms");
    }
    if millis >= 60_000 && millis.is_multiple_of(60_000) {
        return format!("{}m", millis / 60_000);
    }
    let tenths = (millis + 50) / 100;
    if tenths.is_multiple_of(10) && millis >= 10_000 {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

/// Signals the process group led by `pid`, or `pid` alone if it has not
/// made its group yet (between fork and setsid).
pub fn signal_group(pid: i32, signal: i32) {
    let Ok(signal) = nix::sys::signal::Signal::try_from(signal) else {
        return;
    };
    if nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal)
        == Err(nix::errno::Errno::ESRCH)
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// `1 service`, `2 services`: a count and its noun, singular for one.
pub fn counted(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular() {
        assert_eq!(counted(1u32, "restart"), "1 restart");
        assert_eq!(counted(0u32, "restart"), "0 restarts");
        assert_eq!(counted(2u64, "service"), "2 services");
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(Fnv::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv::default().feed(b"fo").feed(b"o").0, Fnv::hash(b"foo"));
    }

    #[test]
    fn durations_print_short() {
        assert_eq!(format_duration(Duration::from_millis(100)), "0.1s");
        assert_eq!(format_duration(Duration::from_millis(50)), "50ms");
        assert_eq!(format_duration(Duration::from_millis(200)), "0.2s");
        assert_eq!(format_duration(Duration::from_millis(12_800)), "12.8s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(5)), "5.0s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
