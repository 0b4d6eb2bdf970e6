//! What `going status` shows: one row a service, with CPU time and RSS
//! read from /proc, a summary line about going and the host, as text for
//! people or JSON for programs.
//!
//! The JSON is written by hand, not with serde_json: its value API added
//! 16 kB to a minimal static binary (measured, opt-level z, LTO), and the
//! document is flat and made only here.

use crate::service::{Exit, Service, State};
use crate::signals;
use crate::util::{counted, format_duration};
use std::fmt::Write;
use std::time::{Duration, Instant, SystemTime};

/// What /proc says about one process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcStats {
    pub cpu: Duration,
    pub rss_kb: u64,
}

/// CPU time (user + system) and RSS of `pid`, from /proc/PID/stat.
pub fn proc_stats(pid: i32) -> Option<ProcStats> {
    let stat = crate::procfs::stat(pid)?;
    let ticks_used = stat.user_ticks.saturating_add(stat.system_ticks);
    let ticks = crate::procfs::ticks_per_second();
    Some(ProcStats {
        cpu: Duration::from_millis(ticks_used.saturating_mul(1000) / ticks),
        rss_kb: stat.rss_pages.saturating_mul(crate::procfs::page_kb()),
    })
}

/// When the first going of this directory started, in boot clock ticks:
/// set from the state file, so that an upgrade or a successor after a
/// crash goes on counting (0: this process's own start).
static SINCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn set_going_since(tick: u64) {
    SINCE.store(tick, std::sync::atomic::Ordering::Relaxed);
}

pub fn going_uptime() -> Duration {
    let since = match SINCE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => crate::procfs::start_time(std::process::id() as i32),
        tick => Some(tick),
    };
    since.and_then(crate::procfs::age).unwrap_or_default()
}

/// SIGUSR1: one log line about going, then one a service.
pub fn log_summary(supervisor: &crate::supervisor::Supervisor, now: Instant) {
    log::info!(
        "pid {}, up {}, {}",
        std::process::id(),
        format_duration(going_uptime()),
        counted(supervisor.services().count() as u64, "service")
    );
    for service in supervisor.services() {
        let pid = service
            .pid()
            .map(|pid| format!(", pid {pid}"))
            .unwrap_or_default();
        let up = uptime(service, now)
            .map(|up| format!(", up {}", format_duration(up)))
            .unwrap_or_default();
        let (state, restarts) = (service.state().name(), service.restarts());
        let restarts = counted(restarts, "restart");
        log::info!(target: service.name(), "{state}{pid}{up}, {restarts}");
    }
}

/// The summary line's facts.
#[derive(Debug, Default)]
pub struct Host {
    pub going_pid: u32,
    pub going_up: Duration,
    pub going_rss_kb: u64,
    /// The three load averages as /proc/loadavg writes them.
    pub load: [String; 3],
    pub mem_total_kb: u64,
    pub mem_available_kb: u64,
}

impl Host {
    pub fn read(going_up: Duration) -> Host {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let mut load = <[String; 3]>::default();
        let loadavg = read("/proc/loadavg");
        for (slot, word) in load.iter_mut().zip(loadavg.split_whitespace()) {
            // Digits and a dot only: it goes into JSON unquoted.
            if word.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                *slot = word.to_string();
            }
        }
        let meminfo = read("/proc/meminfo");
        Host {
            going_pid: std::process::id(),
            going_up,
            going_rss_kb: kb_field(&read("/proc/self/status"), "VmRSS:"),
            load,
            mem_total_kb: kb_field(&meminfo, "MemTotal:"),
            mem_available_kb: kb_field(&meminfo, "MemAvailable:"),
        }
    }

    /// The three load averages, `sep` between them; 0 for one not read.
    fn loads(&self, sep: &str) -> String {
        let zero = |l: &String| if l.is_empty() { "0".into() } else { l.clone() };
        self.load.each_ref().map(zero).join(sep)
    }
}

fn kb_field(text: &str, key: &str) -> u64 {
    let value = |line: &str| {
        line.strip_prefix(key)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    text.lines().find_map(value).unwrap_or(0)
}

/// One service as shown.
pub struct Row<'a> {
    pub service: &'a Service,
    pub stats: Option<ProcStats>,
    /// The file that defines it.
    pub file: Option<std::path::PathBuf>,
}

/// JSON strings, comma-separated.
fn strings(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|s| quoted(s)).collect();
    quoted.join(",")
}

