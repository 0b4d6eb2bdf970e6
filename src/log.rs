//! going's own log: one line an event, `TIMESTAMP LEVEL TAG: MESSAGE`, to
//! syslog (facility daemon) or to stderr. The tag is the `log` target: a
//! service's name, or `going` for going's own lines (module paths).
//!
//! Neither destination may block the loop: stderr is written without
//! blocking, what it cannot take now waits in a small backlog that the loop
//! flushes when stderr turns writable ([`StderrBacklog`]), and lines beyond
//! it are dropped and counted.
//!
//! Hand-made, not the `syslog` crate: that crate added 57 kB to a minimal
//! static binary (measured, opt-level z, LTO), and cannot write without
//! blocking; going's writer is one datagram a line.

use crate::config::calendar::{self, LocalTime};
use crate::schedules::unix_seconds;
use log::{Level, LevelFilter, Log, Metadata, Record};
use nix::errno::Errno;
use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// The longest log line, in bytes, newline included; longer ones are cut
/// and end in [`CUT`]. A service's output, logged in pieces of 1024 bytes
/// (output.rs), fits whole with its timestamp, name and pid.
pub const LINE_MAX: usize = 2048;
const CUT: &str = "...";
/// What stderr may owe before lines are dropped: a few lines, so that a
/// reader that is merely slow loses nothing and a stuck one costs little.
pub const BACKLOG_MAX: usize = 8 * 1024;

/// The syslog socket and going's pid, set when going logs to syslog.
static SYSLOG: OnceLock<(Mutex<Option<UnixDatagram>>, u32)> = OnceLock::new();

/// True when going's log lines go to stderr.
pub fn to_stderr() -> bool {
    SYSLOG.get().is_none()
}

/// The syslog socket's path: /dev/log, or the path of `-l syslog:PATH`.
static SOCKET_PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
const FACILITY_DAEMON: u8 = 3 << 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Stderr,
    Syslog,
}

struct Logger;

/// Installs the logger. With no `forced` target, syslog is used when
/// /dev/log accepts a connection now, stderr otherwise.
pub fn init(forced: Option<Target>, socket: Option<std::path::PathBuf>) -> Target {
    let _ = SOCKET_PATH.set(socket.unwrap_or_else(|| "/dev/log".into()));
    let socket = (forced != Some(Target::Stderr)).then(connect).flatten();
    let found = socket.as_ref().map(|_| Target::Syslog);
    let target = forced.or(found).unwrap_or(Target::Stderr);
    if target == Target::Syslog {
        let _ = SYSLOG.set((Mutex::new(socket), std::process::id()));
    }
    if log::set_logger(&Logger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    target
}

fn connect() -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(SOCKET_PATH.get()?).ok()?;
    // A stalled syslog daemon must never block the loop.
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

fn tag<'a>(record: &'a Record<'_>) -> &'a str {
    Some(record.target())
        .filter(|t| !t.starts_with("going"))
        .unwrap_or("going")
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        let (level, severity) = match record.level() {
            Level::Error => ("error", 3),
            Level::Warn => ("warn", 4),
            Level::Info => ("info", 6),
            Level::Debug | Level::Trace => ("debug", 7),
        };
        let tag = tag(record);
        if let Some((socket, pid)) = SYSLOG.get() {
            let head = format!(
                "<{}>{} going[{pid}]: {level} {tag}: ",
                FACILITY_DAEMON | severity,
                syslog_time(),
            );
            if send(socket, bounded(&head, record.args(), "").as_bytes()) {
                return;
            }
        }
        let head = format!("{} {level} {tag}: ", utc_time());
        write_stderr(Some(bounded(&head, record.args(), "\n").into_bytes()));
    }

    fn flush(&self) {}
}

/// `head`, then the message, then `end`, in at most [`LINE_MAX`] bytes:
/// formatting stops where the line is full, so a huge message costs no
/// more than a short one.
fn bounded(head: &str, args: &std::fmt::Arguments<'_>, end: &str) -> String {
    let mut line = Bounded {
        text: String::with_capacity(128),
        room: LINE_MAX.saturating_sub(CUT.len() + end.len()),
    };
    // Writing a String fails only where the line is full.
    let full = line.write_str(head).and_then(|()| line.write_fmt(*args));
    let mut text = line.text;
    if full.is_err() {
        text.push_str(CUT);
    }
    text.push_str(end);
    text
}

