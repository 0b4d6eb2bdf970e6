//! Service output through going's log: `stdout`/`stderr = "syslog"`.
//!
//! Most tests start going with `-l syslog:TMP/log.sock`, a unix datagram
//! socket the test binds before going starts and reads continuously in a
//! thread (so that it never fills), and check the RFC 3164 datagrams that
//! arrive. Lines going could not send (socket full) go to going's stderr,
//! which the launcher keeps in TMP/going.stderr.

mod common;
use common::*;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- syslog

/// A fake syslog daemon: a datagram socket read into memory by a thread.
struct Syslog {
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Syslog {
    fn bind(path: &Path) -> Syslog {
        let socket =
            UnixDatagram::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        socket
            .set_read_timeout(Some(ms(50)))
            .expect("set_read_timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (lines.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Larger than any datagram going sends: nothing is truncated.
            let mut buffer = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buffer) {
                    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    l.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                }
            }
        });
        Syslog {
            lines,
            stop,
            thread: Some(thread),
        }
    }

    /// Every datagram received so far, in order.
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- launcher

/// `going -s TMP/going.sock -l syslog:TMP/log.sock -d TMP/svc`, stdout and
/// stderr to TMP/going.stdout and TMP/going.stderr. Drop stops going and
/// everything it started.
struct SyslogGoing {
    child: Child,
    pid: i32,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
    syslog: Syslog,
}

