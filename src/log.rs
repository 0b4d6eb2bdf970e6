//! going's own log: one line an event, `TIMESTAMP LEVEL TAG: MESSAGE`, to
//! syslog (facility daemon) or to stderr. The tag is the `log` target: a
//! service's name, or `going` for going's own lines (module paths).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static TO_STDERR: AtomicBool = AtomicBool::new(true);

/// True when going's log lines go to stderr.
pub fn to_stderr() -> bool {
    TO_STDERR.load(Ordering::Relaxed)
}

const SYSLOG_SOCKET: &str = "/dev/log";

/// The syslog socket: /dev/log, or the path of `-l syslog:PATH`.
static SOCKET_PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

fn socket_path() -> &'static std::path::Path {
    SOCKET_PATH
        .get()
        .map_or(std::path::Path::new(SYSLOG_SOCKET), |p| p.as_path())
}
const FACILITY_DAEMON: u8 = 3 << 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Stderr,
    Syslog,
}

struct Logger {
    /// `None` logs to stderr.
    syslog: Option<Mutex<Option<UnixDatagram>>>,
    pid: u32,
}

/// Installs the logger. With no `forced` target, syslog is used when
/// /dev/log accepts a connection now, stderr otherwise.
pub fn init(forced: Option<Target>, socket: Option<std::path::PathBuf>) -> Target {
    if let Some(path) = socket {
        let _ = SOCKET_PATH.set(path);
    }
    let socket = match forced {
        Some(Target::Stderr) => None,
        _ => connect(),
    };
    let target = match (forced, &socket) {
        (Some(target), _) => target,
        (None, Some(_)) => Target::Syslog,
        (None, None) => Target::Stderr,
    };
    TO_STDERR.store(target == Target::Stderr, Ordering::Relaxed);
    let logger = Logger {
        syslog: (target == Target::Syslog).then(|| Mutex::new(socket)),
        pid: std::process::id(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    target
}

fn connect() -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(socket_path()).ok()?;
    // A stalled syslog daemon must never block the loop.
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

fn tag<'a>(record: &'a Record<'_>) -> &'a str {
    let target = record.target();
    if target.starts_with("going") {
        "going"
    } else {
        target
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug | Level::Trace => "debug",
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = level_word(record.level());
        let tag = tag(record);
        if let Some(socket) = &self.syslog {
            let severity: u8 = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            let line = format!(
                "<{}>{} going[{}]: {level} {tag}: {}",
                FACILITY_DAEMON | severity,
                syslog_time(),
                self.pid,
                record.args()
            );
            if send(socket, line.as_bytes()) {
                return;
            }
        }
        let line = format!("{} {level} {tag}: {}\n", utc_time(), record.args());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Sends one datagram, reconnecting once if syslogd went away; false when
/// the line could not be delivered (it then goes to stderr).
fn send(socket: &Mutex<Option<UnixDatagram>>, line: &[u8]) -> bool {
    let Ok(mut socket) = socket.lock() else {
        return false;
    };
    match socket.as_ref().map(|s| s.send(line)) {
        Some(Ok(_)) => return true,
        // syslogd is there but behind: the line goes to stderr; no reconnect.
        Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
        _ => {}
    }
    *socket = connect();
    socket.as_ref().is_some_and(|s| s.send(line).is_ok())
}

/// `2026-11-21T19:37:00Z`
pub fn utc_time() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(now)
}

pub fn format_utc(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let seconds_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm: days since 1970-01-01 to
/// (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The RFC 3164 timestamp, in local time as syslog daemons expect:
/// `Nov 21 19:37:00`.
fn syslog_time() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time and localtime_r only write the structs we pass.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    let month = usize::try_from(tm.tm_mon)
        .ok()
        .and_then(|m| MONTHS.get(m))
        .unwrap_or(&"Jan");
    format!(
        "{month} {:2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_289_820), "2026-11-21T19:37:00Z");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn module_targets_are_tagged_going() {
        let record = Record::builder().target("going::event_loop").build();
        assert_eq!(tag(&record), "going");
        let record = Record::builder().target("web").build();
        assert_eq!(tag(&record), "web");
    }
}