struct Bounded {
    text: String,
    room: usize,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.room.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let end = (0..=room).rev().find(|&i| s.is_char_boundary(i));
        self.text
            .push_str(s.get(..end.unwrap_or(0)).unwrap_or_default());
        // Stops the formatting: the rest would be thrown away.
        Err(std::fmt::Error)
    }
}

/// How going's stderr is written without blocking.
enum Stderr {
    /// A private non-blocking file description of what descriptor 2 is (a
    /// pipe or a terminal): O_NONBLOCK on descriptor 2's own description
    /// would be seen by every process that shares it, the shell included.
    Own(OwnedFd),
    /// Descriptor 2 is a socket: sent with MSG_DONTWAIT.
    Socket,
    /// Descriptor 2 written once poll(2) says it takes this many bytes
    /// (a regular file always does).
    Polled(usize),
}

impl Stderr {
    fn open() -> Stderr {
        match nix::sys::stat::fstat(io::stderr().as_fd()).map(|s| s.st_mode & libc::S_IFMT) {
            Ok(libc::S_IFSOCK) => Stderr::Socket,
            Ok(kind @ (libc::S_IFIFO | libc::S_IFCHR)) => {
                use std::os::unix::fs::OpenOptionsExt;
                let reopened = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                    .open("/proc/self/fd/2");
                match reopened {
                    Ok(file) => Stderr::Own(file.into()),
                    // A pipe takes PIPE_BUF bytes when poll says POLLOUT, a
                    // terminal at least 256 (WAKEUP_CHARS).
                    Err(_) if kind == libc::S_IFIFO => Stderr::Polled(libc::PIPE_BUF),
                    Err(_) => Stderr::Polled(256),
                }
            }
            _ => Stderr::Polled(usize::MAX),
        }
    }

    /// One write that does not block: `EAGAIN` when nothing fits now.
    fn write(&self, bytes: &[u8]) -> nix::Result<usize> {
        match self {
            Stderr::Own(fd) => nix::unistd::write(fd, bytes),
            Stderr::Socket => {
                use nix::sys::socket::{MsgFlags, send};
                let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
                send(libc::STDERR_FILENO, bytes, flags)
            }
            Stderr::Polled(most) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                let stderr = io::stderr();
                let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::ZERO)? {
                    0 => Err(Errno::EAGAIN),
                    _ => nix::unistd::write(stderr.as_fd(), bytes.get(..*most).unwrap_or(bytes)),
                }
            }
        }
    }
}

/// Lines stderr could not take yet, and how many were dropped since.
#[derive(Default)]
struct Backlog {
    waiting: Vec<u8>,
    dropped: u64,
    /// The count said by the line at the head of `waiting`, if any.
    telling: u64,
}

impl Backlog {
    /// Writes `line` now if nothing waits before it, keeps what is left of
    /// it, or drops it when the backlog is full; once lines are dropped,
    /// every later one is too until the backlog is written out and the
    /// count said, so that the count stands where the gap is.
    fn push(&mut self, line: Vec<u8>, write: &mut dyn FnMut(&[u8]) -> nix::Result<usize>) {
        self.flush(write);
        if self.dropped > 0 || self.waiting.len() + line.len() > BACKLOG_MAX {
            self.dropped += 1;
        } else if self.waiting.is_empty() {
            self.waiting = line;
            self.flush(write);
        } else {
            self.waiting.extend_from_slice(&line);
        }
    }