fn last_exit(exit: Option<Exit>) -> String {
    match exit {
        None => "-".into(),
        Some(Exit::Code(code)) => format!("exit {code}"),
        Some(Exit::Signal(signal)) => format!("signal {}", signals::name(signal)),
        Some(Exit::Unknown) => "unknown".into(),
    }
}

fn uptime(service: &Service, now: Instant) -> Option<Duration> {
    let at = service.started_at().filter(|_| service.is_active())?;
    Some(now.saturating_duration_since(at))
}

/// A scheduled service's next start: as `going status` words it, and as a
/// UNIX time.
pub fn next_start(service: &Service, wall_now: SystemTime) -> Option<(String, i64)> {
    if service.state() != State::Scheduled {
        return None;
    }
    let schedule = service.spec.extras().schedule?;
    let now = wall_now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let (edge, at) = crate::config::calendar::next_edge_unix(&schedule, i64::try_from(now).ok()?)?;
    Some((format!("scheduled, {edge}"), at))
}

/// Kilobytes as gigabytes with one decimal: `23.4G`. Integer arithmetic
/// only: float formatting would cost going tens of kB of code.
fn gigabytes(kb: u64) -> String {
    let tenths = (kb * 10 + 512 * 1024) / (1024 * 1024);
    format!("{}.{}G", tenths / 10, tenths % 10)
}

/// A duration in seconds with `decimals` (1 to 3) decimals: `1.50`.
fn seconds(duration: Duration, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    let units = duration.as_millis() * scale / 1000;
    format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = decimals as usize
    )
}

/// Bytes written, nothing kept: the width of a cell, measured without
/// making it a string (a table built from a string a cell made most of
/// going's peak memory after a status call).
#[derive(Default)]
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0 += text.len();
        Ok(())
    }
}

const HEADER: [&str; 8] = [
    "NAME",
    "STATE",
    "PID",
    "UPTIME",
    "RESTARTS",
    "LAST-EXIT",
    "CPU",
    "RSS",
];

/// Writes cell `column` of a service's row (`None`: the header).
fn cell(
    w: &mut dyn Write,
    row: Option<&Row<'_>>,
    column: usize,
    now: Instant,
    wall_now: SystemTime,
) -> std::fmt::Result {
    let Some(row) = row else {
        return w.write_str(HEADER.get(column).copied().unwrap_or_default());
    };
    let s = row.service;
    match (column, s.pid(), uptime(s, now), row.stats) {
        (0, ..) => w.write_str(s.name()),
        (1, ..) => w.write_str(s.state().name()),
        (2, Some(pid), ..) => write!(w, "{pid}"),
        (3, _, Some(up), _) => w.write_str(&format_duration(up)),
        (4, ..) => write!(w, "{}", s.restarts()),
        (5, ..) => w.write_str(&last_exit(s.last_exit())),
        (6, .., Some(st)) => write!(w, "{}s", seconds(st.cpu, 2)),
        (7, .., Some(st)) => write!(w, "{} kB", st.rss_kb),
        (2 | 3 | 6 | 7, ..) => w.write_str("-"),
        _ => notes(w, s, now, wall_now),
    }
}

/// The last column: readiness, then why the service is as it is.
fn notes(w: &mut dyn Write, s: &Service, now: Instant, wall_now: SystemTime) -> std::fmt::Result {
    // A service that says when it is ready: started, or ready too.
    let says_ready = s.spec.extras().readiness.is_some() && s.state() == State::Running;
    let next = next_start(s, wall_now).map(|(reason, _)| reason);
    let version = version_note(s);
    // Down and flapping are noted already.
    let reason = s.reason(now).filter(|r| r != "down" && r != "flapping");
    let notes = [
        next.as_deref(),
        (says_ready && s.is_ready()).then_some("ready"),
        (says_ready && !s.is_ready()).then_some("not-ready"),
        s.is_admin_down().then_some("down"),
        s.is_flapping(now).then_some("flapping"),
        version.as_deref(),
    ];
    let mut sep = "";
    for note in notes.into_iter().flatten() {
        write!(w, "{sep}{note}")?;
        sep = ",";
    }
    match reason {
        Some(reason) => write!(w, "{}{reason}", if sep.is_empty() { "" } else { ", " }),
        None => Ok(()),
    }
}