impl SyslogGoing {
    fn start(t: &TempDir) -> SyslogGoing {
        let log_sock = t.join("log.sock");
        // Bound before going starts: its first line must find the socket.
        let syslog = Syslog::bind(&log_sock);
        fs::create_dir_all(t.svc()).expect("create service dir");
        let stderr_path = t.join("going.stderr");
        let err = fs::File::create(&stderr_path).expect("create stderr file");
        let out = fs::File::create(t.join("going.stdout")).expect("create stdout file");
        let child = Command::new(BIN)
            .arg("-s")
            .arg(t.join("going.sock"))
            .arg("-l")
            .arg(format!("syslog:{}", log_sock.display()))
            .arg("-d")
            .arg(t.svc())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn going");
        let pid = child.id() as i32;
        let g = SyslogGoing {
            child,
            pid,
            stderr_path,
            exit: None,
            syslog,
        };
        g.wait_dgram("info going: going 1.0.0 started, pid ", secs(5));
        g
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn dgrams(&self) -> Vec<String> {
        self.syslog.lines()
    }

    fn fail(&self, msg: &str) -> ! {
        let mut dump = String::new();
        for d in self.dgrams() {
            // A megabyte of x's helps nobody.
            if d.len() > 300 {
                dump.push_str(&format!("{}... ({} bytes)\n", &d[..300], d.len()));
            } else {
                dump.push_str(&format!("{d}\n"));
            }
        }
        let mut err = self.stderr();
        if err.len() > 4000 {
            err = format!("{}... ({} bytes)", &err[..4000], err.len());
        }
        panic!("{msg}\n----- datagrams -----\n{dump}----- going stderr -----\n{err}\n-----");
    }

    fn check(&self, cond: bool, msg: &str) {
        if !cond {
            self.fail(msg);
        }
    }

    fn wait(&self, cond: impl FnMut() -> bool, what: &str) {
        if !wait_until(secs(5), cond) {
            self.fail(&format!("timed out after 5 s waiting for: {what}"));
        }
    }

    /// Wait for a datagram containing `pat`; returns it.
    fn wait_dgram(&self, pat: &str, timeout: Duration) -> String {
        match wait_for(timeout, || {
            self.dgrams().into_iter().find(|d| d.contains(pat))
        }) {
            Some(d) => d,
            None => self.fail(&format!(
                "timed out after {timeout:?} waiting for a datagram containing {pat:?}"
            )),
        }
    }

    /// A service's own pid from the file it wrote, checked to be a live
    /// child of going (or already gone, when `may_be_gone`).
    fn service_pid(&self, path: &Path, may_be_gone: bool) -> i32 {
        let Some(p) = read_pid_file(path, secs(5)) else {
            self.fail(&format!("no pid in {}", path.display()));
        };
        if !may_be_gone {
            self.check(
                alive(p) && stat(p).map(|s| s.ppid) == Some(self.pid),
                &format!("pid {p} is not a live child of going {}", self.pid),
            );
        }
        p
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_none() {
            let deadline = Instant::now() + timeout;
            loop {
                if let Ok(Some(st)) = self.child.try_wait() {
                    self.exit = Some(st);
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(ms(10));
            }
        }
        self.exit
    }
}

impl Drop for SyslogGoing {
    fn drop(&mut self) {
        if self.exit.is_none() {
            // Everything going started, recorded before it is reparented.
            let procs: Vec<Stat> = descendants(self.pid).into_iter().filter_map(stat).collect();
            kill(self.pid, SIGTERM);
            if self.wait_exit(secs(10)).is_none() {
                kill(self.pid, SIGKILL);
                let _ = self.wait_exit(secs(5));
            }
            kill_survivors(&procs, self.pid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- helpers

/// A service file: `/bin/sh -c SCRIPT`, plus `extra` lines.
fn sh_service(script: &str, extra: &str) -> String {
    format!(
        "cmd = {}\nstop-timeout = \"2s\"\n{extra}\n",
        qa(&["/bin/sh", "-c", script])
    )
}

/// Checks an RFC 3164 datagram `<PRI>Mmm dd hh:mm:ss going[PID]: REST`
/// and returns (PRI, timestamp, PID, REST).
fn parse_rfc3164(d: &str) -> Option<(u32, String, i32, String)> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = d.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    let pri: u32 = pri.parse().ok()?;
    let stamp = rest.get(..15)?;
    let b = stamp.as_bytes();
    let digit = |i: usize| b[i].is_ascii_digit();
    let ok = MONTHS.contains(&&stamp[..3])
        && b[3] == b' '
        && (b[4] == b' ' || b[4].is_ascii_digit())
        && digit(5)
        && b[6] == b' '
        && digit(7)
        && digit(8)
        && b[9] == b':'
        && digit(10)
        && digit(11)
        && b[12] == b':'
        && digit(13)
        && digit(14);
    if !ok {
        return None;
    }
    let rest = rest.get(15..)?.strip_prefix(" going[")?;
    let (pid, rest) = rest.split_once("]: ")?;
    Some((pri, stamp.to_string(), pid.parse().ok()?, rest.to_string()))
}

/// `date '+%b %e %H:%M'`: local time as a syslog timestamp, to the minute.
fn local_minute() -> Option<String> {
    let out = Command::new("date").arg("+%b %e %H:%M").output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    (s.len() == 12).then_some(s)
}

fn vm_kb(pid: i32, field: &str) -> u64 {
    status_field(pid, field)
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
}

// ---------------------------------------------------------------- tests

#[test]
fn syslog_lines_through_a_real_socket() {
    let t = TempDir::new("out-syslog");
    let pidfile = t.join("chatty.pid");
    t.write_svc(
        "chatty.toml",
        &sh_service(
            &format!(
                "echo $$ > {}; echo hello out; echo oops >&2; exec sleep 1000",
                pidfile.display()
            ),
            "stdout = \"syslog\"\nstderr = \"syslog\"",
        ),
    );
    let before = local_minute();
    let g = SyslogGoing::start(&t);
    let p = g.service_pid(&pidfile, false);

    let out = g.wait_dgram(&format!("chatty: pid {p}: hello out"), secs(5));
    let err = g.wait_dgram(&format!("chatty: pid {p}: oops"), secs(5));
    let after = local_minute();

    let Some((pri, stamp, ident, rest)) = parse_rfc3164(&out) else {
        g.fail(&format!("stdout datagram is not RFC 3164: {out:?}"));
    };
    g.check(
        pri == 30,
        &format!("stdout line: PRI {pri}, want 30 (daemon.info)"),
    );
    g.check(
        ident == g.pid,
        &format!("ident going[{ident}], want going's pid {}", g.pid),
    );
    g.check(
        rest == format!("info chatty: pid {p}: hello out"),
        &format!("stdout datagram body: {rest:?}"),
    );
    if let (Some(b), Some(a)) = (&before, &after) {
        g.check(
            stamp[..12] == *b || stamp[..12] == *a,
            &format!("timestamp {stamp:?} is not local time ({b:?} .. {a:?})"),
        );
    }

    let Some((pri, _, ident, rest)) = parse_rfc3164(&err) else {
        g.fail(&format!("stderr datagram is not RFC 3164: {err:?}"));
    };
    g.check(
        pri == 28,
        &format!("stderr line: PRI {pri}, want 28 (daemon.warning)"),
    );
    g.check(
        ident == g.pid,
        &format!("ident going[{ident}] of the stderr line"),
    );
    g.check(
        rest == format!("warn chatty: pid {p}: oops"),
        &format!("stderr datagram body: {rest:?}"),
    );

    // One record each, no newline inside a datagram, nothing on stderr or
    // on going's stdout.
    let dgrams = g.dgrams();
    for pat in ["hello out", "oops"] {
        let n = dgrams.iter().filter(|d| d.contains(pat)).count();
        g.check(n == 1, &format!("{pat:?} in {n} datagrams, want 1"));
    }
    g.check(
        dgrams.iter().all(|d| !d.contains('\n')),
        "a datagram holds a newline",
    );
    let stderr = g.stderr();
    g.check(
        !stderr.contains("hello out") && !stderr.contains("oops"),
        "service lines reached going's stderr although the socket was there",
    );
    let stdout = fs::read_to_string(t.join("going.stdout")).unwrap_or_default();
    g.check(
        !stdout.contains("hello out"),
        "the service's stdout reached going's stdout",
    );
    // The service still runs, its stdout and stderr are pipes.
    for fd in [1, 2] {
        let link = fs::read_link(format!("/proc/{p}/fd/{fd}"))
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        g.check(
            link.starts_with("pipe:["),
            &format!("service fd {fd} is {link:?}, want a pipe"),
        );
    }
}

#[test]
fn a_megabyte_line_does_not_grow_going() {
    const TOTAL: usize = 1_048_576;
    let t = TempDir::new("out-mega");
    let pidfile = t.join("mega.pid");
    let go = t.join("go");
    // A warm-up line exercises the output path before the measurement; the
    // big line waits for the test's go file.
    t.write_svc(
        "mega.toml",
        &sh_service(
            &format!(
                "echo $$ > {}; echo warm; while [ ! -e {} ]; do sleep 0.05; done; \
                 head -c {TOTAL} /dev/zero | tr '\\0' x; echo; exec sleep 1000",
                pidfile.display(),
                go.display()
            ),
            "stdout = \"syslog\"",
        ),
    );
    let g = SyslogGoing::start(&t);
    let p = g.service_pid(&pidfile, false);
    g.wait_dgram(&format!("info mega: pid {p}: warm"), secs(5));
    // Settle: nothing else happens in going until the go file appears.
    std::thread::sleep(ms(500));
    let rss0 = vm_kb(g.pid, "VmRSS");
    let hwm0 = vm_kb(g.pid, "VmHWM");
    fs::write(&go, "").expect("create go file");

    // The pieces, from the socket and (when it was full) going's stderr.
    let prefix = format!("mega: pid {p}: ");
    let pieces = |g: &SyslogGoing| -> (Vec<String>, Vec<String>) {
        let from = |text: Vec<String>| -> Vec<String> {
            text.iter()
                .filter_map(|l| {
                    let i = l.find(&prefix)?;
                    let piece = &l[i + prefix.len()..];
                    (piece != "warm").then(|| piece.to_string())
                })
                .collect()
        };
        let err: Vec<String> = g.stderr().lines().map(str::to_string).collect();
        (from(g.dgrams()), from(err))
    };
    let count_x = |(a, b): &(Vec<String>, Vec<String>)| -> usize {
        a.iter().chain(b).map(|s| s.matches('x').count()).sum()
    };
    let done = wait_until(secs(30), || count_x(&pieces(&g)) >= TOTAL);
    let got = pieces(&g);
    g.check(
        done,
        &format!("only {} of {TOTAL} x's logged after 30 s", count_x(&got)),
    );
    // The pipe is drained: the service is back to sleeping, nothing waits.
    std::thread::sleep(ms(300));
    let rss1 = vm_kb(g.pid, "VmRSS");
    let hwm1 = vm_kb(g.pid, "VmHWM");
    let got = pieces(&g);
    let (socket, fallback) = &got;
    eprintln!(
        "going VmRSS {rss0} -> {rss1} kB, VmHWM {hwm0} -> {hwm1} kB; \
         {} pieces by socket, {} by stderr",
        socket.len(),
        fallback.len()
    );

    let all: Vec<&String> = socket.iter().chain(fallback).collect();
    // The newline after the last full piece currently yields one more,
    // empty, record (see a_line_of_exactly_1024_bytes_is_one_record).
    let x_pieces: Vec<&&String> = all.iter().filter(|s| !s.is_empty()).collect();
    for s in &x_pieces {
        g.check(
            s.len() <= 1024 && s.bytes().all(|b| b == b'x'),
            &format!(
                "a piece of {} bytes (want at most 1024 x's): {:?}...",
                s.len(),
                &s[..s.len().min(40)]
            ),
        );
    }
    let total: usize = x_pieces.iter().map(|s| s.len()).sum();
    g.check(total == TOTAL, &format!("{total} x's logged, want {TOTAL}"));
    g.check(
        x_pieces.len() == TOTAL / 1024,
        &format!("{} pieces, want {}", x_pieces.len(), TOTAL / 1024),
    );
    for d in g.dgrams().iter().filter(|d| d.contains(&prefix)) {
        g.check(d.starts_with("<30>"), "a stdout piece not at daemon.info");
    }
    g.check(
        rss1 <= rss0 + 64,
        &format!("going's VmRSS grew from {rss0} kB to {rss1} kB (limit +64 kB)"),
    );
    g.check(
        hwm1 <= hwm0 + 64,
        &format!("going's peak RSS (VmHWM) grew from {hwm0} kB to {hwm1} kB (limit +64 kB)"),
    );
    g.check(alive(p), "the service died");
}

#[test]
fn stderr_mode_shows_service_lines() {
    let t = TempDir::new("out-stderr");
    let pidfile = t.join("echoer.pid");
    t.write_svc(
        "echoer.toml",
        &sh_service(
            &format!(
                "echo $$ > {}; echo marker-123; exec sleep 1000",
                pidfile.display()
            ),
            "stdout = \"syslog\"",
        ),
    );
    let g = Going::start(&t);
    let p = g.pid_from_file(&pidfile);
    let want = format!(" info echoer: pid {p}: marker-123");
    // the line is the contract: going(8) LOGGING
    g.wait_log(&want, secs(5));
    let log = g.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("marker-123")).collect();
    g.check(
        lines.len() == 1,
        &format!("marker-123 in {} log lines, want 1", lines.len()),
    );
    // TIMESTAMP info echoer: pid P: marker-123, nothing else.
    let line = lines[0];
    let (stamp, rest) = line.split_at(line.find(' ').unwrap_or(0));
    let b = stamp.as_bytes();
    g.check(
        b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z',
        &format!("log line without a UTC timestamp: {line:?}"),
    );
    g.check(rest == want, &format!("log line {line:?}"));
    let stdout = fs::read_to_string(t.join("going.stdout")).unwrap_or_default();
    g.check(
        !stdout.contains("marker-123"),
        "the service's stdout reached going's stdout",
    );
}

#[test]
fn last_words_are_logged() {
    let t = TempDir::new("out-last");
    let g = SyslogGoing::start(&t);
    // going has settled with no service: its descriptors now.
    std::thread::sleep(ms(200));
    let baseline = fds(g.pid);
    let pidfile = t.join("brief.pid");
    t.write_svc(
        "brief.toml",
        &sh_service(
            &format!("echo $$ > {}; printf bye", pidfile.display()),
            "stdout = \"syslog\"\nrestart = \"never\"",
        ),
    );
    let p = g.service_pid(&pidfile, true);
    let d = g.wait_dgram(&format!("brief: pid {p}: bye"), secs(5));
    g.check(
        parse_rfc3164(&d).map(|(pri, _, _, rest)| (pri, rest))
            == Some((30, format!("info brief: pid {p}: bye"))),
        &format!("last words datagram: {d:?}"),
    );
    g.wait_dgram("brief: exited with status 0", secs(5));
    std::thread::sleep(ms(200));
    let n = g.dgrams().iter().filter(|d| d.contains("bye")).count();
    g.check(n == 1, &format!("\"bye\" in {n} datagrams, want 1"));
    // The pipe's read end is closed once the service is gone.
    if !wait_until(secs(2), || fds(g.pid) == baseline) {
        g.fail(&format!(
            "going's descriptors after the service: {:?}, before: {baseline:?}",
            fds(g.pid)
        ));
    }
}

#[test]
fn stdout_only() {
    let t = TempDir::new("out-only");
    let pidfile = t.join("half.pid");
    t.write_svc(
        "half.toml",
        &sh_service(
            &format!(
                "echo $$ > {}; echo to-the-log; echo raw-err >&2; exec sleep 1000",
                pidfile.display()
            ),
            "stdout = \"syslog\"",
        ),
    );
    let g = SyslogGoing::start(&t);
    let p = g.service_pid(&pidfile, false);
    g.wait_dgram(&format!("info half: pid {p}: to-the-log"), secs(5));
    g.wait(
        || g.stderr().contains("raw-err"),
        "raw-err on going's stderr",
    );

    let link = |pid: i32, fd: i32| {
        fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    };
    let going_err = link(g.pid, 2);
    let service_err = link(p, 2);
    g.check(
        !service_err.is_empty() && service_err == going_err,
        &format!("service fd 2 is {service_err:?}, going's fd 2 is {going_err:?}"),
    );
    g.check(
        !service_err.starts_with("pipe:"),
        "service stderr is a pipe",
    );
    // stdout is a pipe whose other end going holds.
    let service_out = link(p, 1);
    g.check(
        service_out.starts_with("pipe:["),
        &format!("service fd 1 is {service_out:?}, want a pipe"),
    );
    g.check(
        fds(g.pid).iter().any(|(_, l)| *l == service_out),
        &format!("going holds no end of the service's stdout {service_out}"),
    );
    // stderr went out raw, unlogged.
    let stderr = g.stderr();
    g.check(
        stderr.lines().any(|l| l == "raw-err"),
        "raw-err is not a raw line on going's stderr",
    );
    g.check(
        !g.dgrams().iter().any(|d| d.contains("raw-err")),
        "the inherited stderr was logged",
    );
}

#[test]
fn last_words_at_shutdown_are_logged_before_going_exits() {
    let t = TempDir::new("out-shutdown");
    let pidfile = t.join("polite.pid");
    t.write_svc(
        "polite.toml",
        &sh_service(
            &format!(
                "trap 'printf goodbye; exit 0' TERM; echo $$ > {}; \
                 while :; do sleep 0.1; done",
                pidfile.display()
            ),
            "stdout = \"syslog\"",
        ),
    );
    let mut g = SyslogGoing::start(&t);
    let p = g.service_pid(&pidfile, false);
    kill(g.pid, SIGTERM);
    let Some(st) = g.wait_exit(secs(10)) else {
        g.fail("going did not exit within 10 s of SIGTERM");
    };
    g.check(st.success(), &format!("going exited with {st:?}"));
    // The reader may still be behind the socket by a datagram or two.
    let bye = format!("polite: pid {p}: goodbye");
    let last = "all services stopped, exiting";
    g.wait_dgram(last, secs(2));
    let dgrams = g.dgrams();
    let at = |pat: &str| dgrams.iter().position(|d| d.contains(pat));
    match (at(&bye), at(last)) {
        (Some(a), Some(b)) => g.check(a < b, "the last words came after going's last line"),
        _ => g.fail(&format!("no datagram with {bye:?}")),
    }
    g.check(!alive(p), "the service survived going");
}

/// A line of exactly LINE_MAX (1024) bytes and its newline are one record.
/// Ignored: going logs the 1024 bytes, then an empty record `pid P: ` for
/// the newline that follows (src/output.rs flushes the full buffer before
/// it sees the newline). Run with `--ignored`.
#[test]
fn a_line_of_exactly_1024_bytes_is_one_record() {
    let t = TempDir::new("out-exact");
    let pidfile = t.join("exact.pid");
    t.write_svc(
        "exact.toml",
        &sh_service(
            &format!(
                "echo $$ > {}; head -c 1024 /dev/zero | tr '\\0' x; echo; echo after; \
                 exec sleep 1000",
                pidfile.display()
            ),
            "stdout = \"syslog\"",
        ),
    );
    let g = Going::start(&t);
    let p = g.pid_from_file(&pidfile);
    let prefix = format!(" info exact: pid {p}: ");
    // the lines are the contract: going(8) LOGGING
    g.wait_log(&format!("{prefix}after"), secs(5));
    let records: Vec<String> = g
        .log()
        .lines()
        .filter_map(|l| Some(l[l.find(&prefix)? + prefix.len()..].to_string()))
        .collect();
    let shown: Vec<String> = records
        .iter()
        .map(|r| format!("{} bytes {:?}", r.len(), &r[..r.len().min(8)]))
        .collect();
    g.check(
        records.len() == 2 && records[0] == "x".repeat(1024) && records[1] == "after",
        &format!("records of the service: {shown:?}, want [1024 x's, \"after\"]"),
    );
}