    /// Writes what waits, as much as can be written now; then, if lines
    /// were dropped, the line that says how many.
    fn flush(&mut self, write: &mut dyn FnMut(&[u8]) -> nix::Result<usize>) {
        loop {
            if self.waiting.is_empty() {
                if self.dropped == 0 {
                    return;
                }
                self.waiting = dropped_line(self.dropped).into_bytes();
                self.telling = std::mem::take(&mut self.dropped);
            }
            match write(&self.waiting) {
                Ok(0) => return,
                Ok(n) if n >= self.waiting.len() => {
                    self.waiting.clear();
                    self.telling = 0;
                }
                Ok(n) => drop(self.waiting.drain(..n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                // Stderr is broken (a reader gone, a full disk): what waits
                // is lost, and said when stderr works again.
                Err(_) => {
                    let lines = self.waiting.iter().filter(|&&b| b == b'\n').count();
                    let telling = std::mem::take(&mut self.telling);
                    self.dropped += lines.max(1) as u64 - u64::from(telling > 0) + telling;
                    self.waiting.clear();
                    return;
                }
            }
        }
    }
}

/// The documented line that says lines were dropped (going(8), LOGGING).
fn dropped_line(count: u64) -> String {
    let lines = if count == 1 { "line" } else { "lines" };
    format!(
        "{} warn going: {count} log {lines} dropped: standard error could not take them\n",
        utc_time()
    )
}

/// Stderr, opened at the first line, and what it owes.
static SINK: Mutex<(Option<Stderr>, Backlog)> = Mutex::new((
    None,
    Backlog {
        waiting: Vec::new(),
        dropped: 0,
        telling: 0,
    },
));

/// Writes `line`; without one, what waits (stderr can take more).
fn write_stderr(line: Option<Vec<u8>>) {
    let Ok(mut sink) = SINK.lock() else {
        return;
    };
    let (stderr, backlog) = &mut *sink;
    let stderr = stderr.get_or_insert_with(Stderr::open);
    let mut write = |bytes: &[u8]| stderr.write(bytes);
    match line {
        Some(line) => backlog.push(line, &mut write),
        None => backlog.flush(&mut write),
    }
}

/// The log as a part of the loop: while lines wait for stderr, it is
/// polled for room, and what waits is written when there is.
#[derive(Default)]
pub struct StderrBacklog;

impl crate::part::Part for StderrBacklog {
    fn fds<'a>(&'a self, set: &mut crate::part::PollSet<'a>) {
        let Ok(sink) = SINK.lock() else {
            return;
        };
        if let (Some(stderr), backlog) = &*sink
            && !backlog.waiting.is_empty()
        {
            let fd = match stderr {
                Stderr::Own(fd) => fd.as_raw_fd(),
                Stderr::Socket | Stderr::Polled(_) => libc::STDERR_FILENO,
            };
            // SAFETY: the descriptor belongs to the logger's sink, a static
            // that keeps it open for as long as going runs.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            set.add(fd, nix::poll::PollFlags::POLLOUT, 0);
        }
    }

    fn ready(&mut self, _: u32, _: nix::poll::PollFlags, _: &mut crate::part::Cx<'_>) {
        write_stderr(None);
    }
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
    format_utc(unix_seconds(SystemTime::now()).unsigned_abs())
}

pub fn format_utc(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let t = LocalTime::from_days(days, (unix_seconds % 86_400) as u32);
    let (year, month, day) = (t.year, t.month, t.day);
    format!("{year:04}-{month:02}-{day:02}T{}Z", clock(t.secs))
}

/// The RFC 3164 timestamp, in local time as syslog daemons expect:
/// `Nov 21 19:37:00`.
fn syslog_time() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = unix_seconds(SystemTime::now());
    let t = calendar::local_time(now).unwrap_or(LocalTime::from_days(0, 0));
    let month = MONTHS.get(usize::from(t.month.saturating_sub(1)));
    format!("{} {:2} {}", month.unwrap_or(&"Jan"), t.day, clock(t.secs))
}