/// The table for people, written to `w` as it is made.
pub fn write_text(
    w: &mut dyn Write,
    host: &Host,
    rows: &[Row<'_>],
    now: Instant,
    wall_now: SystemTime,
) -> std::fmt::Result {
    // The last column, the notes, is not padded.
    let mut widths = [0usize; HEADER.len() + 1];
    let all = std::iter::once(None).chain(rows.iter().map(Some));
    for row in all.clone() {
        for (column, width) in widths.iter_mut().enumerate() {
            let mut count = Count::default();
            let _ = cell(&mut count, row, column, now, wall_now);
            *width = (*width).max(count.0);
        }
    }
    writeln!(
        w,
        "going pid {}, up {}, rss {} kB; load {}; memory {} available of {}",
        host.going_pid,
        format_duration(host.going_up),
        host.going_rss_kb,
        host.loads(" "),
        gigabytes(host.mem_available_kb),
        gigabytes(host.mem_total_kb),
    )?;
    for row in all.clone() {
        let mut noted = Count::default();
        let _ = row.map(|r| notes(&mut noted, r.service, now, wall_now));
        // Padded to the column, two blanks between: nothing after the
        // last cell that has something.
        let last = HEADER.len() - usize::from(noted.0 == 0);
        for (column, &width) in widths.iter().enumerate().take(last + 1) {
            let mut count = Count::default();
            let _ = cell(&mut count, row, column, now, wall_now);
            cell(w, row, column, now, wall_now)?;
            if column < last {
                write!(w, "{:pad$}", "", pad = width.saturating_sub(count.0) + 2)?;
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

/// `version 2026-12-24T08:00:00, next 2027-01-01T00:00:00`, or
/// `applies from ...` for a file whose top level is still to come.
fn version_note(s: &Service) -> Option<String> {
    use crate::config::versions::format_local;
    let v = s.spec.extras().versions?;
    let next = v.next.map(format_local);
    Some(match (v.pending, v.current, next) {
        (true, _, Some(next)) => format!("applies from {next}"),
        (_, Some(current), Some(next)) => {
            format!("version {}, next {next}", format_local(current))
        }
        (_, Some(current), None) => format!("version {}", format_local(current)),
        (_, None, Some(next)) => format!("next version {next}"),
        (_, None, None) => return None,
    })
}

/// The JSON of a UNIX time as local time, or null.
fn local_json(at: Option<i64>) -> String {
    at.map_or("null".into(), |at| {
        quoted(&crate::config::versions::format_local(at))
    })
}

/// A JSON string literal.
fn quoted(text: &str) -> String {
    quoted_as(text, false)
}

/// A JSON string literal, or with `toml` a TOML basic string, which
/// escapes newline, tab and DEL as well.
pub fn quoted_as(text: &str, toml: bool) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' if toml => out.push_str("\\n"),
            '\t' if toml => out.push_str("\\t"),
            c if (c as u32) < 0x20 || toml && c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Wall-clock time of a past `Instant`, as `2026-11-21T19:37:00Z`.
fn wall(at: Instant, now: Instant, wall_now: SystemTime) -> String {
    let then = wall_now
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(wall_now);
    let seconds = then
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    quoted(&crate::log::format_utc(seconds))
}

/// One document for programs, written to `out` as it is made.
pub fn write_json(
    out: &mut dyn Write,
    host: &Host,
    rows: &[Row<'_>],
    now: Instant,
    wall_now: SystemTime,
) -> std::fmt::Result {
    write!(
        out,
        "{{\"going\":{{\"pid\":{},\"uptime_seconds\":{},\"rss_kb\":{},\"load\":[{}],\"mem_total_kb\":{},\"mem_available_kb\":{}}},\"services\":[",
        host.going_pid,
        seconds(host.going_up, 3),
        host.going_rss_kb,
        host.loads(","),
        host.mem_total_kb,
        host.mem_available_kb
    )?;
    for (index, row) in rows.iter().enumerate() {
        let s = row.service;
        let null = || "null".to_string();
        let instance = s
            .name()
            .split_once('@')
            .map_or_else(null, |(_, i)| i.to_string());
        let next = next_start(s, wall_now);
        let exit = match s.last_exit() {
            None => null(),
            Some(Exit::Code(code)) => format!("{{\"code\":{code}}}"),
            Some(Exit::Signal(signal)) => {
                format!("{{\"signal\":{}}}", quoted(&signals::name(signal)))
            }
            Some(Exit::Unknown) => "{\"unknown\":true}".to_string(),
        };
        write!(
            out,
            "{}{{\"name\":{},\"service\":{},\"instance\":{instance},\"groups\":[{}],\"state\":{},\"pid\":{},\"uptime_seconds\":{},\"restarts\":{},\"last_exit\":{exit},\"last_exit_time\":{},\"start_time\":{},\"cpu_seconds\":{},\"rss_kb\":{},\"flapping\":{},\"admin_down\":{},\"ready\":{},\"reason\":{},\"cmd\":[{}],\"depends_on\":[{}],\"file\":{},\"version\":{},\"next_version\":{},\"next_start\":{}}}",
            if index == 0 { "" } else { "," },
            quoted(s.name()),
            quoted(s.base_name()),
            strings(&s.spec.groups),
            quoted(s.state().name()),
            s.pid().map_or_else(null, |pid| pid.to_string()),
            uptime(s, now).map_or_else(null, |up| seconds(up, 3)),
            s.restarts(),
            s.exited_at()
                .map_or_else(null, |at| wall(at, now, wall_now)),
            s.started_at()
                .map_or_else(null, |at| wall(at, now, wall_now)),
            row.stats.map_or_else(null, |st| seconds(st.cpu, 2)),
            row.stats.map_or_else(null, |st| st.rss_kb.to_string()),
            s.is_flapping(now),
            s.is_admin_down(),
            s.is_ready(),
            s.reason(now)
                .or_else(|| next.as_ref().map(|(reason, _)| reason.clone()))
                .map_or_else(null, |r| quoted(&r)),
            strings(&s.spec.argv),
            strings(&s.spec.depends_on),
            row.file
                .as_ref()
                .map_or_else(null, |f| quoted(&f.display().to_string())),
            local_json(s.spec.extras().versions.and_then(|v| v.current)),
            local_json(s.spec.extras().versions.and_then(|v| v.next)),
            next.map_or_else(null, |(_, at)| at.to_string()),
        )?;
    }
    out.write_str("]}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceSpec;

    fn row_service(name: &str) -> Service {
        use crate::service::Event;
        // Killed once, then running again as pid 42.
        let mut service = Service::new(ServiceSpec::new(name, vec!["x".into()]));
        let now = Instant::now();
        let killed = Event::Exited {
            status: Exit::Signal(9),
            exec_error: None,
        };
        let (start, run) = (Event::Start, Event::ExecOk);
        let gone = Event::GroupGone;
        let events = [start.clone(), Event::Spawned(41), run.clone(), killed, gone];
        for event in events.into_iter().chain([start, Event::Spawned(42), run]) {
            service.on(event, now);
        }
        assert_eq!((service.state(), service.pid()), (State::Running, Some(42)));
        service
    }

    #[test]
    fn text_rows_align_and_say_what_happened() {
        let web = row_service("web");
        let db = row_service("database@1");
        let rows = [
            Row {
                service: &web,
                stats: None,
                file: None,
            },
            Row {
                service: &db,
                stats: Some(ProcStats {
                    cpu: Duration::from_millis(1500),
                    rss_kb: 2048,
                }),
                file: None,
            },
        ];
        let mut out = String::new();
        let _ = write_text(
            &mut out,
            &Host::default(),
            &rows,
            Instant::now(),
            SystemTime::now(),
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines
                .get(1)
                .is_some_and(|l| l.starts_with("NAME        STATE    PID  UPTIME"))
        );
        assert!(
            lines.get(2).is_some_and(
                |l| l.starts_with("web         running  42") && l.contains("signal KILL")
            )
        );
        assert!(
            lines
                .get(3)
                .is_some_and(|l| l.contains("1.50s") && l.ends_with("2048 kB"))
        );
    }

    #[test]
    fn numbers_print_without_floats() {
        assert_eq!(seconds(Duration::from_millis(1500), 2), "1.50");
        assert_eq!(seconds(Duration::from_millis(12_345), 3), "12.345");
        assert_eq!(seconds(Duration::from_millis(5), 2), "0.00");
        assert_eq!(gigabytes(24_684_092), "23.5G");
        assert_eq!(gigabytes(0), "0.0G");
    }

    #[test]
    fn json_is_one_document() {
        let web = row_service("web@0");
        let mut out = String::new();
        let _ = write_json(
            &mut out,
            &Host::default(),
            &[Row {
                service: &web,
                stats: None,
                file: Some("/etc/going.d/web.toml".into()),
            }],
            Instant::now(),
            SystemTime::UNIX_EPOCH,
        );
        assert!(out.starts_with("{\"going\":{\"pid\":0,"));
        assert!(out.contains("\"name\":\"web@0\",\"service\":\"web\",\"instance\":0,"));
        assert!(out.contains("\"last_exit\":{\"signal\":\"KILL\"}"));
        assert!(out.contains("\"start_time\":\"1970-01-01T00:00:00Z\""));
        assert!(out.contains(
            "\"reason\":null,\"cmd\":[\"x\"],\"depends_on\":[],\"file\":\"/etc/going.d/web.toml\","
        ));
        assert_eq!(quoted("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