/// `19:37:00`, of seconds after midnight.
fn clock(secs: u32) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
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

    /// A reader that takes `room` more bytes, then says "would block"; or
    /// fails for good.
    struct Reader {
        got: Vec<u8>,
        room: usize,
        broken: bool,
    }

    impl Reader {
        fn new(room: usize) -> Reader {
            Reader {
                got: Vec::new(),
                room,
                broken: false,
            }
        }

        fn write(&mut self, bytes: &[u8]) -> nix::Result<usize> {
            if self.broken {
                return Err(Errno::EPIPE);
            }
            let n = bytes.len().min(self.room);
            if n == 0 {
                return Err(Errno::EAGAIN);
            }
            self.got.extend_from_slice(&bytes[..n]);
            self.room -= n;
            Ok(n)
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.got).into_owned()
        }
    }

    fn push(backlog: &mut Backlog, reader: &mut Reader, line: &str) {
        backlog.push(line.as_bytes().to_vec(), &mut |b| reader.write(b));
    }

    #[test]
    fn lines_go_straight_through_while_the_reader_keeps_up() {
        let (mut backlog, mut reader) = (Backlog::default(), Reader::new(usize::MAX));
        push(&mut backlog, &mut reader, "one\n");
        push(&mut backlog, &mut reader, "two\n");
        assert_eq!(reader.text(), "one\ntwo\n");
        assert!(backlog.waiting.is_empty());
    }

    #[test]
    fn a_stuck_reader_costs_the_backlog_then_lines_are_counted() {
        let (mut backlog, mut reader) = (Backlog::default(), Reader::new(6));
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..1000 {
            push(&mut backlog, &mut reader, &line);
        }
        // 6 bytes written, the rest of that line and 80 more wait.
        assert_eq!(backlog.waiting.len(), 94 + 80 * 100);
        assert_eq!(backlog.dropped, 1000 - 81);
        // The reader catches up: the backlog, then the count, then new lines.
        reader.room = usize::MAX;
        backlog.flush(&mut |b| reader.write(b));
        push(&mut backlog, &mut reader, "after\n");
        let text = reader.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 81 + 2);
        assert!(lines[..81].iter().all(|l| *l == &line[..99]));
        assert!(
            lines[81].ends_with(
                " warn going: 919 log lines dropped: standard error could not take them"
            )
        );
        assert_eq!(lines[82], "after");
        assert!(backlog.waiting.is_empty() && backlog.dropped == 0);
    }

    #[test]
    fn nothing_is_added_between_a_drop_and_its_count() {
        let (mut backlog, mut reader) = (Backlog::default(), Reader::new(0));
        push(&mut backlog, &mut reader, &"y".repeat(BACKLOG_MAX - 10));
        push(&mut backlog, &mut reader, "does not fit\n");
        reader.room = 20;
        // There is room in the backlog now, but a line dropped comes first.
        push(&mut backlog, &mut reader, "short\n");
        assert_eq!(backlog.dropped, 2);
        reader.room = usize::MAX;
        backlog.flush(&mut |b| reader.write(b));
        assert!(
            reader
                .text()
                .ends_with("2 log lines dropped: standard error could not take them\n")
        );
    }

    #[test]
    fn a_broken_stderr_loses_what_waits_and_says_so_later() {
        let (mut backlog, mut reader) = (Backlog::default(), Reader::new(0));
        push(&mut backlog, &mut reader, "a\n");
        push(&mut backlog, &mut reader, "b\n");
        reader.broken = true;
        backlog.flush(&mut |b| reader.write(b));
        // Nothing waits, so nothing is polled: no busy loop on a dead pipe.
        assert!(backlog.waiting.is_empty());
        push(&mut backlog, &mut reader, "c\n");
        reader.broken = false;
        reader.room = usize::MAX;
        push(&mut backlog, &mut reader, "d\n");
        let text = reader.text();
        // a, b and c; the line that said 2 could not be written.
        assert!(text.contains(" 3 log lines dropped"), "{text}");
        assert!(text.ends_with("d\n"));
    }

    #[test]
    fn long_lines_are_cut_at_the_bound_on_a_character() {
        let long = "é".repeat(LINE_MAX);
        let line = bounded("head: ", &format_args!("{long}"), "\n");
        assert!(line.len() <= LINE_MAX && line.len() > LINE_MAX - 8);
        assert!(line.starts_with("head: é") && line.ends_with("é...\n"));
        let short = bounded("head: ", &format_args!("{}", "short"), "\n");
        assert_eq!(short, "head: short\n");
        let exact = "z".repeat(LINE_MAX - 1);
        assert_eq!(bounded("", &format_args!("{exact}"), "\n").len(), LINE_MAX);
    }

    #[test]
    fn module_targets_are_tagged_going() {
        let record = Record::builder().target("going::event_loop").build();
        assert_eq!(tag(&record), "going");
        let record = Record::builder().target("web").build();
        assert_eq!(tag(&record), "web");
    }
}
