//! Fault injection (issue 7): each test breaks something going depends on
//! (fork, exec, descriptors, its log, its directory, inotify, the clock,
//! its clients) and ends by checking that every service is still
//! supervised and that going answers `going status` promptly.

mod common;
use common::*;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `going status` may take for going to count as responsive.
const PROMPT: Duration = Duration::from_secs(3);

// ------------------------------------------------------------- helpers

/// One service of `going status --json`.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    state: String,
    pid: Option<i32>,
    uptime: Option<f64>,
    restarts: u64,
}

/// `going status --json`, parsed enough for these tests.
struct Status {
    going_uptime: f64,
    rows: Vec<Row>,
    raw: String,
}

impl Status {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

/// A JSON number as f64; None for anything else (`null`).
fn num(j: Option<&Json>) -> Option<f64> {
    match j? {
        Json::Num(n) => n.parse().ok(),
        _ => None,
    }
}

/// Read with the common JSON reader of tests/common.
fn parse_status(raw: &str) -> Option<Status> {
    let doc = parse_json(raw)?;
    let going_uptime = num(doc.get("going")?.get("uptime_seconds"))?;
    let Json::Arr(services) = doc.get("services")? else {
        return None;
    };
    let mut rows = Vec::new();
    for obj in services {
        rows.push(Row {
            name: obj.get("name")?.as_str()?.to_string(),
            state: obj.get("state")?.as_str()?.to_string(),
            pid: obj.get("pid")?.as_i64().map(|p| p as i32),
            uptime: num(obj.get("uptime_seconds")),
            restarts: obj.get("restarts")?.as_i64()? as u64,
        });
    }
    Some(Status {
        going_uptime,
        rows,
        raw: raw.to_string(),
    })
}

/// Runs `going ARGS...` (a client), its output read as it comes (a status
/// of 10,000 services does not fit in a pipe); killed after `limit`.
fn run_client(args: &[&str], limit: Duration) -> Option<std::process::Output> {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn going");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(limit).ok().and_then(Result::ok);
    if out.is_none() {
        kill(pid, SIGKILL);
    }
    let _ = reader.join();
    out
}

/// `going status --json -s SOCK`: it must answer, within [`PROMPT`].
fn status(g: &Going, sock: &str) -> Status {
    let t0 = Instant::now();
    let Some(out) = run_client(&["status", "--json", "-s", sock], PROMPT + secs(2)) else {
        g.fail(&format!(
            "going status did not answer within {:?}",
            PROMPT + secs(2)
        ));
    };
    let took = t0.elapsed();
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    g.check(
        out.status.code() == Some(0),
        &format!(
            "going status failed ({:?}): {}{}",
            out.status,
            raw,
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    g.check(
        took <= PROMPT,
        &format!("going status took {took:?}, more than {PROMPT:?}"),
    );
    match parse_status(&raw) {
        Some(st) => st,
        None => g.fail(&format!("going status --json not understood:\n{raw}")),
    }
}

/// `going CMD -s SOCK ARGS...`: exit status and output.
fn ctl(sock: &str, cmd: &str, args: &[&str]) -> (i32, String) {
    let mut a = vec![cmd, "-s", sock];
    a.extend_from_slice(args);
    let Some(o) = run_client(&a, secs(10)) else {
        return (-1, format!("going {cmd} {args:?} did not exit within 10 s"));
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// What keeps the services from counting as supervised; empty when all is
/// well: each of `same` runs with the pid given (never restarted), each of
/// `running` runs, all as live children of going, and going has no live
/// child that its status does not name.
fn supervision_problems(
    g: &Going,
    st: &Status,
    same: &[(&str, i32)],
    running: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = same
        .iter()
        .map(|&(name, pid)| (name, Some(pid)))
        .chain(running.iter().map(|&name| (name, None)));
    for (name, want) in expected {
        let Some(row) = st.row(name) else {
            problems.push(format!("{name}: not in going status"));
            continue;
        };
        if row.state != "running" {
            problems.push(format!("{name}: {} instead of running", row.state));
            continue;
        }
        let Some(pid) = row.pid else {
            problems.push(format!("{name}: running without a pid"));
            continue;
        };
        if want.is_some_and(|w| w != pid) {
            problems.push(format!("{name}: pid {pid}, not {want:?}: it was restarted"));
        }
        if !alive(pid) || stat(pid).map(|s| s.ppid) != Some(g.pid) {
            problems.push(format!("{name}: pid {pid} is not a live child of going"));
        }
    }
    for child in children(g.pid).into_iter().filter(|&c| alive(c)) {
        if !st.rows.iter().any(|r| r.pid == Some(child)) {
            problems.push(format!(
                "pid {child} ({:?}) is a child of going that no service names",
                cmdline(child)
            ));
        }
    }
    problems
}

/// The end of every test: going answers promptly, and every service is
/// supervised (see [`supervision_problems`]); waits up to 5 s for the
/// services to settle.
fn assert_supervised(g: &Going, sock: &str, same: &[(&str, i32)], running: &[&str]) -> Status {
    let mut last = String::new();
    let found = wait_for(secs(5), || {
        let st = status(g, sock);
        let problems = supervision_problems(g, &st, same, running);
        if problems.is_empty() {
            return Some(st);
        }
        last = format!("{problems:#?}\n{}", st.raw);
        None
    });
    match found {
        Some(st) => st,
        None => g.fail(&format!("services not all supervised: {last}")),
    }
}

/// going on TMP/svc with its socket at TMP/going.sock, once it accepts.
fn start(t: &TempDir) -> (Going, String) {
    start_with(t, Opts::default())
}

fn start_with(t: &TempDir, o: Opts) -> (Going, String) {
    let g = Going::start_with(t, o);
    let sock = t.join("going.sock").display().to_string();
    g.wait_up();
    (g, sock)
}

fn wait_socket(g: &Going, sock: &str) {
    g.wait(secs(5), &format!("control socket {sock} accepting"), || {
        UnixStream::connect(sock).is_ok()
    });
}

/// utime + stime of a process, in clock ticks (100 a second).
fn cpu_ticks(pid: i32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = s
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // rest[0] is field 3; utime and stime are fields 14 and 15.
    let f = |k: usize| rest.get(k - 3).and_then(|v| v.parse::<u64>().ok());
    f(14).unwrap_or(0) + f(15).unwrap_or(0)
}

/// The CPU time going uses over `window`, in clock ticks.
fn cpu_over(pid: i32, window: Duration) -> u64 {
    let before = cpu_ticks(pid);
    std::thread::sleep(window);
    cpu_ticks(pid).saturating_sub(before)
}

fn vm_rss_kb(pid: i32) -> u64 {
    status_field(pid, "VmRSS")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// A shell script as an executable service program.
fn script(body: &str) -> String {
    format!("#!/bin/sh\n{body}\n")
}

/// Puts `content` at `path` with `mode` in one step (write, chmod, rename),
/// so that no exec ever sees it half written (ETXTBSY).
fn install(path: &Path, content: &[u8], mode: u32) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, content).expect("write program");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).expect("chmod program");
    fs::rename(&tmp, path).expect("rename program");
}

/// Sends SIGCONT on drop: a test that stopped a process (or a process
/// group, `pid` < 0) never leaves it stopped, even when it fails.
struct ContOnDrop(i32);

impl Drop for ContOnDrop {
    fn drop(&mut self) {
        kill(self.0, SIGCONT);
    }
}

/// A helper process of the test, killed and reaped on drop.
struct Helper(std::process::Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have_all(progs: &[&str]) -> bool {
    let missing: Vec<&&str> = progs.iter().filter(|p| !have(p)).collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: needs {missing:?}");
    }
    missing.is_empty()
}

/// A directory owned by `uid`, for the control socket of a going that
/// runs as that user.
fn run_dir(t: &TempDir, uid: u32) -> String {
    let run = t.join("run");
    fs::create_dir_all(&run).expect("mkdir run");
    std::os::unix::fs::chown(&run, Some(uid), Some(uid)).expect("chown run");
    run.join("ctl.sock").display().to_string()
}

fn setpriv(uid: u32) -> String {
    format!("setpriv --reuid={uid} --regid={uid} --clear-groups --")
}

// ------------------------------------------------------------- fork

#[test]
fn fork_fails_under_rlimit_nproc() {
    require_root!();
    if !have_all(&["setpriv", "prlimit"]) {
        return;
    }
    // A user of its own: RLIMIT_NPROC counts every process of the user,
    // and no other test runs as this one.
    const UID: u32 = 64_999;
    let t = TempDir::new("nproc");
    let sock = run_dir(&t, UID);
    // One more process of the user, to free a slot later.
    let hog = Helper(
        Command::new("setpriv")
            .args([
                &format!("--reuid={UID}"),
                &format!("--regid={UID}"),
                "--clear-groups",
                "--",
                "/bin/sleep",
                "1000",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the hog"),
    );
    let hog_pid = hog.0.id() as i32;
    assert!(
        wait_until(secs(5), || cmdline(hog_pid).first().map(String::as_str)
            == Some("/bin/sleep")),
        "the hog did not start"
    );
    t.write_svc("steady.toml", &sleep_service(2001, ""));
    let g = Going::start_with(
        &t,
        Opts {
            pre: format!("set -- \"$@\" -s '{sock}';"),
            exec_prefix: format!("prlimit --nproc=3:3 {}", setpriv(UID)),
            ..Opts::default()
        },
    );
    g.wait_up();
    let steady = g.wait_running("steady");
    g.check(
        status_field(g.pid, "Uid").is_some_and(|u| u.starts_with(&UID.to_string())),
        "going runs as the test user",
    );
    // going, steady and the hog are the user's 3 processes: the next fork
    // fails, again and again, with a growing delay.
    t.write_svc("late.toml", &sleep_service(2002, ""));
    let failed = " late: cannot start: fork: Try again, restart in ";
    // The reason and the delays are the contract: going(8) LOGGING; that
    // late backs off shows in status below.
    g.wait_log_count(failed, 3, secs(5));
    for delay in ["50ms", "0.1s", "0.2s"] {
        g.check(
            g.log_has(&format!("{failed}{delay}")),
            &format!("a failed fork backs off {delay}"),
        );
    }
    let st = status(&g, &sock);
    g.check(
        st.row("late")
            .is_some_and(|r| r.state == "backoff" && r.restarts >= 3),
        &format!("late shows as backing off:\n{}", st.raw),
    );
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
    // A slot frees (the hog is reaped): the next attempt succeeds.
    drop(hog);
    g.wait_running("late");
    assert_supervised(&g, &sock, &[("steady", steady)], &["late"]);
}

// ------------------------------------------------------------- exec

#[test]
fn exec_fails_enoent_eacces_enoexec() {
    let t = TempDir::new("exec");
    let bin = t.join("bin");
    fs::create_dir(&bin).expect("mkdir bin");
    // (service, program, why exec fails, how the program is fixed)
    let cases: [(&str, PathBuf, &str); 3] = [
        ("noent", bin.join("missing"), "No such file or directory"),
        ("noperm", bin.join("noperm"), "Permission denied"),
        ("noexec", bin.join("noformat"), "Exec format error"),
    ];
    // Not executable (mode 0644; root too needs an x bit); executable but
    // neither ELF nor #! script.
    install(
        &cases[1].1,
        script("exec /bin/sleep 2012").as_bytes(),
        0o644,
    );
    install(&cases[2].1, b"this is not a program\n", 0o755);
    t.write_svc("steady.toml", &sleep_service(2010, ""));
    for (name, program, _) in &cases {
        t.write_svc(
            &format!("{name}.toml"),
            &format!("cmd = {}\n", qa(&[&program.display().to_string()])),
        );
    }
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    for (name, program, why) in &cases {
        let failed = format!(
            " {name}: cannot start: exec {:?}: {why}, pid ",
            program.display().to_string()
        );
        // The reason and the delays are the contract: going(8) LOGGING; that
        // each backs off shows in status below.
        g.wait_log_count(&failed, 3, secs(5));
        let log = g.log();
        for delay in ["50ms", "0.1s", "0.2s"] {
            g.check(
                log.lines()
                    .any(|l| l.contains(&failed) && l.ends_with(&format!(", restart in {delay}"))),
                &format!("{name}: a failed exec backs off {delay}"),
            );
        }
        // A failed exec is a cannot-start line, never a running one (the
        // lines are the contract: going(8) LOGGING).
        g.check(
            !g.log_has(&format!(" {name}: running, pid ")),
            &format!("{name} counted as running although its exec failed"),
        );
    }
    let st = status(&g, &sock);
    for (name, _, _) in &cases {
        g.check(
            st.row(name).is_some_and(|r| {
                (r.state == "backoff" || r.state == "starting") && r.restarts >= 3
            }),
            &format!("{name} shows as backing off:\n{}", st.raw),
        );
    }
    // Each program is fixed: the next attempt runs it.
    install(
        &cases[0].1,
        script("exec /bin/sleep 2011").as_bytes(),
        0o755,
    );
    fs::set_permissions(&cases[1].1, fs::Permissions::from_mode(0o755)).expect("chmod");
    install(
        &cases[2].1,
        script("exec /bin/sleep 2013").as_bytes(),
        0o755,
    );
    for (i, (name, _, _)) in cases.iter().enumerate() {
        let pid = g.wait_running(name);
        // The script execs sleep a moment after its own exec.
        let want = ["/bin/sleep".to_string(), format!("{}", 2011 + i)];
        g.wait(secs(5), &format!("{name} runs its fixed program"), || {
            cmdline(pid) == want
        });
    }
    assert_supervised(
        &g,
        &sock,
        &[("steady", steady)],
        &["noent", "noperm", "noexec"],
    );
}

// ------------------------------------------------------------- descriptors

#[test]
fn descriptors_exhausted_listener_does_not_spin() {
    // Low enough for a few idle clients to fill going's table, high
    // enough for going itself.
    const LIMIT: usize = 16;
    let t = TempDir::new("nofile");
    t.write_svc("steady.toml", &sleep_service(2101, ""));
    let victim_pid = t.join("victim.pid");
    t.write_svc("victim.toml", &pid_service(&victim_pid, ""));
    let (g, sock) = start_with(
        &t,
        Opts {
            pre: format!("ulimit -n {LIMIT};"),
            ..Opts::default()
        },
    );
    let steady = g.wait_running("steady");
    let victim = g.pid_from_file(&victim_pid);
    let base = fds(g.pid).len();
    g.check(
        base + 4 <= LIMIT,
        &format!("going holds {base} descriptors at rest, too many for the test"),
    );
    // Idle clients fill going's descriptor table: it accepts until EMFILE,
    // the rest wait in the listen backlog.
    let clients: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&sock).expect("connect"))
        .collect();
    g.wait(secs(5), "going's descriptor table full", || {
        fds(g.pid).len() >= LIMIT
    });
    // A restart takes no descriptor of going's (the child runs in going's
    // memory until it execs), so victim comes back even now.
    kill(victim, SIGKILL);
    let victim = g.new_pid_from_file(&victim_pid, victim);
    // The listener stays readable but cannot accept: going must not spin.
    let ticks = cpu_over(g.pid, secs(1));
    g.check(
        ticks <= 20,
        &format!("going used {ticks} ticks of CPU in 1 s with a listener it cannot accept on"),
    );
    // Its loop still runs: a signal is handled. With no descriptor left it
    // cannot answer `going status`; SIGUSR1's lines are the contract:
    // going(8) SIGNALS.
    g.signal(SIGUSR1);
    g.wait_log(" going: pid ", secs(5));
    // The clients go: going serves again.
    drop(clients);
    g.wait(secs(5), "going's descriptors back to normal", || {
        fds(g.pid).len() <= base + 1
    });
    assert_supervised(&g, &sock, &[("steady", steady), ("victim", victim)], &[]);
}

/// Sets going's soft RLIMIT_NOFILE with prlimit(1), the hard one as it is.
fn set_nofile(pid: i32, soft: u64) {
    let ok = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "prlimit --pid {pid} --nofile={soft}:");
}

/// The soft RLIMIT_NOFILE of a process, from /proc/PID/limits.
fn nofile(pid: i32) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A service file that cannot be read for want of descriptors is said
/// once, changes nothing, and is read again by itself once it can be.
#[test]
fn file_unreadable_for_want_of_descriptors_is_read_again() {
    if !have("prlimit") {
        eprintln!("SKIPPED: prlimit is missing");
        return;
    }
    let t = TempDir::new("emfile");
    t.write_svc("steady.toml", &sleep_service(2111, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let before = nofile(g.pid).expect("going's descriptor limit");
    // Settled: the same descriptors twice, 200 ms apart.
    let mut last = Vec::new();
    let used = g.wait_for(secs(5), "going's descriptors settled", || {
        let now: Vec<i32> = fds(g.pid).into_iter().map(|(fd, _)| fd).collect();
        let settled = now == last;
        last = now.clone();
        std::thread::sleep(ms(200));
        settled.then_some(now)
    });
    // Every descriptor number below the limit in use: each open fails.
    let lowest_free = (0..).find(|n| !used.contains(n)).unwrap_or(0);
    set_nofile(g.pid, u64::try_from(lowest_free).unwrap_or(0));
    t.write_svc("late.toml", &sleep_service(2112, ""));
    t.write_svc("steady.toml", &sleep_service(2113, ""));
    let late_file = "late.toml:1: cannot read: Too many open files, nothing changed";
    let steady_file = "steady.toml:1: cannot read: Too many open files, nothing changed";
    // The diagnostics naming FILE:LINE are the contract: going(8) LOGGING.
    g.wait_log(late_file, secs(5));
    g.wait_log(steady_file, secs(5));
    // Retries (after 1 s, then 2 s) say nothing more and change nothing.
    std::thread::sleep(ms(3500));
    g.check(
        g.log_count(late_file) == 1 && g.log_count(steady_file) == 1,
        "a file that cannot be read is said once, not at every retry",
    );
    // going has no descriptor left to answer `going status`: only its
    // log can say that late did not start (the line is the contract:
    // going(8) LOGGING).
    g.check(
        !g.log_has(" late: running, pid ") && alive(steady),
        "nothing changed while the files could not be read",
    );
    set_nofile(g.pid, before);
    // The next retry (4 s later at the most) reads both.
    let late = g.wait_running("late");
    let new_steady = g.wait_new_pid("steady", steady);
    g.check(
        cmdline(new_steady) == ["/bin/sleep", "2113"],
        "the changed definition runs once the file could be read",
    );
    assert_supervised(&g, &sock, &[("late", late), ("steady", new_steady)], &[]);
}

/// The soft and hard RLIMIT_NOFILE of a process, from /proc/PID/limits.
fn nofile_both(pid: i32) -> Option<(u64, u64)> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut words = line.split_whitespace().skip(3);
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// The live child of going running `/bin/sleep TAG`, other than `not`.
fn sleeper(going: i32, tag: u32, not: i32) -> Option<i32> {
    let want = ["/bin/sleep".to_string(), tag.to_string()];
    children(going)
        .into_iter()
        .find(|&c| c != not && alive(c) && cmdline(c) == want)
}

/// going's descriptor limit lowered below what its services are to get
/// (`prlimit --pid GOING --nofile=N:N`): a restart still starts, with the
/// limit that can still be given, and the other services are untouched.
#[test]
fn lowered_descriptor_limit_does_not_stop_restarts() {
    if !have("prlimit") {
        eprintln!("SKIPPED: prlimit is missing");
        return;
    }
    let t = TempDir::new("nofile-low");
    t.write_svc("steady.toml", &sleep_service(2121, ""));
    t.write_svc("victim.toml", &sleep_service(2122, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let victim = g.wait_running("victim");
    let (_, hard) = nofile_both(victim).expect("the service's descriptor limit");
    // As many as going holds now, and a few to spare: its own opens work.
    let low = u64::try_from(fds(g.pid).len() + 4).unwrap_or(16).min(hard);
    let ok = Command::new("prlimit")
        .args([
            "--pid",
            &g.pid.to_string(),
            &format!("--nofile={low}:{low}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "prlimit --pid {} --nofile={low}:{low}", g.pid);
    kill(victim, SIGKILL);
    let again = g.wait_for(secs(5), "victim restarted", || sleeper(g.pid, 2122, victim));
    g.check(
        nofile_both(again) == Some((low, low)),
        &format!(
            "the restarted service got {:?}, not what could be given ({low}, {low})",
            nofile_both(again)
        ),
    );
    g.check(
        !g.log_has("RLIMIT_NOFILE"),
        "a lowered limit is no failure to start",
    );
    assert_supervised(&g, &sock, &[("steady", steady), ("victim", again)], &[]);
}

// ------------------------------------------------------------- log target

/// Whether a tmpfs can be mounted in a new mount namespace here.
fn can_mount_tmpfs(dir: &Path) -> bool {
    let ok = is_root()
        && have("unshare")
        && Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "mount",
                "-t",
                "tmpfs",
            ])
            .args(["-o", "size=64k", "going-probe"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: needs root and unshare --mount with tmpfs");
    }
    ok
}

#[test]
fn log_and_service_output_on_a_full_tmpfs() {
    let t = TempDir::new("fullfs");
    let full = t.join("full");
    fs::create_dir(&full).expect("mkdir full");
    if !can_mount_tmpfs(&full) {
        return;
    }
    let d = full.display().to_string();
    // steady ignores its output; chatty writes a line every 50 ms and
    // ignores failures; writer exits 3 when its one line cannot be written.
    t.write_svc("steady.toml", &sleep_service(2201, ""));
    let chatty = "while :; do echo chatter; sleep 0.05; done";
    t.write_svc(
        "chatty.toml",
        &format!(
            "cmd = {}\nstdout = {}\n",
            qa(&["/bin/sh", "-c", chatty]),
            q(&format!("{d}/chatty.out"))
        ),
    );
    t.write_svc(
        "writer.toml",
        &format!(
            "cmd = {}\nstdout = {}\n",
            qa(&["/bin/sh", "-c", "echo hello || exit 3; exec sleep 1000"]),
            q(&format!("{d}/writer.out"))
        ),
    );
    // going in a mount namespace of its own, with a 64 kB tmpfs on `full`
    // that is full before going starts, its stderr (the log) on it.
    let inner = format!(
        "mount -t tmpfs -o size=64k going-full {d} && {{ head -c 1M /dev/zero > {d}/fill 2>/dev/null; exec 2>>{d}/going.log; exec \"$0\" \"$@\"; }}"
    );
    let g = Going::start_with(
        &t,
        Opts {
            exec_prefix: format!("unshare --mount --propagation private /bin/sh -c '{inner}'"),
            ..Opts::default()
        },
    );
    let sock = t.join("going.sock").display().to_string();
    wait_socket(&g, &sock);
    // What going and the services see, from outside their namespace.
    let seen = |name: &str| PathBuf::from(format!("/proc/{}/root{d}/{name}", g.pid));
    let log_text = || fs::read_to_string(seen("going.log")).unwrap_or_default();
    // Running, and writer crash-looping at a growing delay, while every
    // log line is lost.
    let st = g.wait_for(secs(8), "writer restarted 3 times", || {
        let st = status(&g, &sock);
        let restarts = st.row("writer")?.restarts;
        (restarts >= 3).then_some(st)
    });
    let pid_of = |st: &Status, name: &str| st.row(name).and_then(|r| r.pid);
    let (Some(steady), Some(chatty)) = (pid_of(&st, "steady"), pid_of(&st, "chatty")) else {
        g.fail(&format!("steady and chatty run:\n{}", st.raw));
    };
    g.check(
        fs::metadata(seen("fill")).is_ok_and(|m| m.len() > 32 * 1024),
        "the tmpfs was filled",
    );
    g.check(
        log_text().is_empty(),
        &format!("the log could not be written:\n{}", log_text()),
    );
    assert_supervised(&g, &sock, &[("steady", steady), ("chatty", chatty)], &[]);
    // Space comes back: the log is written again, writer runs.
    fs::remove_file(seen("fill")).expect("remove the filler");
    g.wait(secs(8), "writer running, logged again", || {
        log_text().contains(" writer: running, pid ")
    });
    g.wait(secs(5), "chatty's output written again", || {
        fs::read_to_string(seen("chatty.out")).is_ok_and(|s| s.contains("chatter\n"))
    });
    g.check(
        !log_text().contains("going 1.0.0 started"),
        "the lines of the full time were dropped, not kept and written late",
    );
    assert_supervised(
        &g,
        &sock,
        &[("steady", steady), ("chatty", chatty)],
        &["writer"],
    );
}

/// Datagrams that arrive on `rx` within `timeout`.
fn receive(rx: &UnixDatagram, timeout: Duration) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        match rx.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => {
                if !got.is_empty() {
                    break;
                }
            }
        }
    }
    got
}

#[test]
fn syslog_socket_full_gone_and_back() {
    let t = TempDir::new("syslog");
    let path = t.join("log.sock");
    let rx = UnixDatagram::bind(&path).expect("bind the syslog socket");
    rx.set_read_timeout(Some(ms(20))).expect("timeout");
    t.write_svc("steady.toml", &sleep_service(2301, ""));
    let (g, sock) = {
        let g = Going::start_with(
            &t,
            Opts {
                pre: format!("set -- \"$@\" -l 'syslog:{}';", path.display()),
                ..Opts::default()
            },
        );
        let sock = t.join("going.sock").display().to_string();
        wait_socket(&g, &sock);
        (g, sock)
    };
    // Up: the lines arrive as syslog datagrams (daemon.info is <30>), not
    // on stderr.
    let mut lines = Vec::new();
    g.wait(secs(5), "steady: running, by syslog", || {
        lines.extend(receive(&rx, ms(50)));
        lines.iter().any(|l| l.contains(" steady: running, pid "))
    });
    let line = lines
        .iter()
        .find(|l| l.contains(" steady: running, pid "))
        .cloned()
        .unwrap_or_default();
    g.check(
        line.starts_with("<30>")
            && line.contains(&format!(" going[{}]: info steady: running", g.pid)),
        &format!("a syslog line: {line:?}"),
    );
    // Where going's log goes is what this test is about (the lines are the
    // contract: going(8) LOGGING).
    g.check(!g.log_has("steady: running"), "nothing went to stderr");
    let steady: i32 = line
        .rsplit("pid ")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| g.fail(&format!("no pid in {line:?}")));
    // Full: nobody reads, the socket's queue fills; the lines that do not
    // fit go to stderr, and going never blocks.
    g.wait(secs(5), "lines on stderr while syslog is full", || {
        g.signal(SIGUSR1);
        g.log_has(" info going: pid ")
    });
    status(&g, &sock);
    // Gone: the socket is closed and removed.
    receive(&rx, ms(50));
    drop(rx);
    fs::remove_file(&path).expect("remove the syslog socket");
    let before = g.log_count(" info going: pid ");
    g.wait(secs(5), "lines on stderr while syslog is gone", || {
        g.signal(SIGUSR1);
        g.log_count(" info going: pid ") >= before + 2
    });
    status(&g, &sock);
    // Back: a new socket at the same path gets the lines again.
    let rx = UnixDatagram::bind(&path).expect("bind the syslog socket again");
    rx.set_read_timeout(Some(ms(20))).expect("timeout");
    let mut lines = Vec::new();
    g.wait(secs(5), "lines by syslog again", || {
        g.signal(SIGUSR1);
        lines.extend(receive(&rx, ms(30)));
        lines.iter().any(|l| l.contains(" info going: pid "))
    });
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
}

// ------------------------------------------------------------- directory

#[test]
fn service_dir_deleted_and_recreated() {
    let t = TempDir::new("dirgone");
    t.write_svc("steady.toml", &sleep_service(2401, ""));
    t.write_svc("a.toml", &sleep_service(2402, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let a = g.wait_running("a");
    fs::remove_dir_all(t.svc()).expect("rm -rf svc");
    // the line is the contract: going(8) LOGGING
    g.wait_log(
        &format!(
            "cannot watch {}: No such file or directory",
            t.svc().display()
        ),
        secs(5),
    );
    // Its files are gone, so their services stop; nothing is left behind
    // unsupervised, and going idles without its directory.
    g.wait(secs(5), "the services of the removed files stopped", || {
        !alive(steady) && !alive(a)
    });
    assert_supervised(&g, &sock, &[], &[]);
    let ticks = cpu_over(g.pid, ms(500));
    g.check(
        ticks <= 5,
        &format!("going used {ticks} ticks without its directory"),
    );
    // The directory comes back with the same files and one more.
    fs::create_dir(t.svc()).expect("mkdir svc");
    t.write_svc("steady.toml", &sleep_service(2401, ""));
    t.write_svc("a.toml", &sleep_service(2402, ""));
    t.write_svc("b.toml", &sleep_service(2403, ""));
    for name in ["steady", "a", "b"] {
        match name {
            "steady" => g.wait_new_pid(name, steady),
            "a" => g.wait_new_pid(name, a),
            _ => g.wait_running(name),
        };
    }
    // And it is watched again.
    t.write_svc("c.toml", &sleep_service(2404, ""));
    g.wait_running("c");
    assert_supervised(&g, &sock, &[], &["steady", "a", "b", "c"]);
}

#[test]
fn service_dir_replaced_by_symlink_retargeted_and_dangling() {
    let t = TempDir::new("dirlink");
    t.write_svc("steady.toml", &sleep_service(2501, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    // Replaced by a symlink to a directory with the same file and one more.
    let one = t.join("one");
    fs::create_dir(&one).expect("mkdir one");
    fs::write(one.join("steady.toml"), sleep_service(2501, "")).expect("write");
    fs::write(one.join("a.toml"), sleep_service(2502, "")).expect("write");
    fs::rename(t.svc(), t.join("old")).expect("move svc away");
    symlink(&one, t.svc()).expect("symlink svc");
    let a = g.wait_running("a");
    // Retargeted in one step (a new link renamed over the old one).
    let two = t.join("two");
    fs::create_dir(&two).expect("mkdir two");
    for (f, n) in [("steady.toml", 2501), ("a.toml", 2502), ("b.toml", 2503)] {
        fs::write(two.join(f), sleep_service(n, "")).expect("write");
    }
    symlink(&two, t.join("svc.new")).expect("symlink");
    fs::rename(t.join("svc.new"), t.svc()).expect("rename the link over");
    let b = g.wait_running("b");
    // Dangling: the target goes; the services keep running.
    fs::rename(&two, t.join("two.away")).expect("move the target away");
    // the line is the contract: going(8) LOGGING
    g.wait_log_count(
        &format!(
            "cannot watch {}: No such file or directory",
            t.svc().display()
        ),
        1,
        secs(5),
    );
    assert_supervised(&g, &sock, &[("steady", steady), ("a", a), ("b", b)], &[]);
    let (code, out) = ctl(&sock, "reload", &[]);
    g.check(code == 0, &format!("going reload: {out}"));
    assert_supervised(&g, &sock, &[("steady", steady), ("a", a), ("b", b)], &[]);
    // The target is back, which no inotify watch of going sees: a reload
    // rescans it and watches it again.
    fs::rename(t.join("two.away"), &two).expect("move the target back");
    let (code, out) = ctl(&sock, "reload", &[]);
    g.check(code == 0, &format!("going reload: {out}"));
    fs::write(two.join("c.toml"), sleep_service(2504, "")).expect("write");
    g.wait_running("c");
    assert_supervised(&g, &sock, &[("steady", steady), ("a", a), ("b", b)], &["c"]);
}

#[test]
fn service_dir_unreadable() {
    // Root reads any directory: going runs as a user of its own here.
    require_root!();
    if !have_all(&["setpriv"]) {
        return;
    }
    const UID: u32 = 64_998;
    let t = TempDir::new("dirperm");
    let sock = run_dir(&t, UID);
    t.write_svc("steady.toml", &sleep_service(2601, ""));
    t.write_svc("a.toml", &sleep_service(2602, ""));
    let g = Going::start_with(
        &t,
        Opts {
            pre: format!("set -- \"$@\" -s '{sock}';"),
            exec_prefix: setpriv(UID),
            ..Opts::default()
        },
    );
    g.wait_up();
    let steady = g.wait_running("steady");
    let a = g.wait_running("a");
    let svc = t.svc();
    // A file going cannot read: changed, it changes nothing.
    let a_file = svc.join("a.toml");
    fs::set_permissions(&a_file, fs::Permissions::from_mode(0o000)).expect("chmod a");
    fs::write(&a_file, sleep_service(2612, "")).expect("rewrite a");
    // The diagnostics are the contract: going(8) LOGGING; that nothing
    // changed shows in assert_supervised below.
    g.wait_log(
        &format!(
            " a: {}:1: cannot read: Permission denied, nothing changed",
            a_file.display()
        ),
        secs(5),
    );
    // The directory itself: a rescan cannot list it, a new file in it
    // cannot be read; the services keep running.
    fs::set_permissions(&svc, fs::Permissions::from_mode(0o000)).expect("chmod svc");
    let (code, out) = ctl(&sock, "reload", &[]);
    g.check(code == 0, &format!("going reload: {out}"));
    g.wait_log(
        &format!(
            "cannot read {}: Permission denied; services keep running",
            svc.display()
        ),
        secs(5),
    );
    t.write_svc("b.toml", &sleep_service(2603, ""));
    g.wait_log(
        &format!(
            " b: {}:1: cannot read: Permission denied, nothing changed",
            svc.join("b.toml").display()
        ),
        secs(5),
    );
    assert_supervised(&g, &sock, &[("steady", steady), ("a", a)], &[]);
    // Readable again: going notices by itself, takes a's new definition
    // and starts b.
    fs::set_permissions(&a_file, fs::Permissions::from_mode(0o644)).expect("chmod a");
    fs::set_permissions(&svc, fs::Permissions::from_mode(0o755)).expect("chmod svc");
    g.wait_running("b");
    let a2 = g.wait_new_pid("a", a);
    g.check(
        cmdline(a2) == ["/bin/sleep", "2612"],
        "a runs its new definition",
    );
    assert_supervised(&g, &sock, &[("steady", steady)], &["a", "b"]);
}

// ------------------------------------------------------------- inotify

#[test]
fn ten_thousand_files_at_once_overflow_inotify() {
    let t = TempDir::new("flood");
    t.write_svc("steady.toml", &sleep_service(2701, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    // Enough events (a create and a close each) to overflow the queue.
    let queue: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    let files = 10_000usize.max(queue / 2 + 100);
    if files > 100_000 {
        eprintln!("SKIPPED: an inotify queue of {queue} events is too long to overflow");
        return;
    }
    // While going is stopped, the queue overflows; the events of the files
    // written after that are lost, so only a rescan finds them.
    {
        g.signal(libc::SIGSTOP);
        let _cont = ContOnDrop(g.pid);
        for i in 0..files {
            t.write_svc(
                &format!("bulk{i:05}.toml"),
                "cmd = [\"/bin/sleep\", \"1\"]\nenabled = false\n",
            );
        }
        for i in 0..3 {
            t.write_svc(&format!("late{i}.toml"), &sleep_service(2710 + i, ""));
        }
    }
    // the line is the contract: going(8) LOGGING
    g.wait_log(
        &format!("inotify queue overflow, rescanning {}", t.svc().display()),
        secs(10),
    );
    for i in 0..3 {
        g.wait_for(secs(15), &format!("late{i} running"), || {
            g.running_pid(&format!("late{i}"))
        });
    }
    let st = status(&g, &sock);
    let disabled = st.rows.iter().filter(|r| r.state == "disabled").count();
    g.check(
        disabled == files && st.rows.len() == files + 4,
        &format!(
            "{} services, {disabled} disabled; expected {files} disabled and 4 more",
            st.rows.len()
        ),
    );
    assert_supervised(
        &g,
        &sock,
        &[("steady", steady)],
        &["late0", "late1", "late2"],
    );
    // All go again at once: going forgets every one of them.
    for i in 0..files {
        t.remove_svc(&format!("bulk{i:05}.toml"));
    }
    g.wait(secs(20), "the bulk services forgotten", || {
        status(&g, &sock).rows.len() == 4
    });
    assert_supervised(
        &g,
        &sock,
        &[("steady", steady)],
        &["late0", "late1", "late2"],
    );
}

// ------------------------------------------------------------- children

#[test]
fn service_forks_1000_children_and_exits() {
    let t = TempDir::new("forker");
    t.write_svc("steady.toml", &sleep_service(2801, ""));
    let forker = "i=0; while [ $i -lt 1000 ]; do sleep 1000 & i=$((i+1)); done; exit 0";
    t.write_svc(
        "forker.toml",
        &format!(
            // Kept: the orphans are the subject (tests/leftovers.rs stops them).
            "cmd = {}\nrestart = \"on-failure\"\nleftovers = \"keep\"\n",
            qa(&["/bin/sh", "-c", forker])
        ),
    );
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    // The forker may be gone before status is first asked: its group is
    // known from its orphans.
    g.wait_svc("forker", "exited with status 0", secs(30), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 0")
    });
    // Its 1,000 children are orphans now, going's as the subreaper.
    let (leader, orphans) = g.wait_for(secs(5), "1000 orphans adopted by going", || {
        let v: Vec<(i32, i32)> = children(g.pid)
            .into_iter()
            .filter(|&c| c != steady)
            .filter_map(|c| stat(c).filter(|s| s.state != 'Z').map(|s| (c, s.pgrp)))
            .collect();
        let leader = v.first()?.1;
        let all_one_group = v.iter().all(|&(_, group)| group == leader);
        (v.len() == 1000 && all_one_group)
            .then(|| (leader, v.into_iter().map(|(c, _)| c).collect::<Vec<i32>>()))
    });
    let st = status(&g, &sock);
    g.check(
        st.row("forker").is_some_and(|r| r.state == "exited"),
        &format!("forker exited for good:\n{}", st.raw),
    );
    // They all end at once: going reaps every one, and says nothing of it
    // (its log is the subject: going(8) LOGGING is the contract).
    let lines = g.log().lines().count();
    kill(-leader, SIGKILL);
    g.wait(secs(10), "every orphan reaped", || {
        children(g.pid).into_iter().all(|c| c == steady)
    });
    g.check(
        orphans
            .iter()
            .all(|&p| stat(p).is_none_or(|s| s.ppid != g.pid)),
        "an orphan is left",
    );
    g.check(
        g.log().lines().count() <= lines + 2,
        "reaping the orphans flooded the log",
    );
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
}

// ------------------------------------------------------------- clock

/// The wall clock moved by `secs`, moved back by exactly as much on drop
/// (whatever happens to the test).
struct ClockJump(i64);

fn shift_wall_clock(secs: i64) -> bool {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime/clock_settime on a local struct.
    unsafe {
        if libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) != 0 {
            return false;
        }
        ts.tv_sec += secs as libc::time_t;
        libc::clock_settime(libc::CLOCK_REALTIME, &ts) == 0
    }
}

impl ClockJump {
    fn by(secs: i64) -> Option<ClockJump> {
        shift_wall_clock(secs).then_some(ClockJump(secs))
    }
}

impl Drop for ClockJump {
    fn drop(&mut self) {
        shift_wall_clock(-self.0);
    }
}

#[test]
fn wall_clock_jump_moves_neither_backoff_nor_uptime() {
    require_root!();
    let t = TempDir::new("clock");
    t.write_svc("steady.toml", &sleep_service(2901, ""));
    t.write_svc("crasher.toml", "cmd = \"/bin/false\"\n");
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    // Counted at each end of crasher (/bin/false ends as soon as it starts).
    let starts = || status(&g, &sock).row("crasher").map_or(0, |r| r.restarts);
    let backoff = |n: u64| {
        g.wait_svc("crasher", &format!("backoff #{n}"), secs(5), |s| {
            s.state == "backoff" && u64::from(s.restarts) == n
        })
    };
    // `steady`'s and going's uptimes grow with the time that passes, not
    // with the wall clock.
    let check_uptimes = |before: &Status, since: Instant| {
        let now = status(&g, &sock);
        let passed = since.elapsed().as_secs_f64();
        let up = |s: &Status| s.row("steady").and_then(|r| r.uptime).unwrap_or(-1.0);
        for (what, grew) in [
            ("steady", up(&now) - up(before)),
            ("going", now.going_uptime - before.going_uptime),
        ] {
            g.check(
                (grew - passed).abs() < 0.5,
                &format!(
                    "{what}'s uptime grew {grew:.3}s in {passed:.3}s:\n{}",
                    now.raw
                ),
            );
        }
    };
    // A jump forward during a backoff of 0.8 s: the restart still comes
    // after 0.8 s, not at once.
    backoff(5);
    let (t0, n0, st0) = (Instant::now(), starts(), status(&g, &sock));
    let Some(jump) = ClockJump::by(3600) else {
        eprintln!("SKIPPED: cannot set the wall clock");
        return;
    };
    g.wait(secs(5), "crasher restarted", || starts() > n0);
    let waited = t0.elapsed();
    g.check(
        waited >= ms(500) && waited <= ms(2000),
        &format!("a 0.8 s backoff took {waited:?} with the clock an hour ahead"),
    );
    check_uptimes(&st0, t0);
    // A jump back (the hour undone) during the next backoff, of 1.6 s: the
    // restart does not wait an hour.
    backoff(6);
    let (t1, n1, st1) = (Instant::now(), starts(), status(&g, &sock));
    drop(jump);
    g.wait(secs(5), "crasher restarted", || starts() > n1);
    let waited = t1.elapsed();
    g.check(
        waited >= ms(1200) && waited <= ms(3000),
        &format!("a 1.6 s backoff took {waited:?} with the clock set back an hour"),
    );
    check_uptimes(&st1, t1);
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
}

// ------------------------------------------------------------- SIGSTOP

#[test]
fn stopped_service_stops_at_once() {
    let t = TempDir::new("sigstop");
    t.write_svc("steady.toml", &sleep_service(3001, ""));
    let pf = t.join("frozen.pid");
    let body = format!("sleep 1001 & echo $$ > {}; wait", pf.display());
    t.write_svc(
        "frozen.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"30s\"\n",
            qa(&["/bin/sh", "-c", &body])
        ),
    );
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let frozen = g.pid_from_file(&pf);
    let kid = g.wait_for(secs(5), "frozen's child", || {
        children(frozen).first().copied()
    });
    // Stopped, the whole group: going does not take it for dead.
    let _cont = ContOnDrop(-frozen);
    kill(-frozen, libc::SIGSTOP);
    g.wait(secs(5), "frozen's group stopped", || {
        [frozen, kid]
            .iter()
            .all(|&p| stat(p).is_some_and(|s| s.state == 'T'))
    });
    assert_supervised(&g, &sock, &[("steady", steady), ("frozen", frozen)], &[]);
    // `going stop`: TERM stays pending in a stopped process; going's CONT
    // after it ends the group now, not at the 30 s stop timeout.
    let t0 = Instant::now();
    let (code, out) = ctl(&sock, "stop", &["frozen"]);
    g.check(code == 0, &format!("going stop frozen: {out}"));
    // A stop timeout would have ended it by KILL, after 30 s.
    g.wait_svc("frozen", "stopped by TERM", secs(5), |s| {
        s.state == "stopped" && s.admin_down && s.last_exit.as_deref() == Some("signal TERM")
    });
    g.wait_gone(kid, secs(5));
    g.check(
        t0.elapsed() < secs(5),
        "a stopped service was stopped by TERM at once",
    );
    // `going restart` of a stopped service is as quick.
    let (code, out) = ctl(&sock, "start", &["frozen"]);
    g.check(code == 0, &format!("going start frozen: {out}"));
    let again = g.new_pid_from_file(&pf, frozen);
    let _cont2 = ContOnDrop(-again);
    kill(-again, libc::SIGSTOP);
    g.wait(secs(5), "frozen stopped again", || {
        stat(again).is_some_and(|s| s.state == 'T')
    });
    let t1 = Instant::now();
    let (code, out) = ctl(&sock, "restart", &["frozen"]);
    g.check(code == 0, &format!("going restart frozen: {out}"));
    let third = g.new_pid_from_file(&pf, again);
    g.check(
        t1.elapsed() < secs(5),
        &format!("restarting a stopped service took {:?}", t1.elapsed()),
    );
    assert_supervised(&g, &sock, &[("steady", steady), ("frozen", third)], &[]);
}

#[test]
fn stopped_services_at_shutdown() {
    let t = TempDir::new("sigstopexit");
    let pa = t.join("a.pid");
    let pb = t.join("b.pid");
    for (name, pidfile) in [("a", &pa), ("b", &pb)] {
        let body = format!("echo $$ > {}; exec sleep 1000", pidfile.display());
        t.write_svc(
            &format!("{name}.toml"),
            &format!(
                "cmd = {}\nstop-timeout = \"30s\"\n",
                qa(&["/bin/sh", "-c", &body])
            ),
        );
    }
    let (mut g, sock) = start(&t);
    let a = g.pid_from_file(&pa);
    let b = g.pid_from_file(&pb);
    let _conts = (ContOnDrop(a), ContOnDrop(b));
    kill(a, libc::SIGSTOP);
    kill(b, libc::SIGSTOP);
    g.wait(secs(5), "a and b stopped", || {
        [a, b]
            .iter()
            .all(|&p| stat(p).is_some_and(|s| s.state == 'T'))
    });
    assert_supervised(&g, &sock, &[("a", a), ("b", b)], &[]);
    // SIGTERM to going: both end by TERM at once, and going exits 0.
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(5));
    g.check(st.success(), &format!("going exited with {st:?}"));
    g.check(
        t0.elapsed() < secs(5),
        &format!("shutdown with stopped services took {:?}", t0.elapsed()),
    );
    // going has exited: its log is the record of how they ended (the line
    // is the contract: going(8) LOGGING).
    for (name, pid) in [("a", a), ("b", b)] {
        g.check(
            g.log_has(&format!(
                " {name}: stopped, pid {pid}, killed by signal TERM after "
            )),
            &format!("{name} ended by TERM"),
        );
        g.check(!alive(pid), &format!("{name} is gone"));
    }
}

// ------------------------------------------------------------- control

/// `n` pseudo-random bytes (xorshift), newlines and NULs included.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn control_client_sends_1mb_of_garbage() {
    let t = TempDir::new("garbage");
    t.write_svc("steady.toml", &sleep_service(3101, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let rss_before = vm_rss_kb(g.pid);
    const MB: usize = 1 << 20;
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("one long line", vec![b'x'; MB]),
        ("random bytes", noise(MB, 0x9e37_79b9_7f4a_7c15)),
        ("NUL bytes", vec![0; MB]),
        ("a request repeated, no newline", b"status ".repeat(MB / 7)),
        ("lines of nonsense", b"frobnicate now\n".repeat(MB / 15)),
    ];
    // Each from a client of its own, at once; each client gives up after
    // 8 s, so nothing here can hang.
    let clients: Vec<_> = payloads
        .into_iter()
        .map(|(what, payload)| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let mut c = UnixStream::connect(&sock).expect("connect");
                c.set_write_timeout(Some(secs(8))).expect("timeout");
                c.set_read_timeout(Some(secs(8))).expect("timeout");
                // going stops reading once it has answered: a broken pipe.
                let _ = c.write_all(&payload);
                let _ = c.shutdown(std::net::Shutdown::Write);
                let mut answer = Vec::new();
                let _ = c.read_to_end(&mut answer);
                (
                    what,
                    t0.elapsed(),
                    String::from_utf8_lossy(&answer).into_owned(),
                )
            })
        })
        .collect();
    // A well-behaved client is answered promptly all the while.
    for _ in 0..3 {
        let st = status(&g, &sock);
        g.check(
            st.row("steady").and_then(|r| r.pid) == Some(steady),
            "status names steady",
        );
    }
    for client in clients {
        let (what, took, answer) = client.join().expect("client thread");
        g.check(
            took < secs(7),
            &format!("{what}: going took {took:?} to be done with the client"),
        );
        g.check(
            answer.is_empty() || answer.starts_with("1\ngoing: "),
            &format!("{what}: no success, at most an error: {answer:?}"),
        );
    }
    let rss_after = vm_rss_kb(g.pid);
    g.check(
        rss_after <= rss_before + 512,
        &format!("going's VmRSS grew from {rss_before} to {rss_after} kB: it kept the garbage"),
    );
    // the log is the subject (going(8) LOGGING is the contract)
    g.check(g.log().lines().count() < 20, "the garbage flooded the log");
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
}

// ------------------------------------------- the log and service files (issue 14)

/// mkfifo(3), fast enough to race going.
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a NUL-terminated path that outlives the call.
    let made = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
    assert_eq!(made, 0, "mkfifo {}", path.display());
}

/// The pid `going status` gives `name`, once it has one.
fn status_pid(g: &Going, sock: &str, name: &str) -> i32 {
    g.wait_for(secs(5), &format!("{name} running"), || {
        status(g, sock).row(name)?.pid
    })
}

#[test]
fn stderr_a_pipe_nobody_reads_and_a_chatty_service() {
    use std::os::unix::fs::OpenOptionsExt;
    let t = TempDir::new("stderr-stuck");
    let fifo = t.join("stderr.fifo");
    mkfifo(&fifo);
    // The one reader, which never reads until the end: `going 2>&1 | sleep`.
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the fifo");
    t.write_svc(
        "chatty.toml",
        "cmd = [\"/bin/sh\", \"-c\", \"while :; do seq 300; sleep 0.02; done\"]\n\
         stdout = \"syslog\"\n",
    );
    t.write_svc("victim.toml", &sleep_service(3201, ""));
    let sock = t.join("going.sock").display().to_string();
    let g = Going::start_with(
        &t,
        Opts {
            pre: format!("exec 2>{};", q(&fifo.display().to_string())),
            ..Opts::default()
        },
    );
    wait_socket(&g, &sock);
    let victim = status_pid(&g, &sock, "victim");
    // Long enough for the pipe (64 KiB, about 1,500 lines) to fill.
    std::thread::sleep(secs(1));
    kill(victim, SIGKILL);
    let restarted = g.wait_for(secs(5), "victim restarted", || {
        status(&g, &sock)
            .row("victim")?
            .pid
            .filter(|&p| p != victim)
    });
    assert_supervised(&g, &sock, &[("victim", restarted)], &["chatty"]);
    // Once read again, the log says how many lines it dropped (going(8)).
    let mut log = Vec::new();
    let said = wait_until(secs(5), || {
        let mut buffer = [0u8; 65536];
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            log.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&log).contains(" warn going: ")
            && String::from_utf8_lossy(&log).contains(" log lines dropped: ")
    });
    assert!(said, "no line said how many lines were dropped");
    assert!(
        log.split(|&b| b == b'\n').all(|line| line.len() < 2048),
        "a log line longer than 2048 bytes"
    );
}

#[test]
fn fifo_renamed_onto_a_service_file() {
    let t = TempDir::new("fifo-race");
    t.write_svc("steady.toml", &sleep_service(3202, ""));
    let text = sleep_service(3203, "");
    t.write_svc("x.toml", &text);
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let x = g.wait_running("x");
    // A FIFO left there: refused, x keeps running as it was.
    let fifo = t.join("fifo");
    mkfifo(&fifo);
    fs::rename(&fifo, t.svc().join("x.toml")).expect("rename the fifo");
    g.sync(&t);
    assert_supervised(&g, &sock, &[("steady", steady), ("x", x)], &[]);
    g.check(
        g.log_count("/x.toml:1: ") == 1,
        "one line says why x.toml is not read",
    );
    // A regular file and a FIFO in turns: some look at the path finds a
    // file and the open that follows a FIFO.
    let (file, svc_x) = (t.join("x.file"), t.svc().join("x.toml"));
    let until = Instant::now() + secs(2);
    while Instant::now() < until {
        fs::write(&file, &text).expect("write x");
        fs::rename(&file, &svc_x).expect("rename x");
        mkfifo(&fifo);
        fs::rename(&fifo, &svc_x).expect("rename the fifo");
    }
    fs::write(&file, &text).expect("write x");
    fs::rename(&file, &svc_x).expect("rename x");
    g.sync(&t);
    assert_supervised(&g, &sock, &[("steady", steady), ("x", x)], &[]);
}

#[test]
fn service_files_linked_to_procfs() {
    let t = TempDir::new("procfs-links");
    t.write_svc("steady.toml", &sleep_service(3204, ""));
    fs::write(t.join("elsewhere.toml"), sleep_service(3205, "")).expect("write");
    symlink(t.join("elsewhere.toml"), t.svc().join("linked.toml")).expect("symlink");
    // A bound on going's address space: the old code read pagemap until
    // it ran out of memory (RLIMIT_AS) rather than until the machine did.
    let (g, sock) = start_with(
        &t,
        Opts {
            pre: "ulimit -v 1048576;".into(),
            ..Opts::default()
        },
    );
    let steady = g.wait_running("steady");
    let linked = g.wait_running("linked");
    let mut links = vec![
        "/proc/self/pagemap",
        "/proc/self/status",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ];
    if Path::new("/proc/kmsg").exists() {
        links.push("/proc/kmsg");
    } else {
        eprintln!("no /proc/kmsg: that link is not tried");
    }
    for (i, target) in links.iter().enumerate() {
        symlink(target, t.svc().join(format!("pseudo{i}.toml"))).expect("symlink");
    }
    g.sync(&t);
    let st = assert_supervised(&g, &sock, &[("steady", steady), ("linked", linked)], &[]);
    for (i, target) in links.iter().enumerate() {
        g.check(
            st.row(&format!("pseudo{i}"))
                .is_none_or(|r| r.pid.is_none()),
            &format!("{target} ran as a service"),
        );
    }
    let rss = vm_rss_kb(g.pid);
    g.check(rss < 16 * 1024, &format!("going's VmRSS is {rss} kB"));
    for i in 0..links.len() {
        fs::remove_file(t.svc().join(format!("pseudo{i}.toml"))).expect("rm link");
    }
    g.sync(&t);
    assert_supervised(&g, &sock, &[("steady", steady), ("linked", linked)], &[]);
}

#[test]
fn refused_connections_flood() {
    require_root!();
    if !have_all(&["setpriv"]) {
        return;
    }
    let t = TempDir::new("refused-flood");
    t.write_svc("steady.toml", &sleep_service(3206, ""));
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    // Past the socket's mode, each connection is refused by its uid.
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod socket");
    const N: usize = 300;
    let flood = format!(
        "{} /bin/sh -c 'for i in $(seq {N}); do {} status -s {} >/dev/null 2>&1 || :; done'",
        setpriv(65_534),
        q(&bin_for_others(&t.path)),
        q(&sock)
    );
    let done = Command::new("/bin/sh")
        .args(["-c", &format!("exec timeout 60 {flood}")])
        .status();
    assert!(done.is_ok_and(|s| s.success()), "the flood did not run");
    // Every refusal is counted, in a few lines: at most one a second.
    let counted = |log: &str| -> (usize, usize) {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(" refused ")).collect();
        // The number just before `before`, when the line has it.
        let number = |l: &str, before: &str| -> Option<usize> {
            let (head, _) = l.split_once(before)?;
            head.rsplit(' ').next()?.parse().ok()
        };
        let total = lines
            .iter()
            .map(|l| match number(l, " more before it") {
                Some(n) => n + 1,
                None => number(l, " more control connections").unwrap_or(1),
            })
            .sum();
        (lines.len(), total)
    };
    g.wait(secs(3), "every refusal counted", || {
        counted(&g.log()).1 >= N
    });
    let (lines, total) = counted(&g.log());
    g.check(total == N, &format!("{total} refusals counted, not {N}"));
    g.check(lines <= 2 + 60, &format!("{lines} lines for {N} refusals"));
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
}
// ------------------------------------------------------------- issue 14

/// As PID 1 (a container), a service forks 5,000 children and exits: going
/// reaps each as it ends, answers throughout, and the other service runs
/// on with the same pid.
#[test]
fn pid1_service_forks_5000_children_and_exits() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("forker5k");
    let fifo = t.join("fifo");
    let made = t.join("made");
    t.write_svc("steady.toml", &sleep_service(2811, ""));
    // Subshells blocked opening a FIFO: 5,000 processes without 5,000 execs.
    let forker = format!(
        "mkfifo {f}; i=0; while [ $i -lt 5000 ]; do (read x < {f}) & i=$((i+1)); done; echo $$ > {m}; exit 0",
        f = fifo.display(),
        m = made.display()
    );
    t.write_svc(
        "forker.toml",
        &format!(
            // Kept: the orphans are the subject (tests/leftovers.rs stops them).
            "cmd = {}\nrestart = \"never\"\nleftovers = \"keep\"\n",
            qa(&["/bin/sh", "-c", &forker])
        ),
    );
    let (g, sock) = start_with(
        &t,
        Opts {
            pid1: true,
            ..Opts::default()
        },
    );
    let steady = g.wait_for(secs(5), "steady running", || {
        status(&g, &sock).row("steady")?.pid
    });
    let leader = g.wait_for(secs(60), "the forker made its 5000", || {
        read_pid_file(&made, ms(0))
    });
    let _ = leader;
    let orphans = g.wait_for(secs(20), "5000 orphans adopted by going", || {
        let n = children(g.pid)
            .into_iter()
            .filter(|&c| cmdline(c).first().is_some_and(|a| a == "/bin/sh"))
            .count();
        (n >= 5000).then_some(n)
    });
    let st = status(&g, &sock);
    g.check(
        st.row("forker").is_some_and(|r| r.state == "exited"),
        &format!(
            "forker exited for good with its {orphans} children left:\n{}",
            st.raw
        ),
    );
    // All end at once; going reaps them and answers meanwhile.
    let orphan_pids: Vec<i32> = children(g.pid)
        .into_iter()
        .filter(|&c| cmdline(c).first().is_some_and(|a| a == "/bin/sh"))
        .collect();
    for &p in &orphan_pids {
        kill(p, SIGKILL);
    }
    let _ = status(&g, &sock);
    g.wait(secs(20), "every orphan reaped", || {
        orphan_pids.iter().all(|&p| stat(p).is_none())
    });
    let st = status(&g, &sock);
    g.check(
        st.row("steady").and_then(|r| r.pid) == Some(steady)
            && st.row("steady").is_some_and(|r| r.restarts == 0),
        &format!("steady disturbed:\n{}", st.raw),
    );
    let outer = g.outer(steady).unwrap_or(0);
    g.check(
        alive(outer) && stat(outer).map(|s| s.ppid) == Some(g.pid),
        "steady is a live child of going",
    );
}

/// A service whose session leader double-forks a daemon and exits. going
/// reaps the leader, restarts the service by its policy, reaps the daemon
/// (its subreaper) when it ends, and nothing else is disturbed. The daemon
/// is not stopped when its leader exits (going(8), BUGS).
#[test]
fn session_leader_dies_after_a_double_fork() {
    let t = TempDir::new("dfork");
    let daemon = t.join("daemon");
    t.write_svc("steady.toml", &sleep_service(2821, ""));
    let script = format!(
        "sh -c 'sleep 1000 & echo $! > {}'; exit 0",
        daemon.display()
    );
    t.write_svc(
        "leader.toml",
        &format!(
            // Kept: the orphan is the subject (tests/leftovers.rs stops it).
            "cmd = {}\nrestart = \"never\"\nleftovers = \"keep\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let (g, sock) = start(&t);
    let steady = g.wait_running("steady");
    let d = g.pid_from_file(&daemon);
    g.wait(secs(5), "the leader exited", || {
        status(&g, &sock)
            .row("leader")
            .is_some_and(|r| r.state == "exited")
    });
    g.check(
        stat(d).map(|s| s.ppid) == Some(g.pid),
        "the daemon, orphaned, is going's as the subreaper",
    );
    kill(d, SIGKILL);
    g.wait(secs(5), "the daemon reaped", || stat(d).is_none());
    assert_supervised(&g, &sock, &[("steady", steady)], &[]);
}

/// going in a mount namespace of its own whose socket directory (and so
/// its state file's) is a tmpfs of 8 kB: `pre` mounts it.
fn start_on_tiny_tmpfs(t: &TempDir, dir: &Path) -> Going {
    let d = dir.display();
    Going::start_with(
        t,
        Opts {
            pre: format!("set -- \"$@\" -s '{d}/going.sock';"),
            exec_prefix: format!(
                "unshare --mount --propagation private /bin/sh -c 'mount -t tmpfs -o size=8k going-state {d} && exec \"$0\" \"$@\"'"
            ),
            ..Opts::default()
        },
    )
}

/// The state file cannot be written: its directory full, then read-only.
/// going says so once each time writing starts failing, and supervises on.
#[test]
fn state_directory_full_or_read_only() {
    let t = TempDir::new("statefull");
    let dir = t.join("state");
    fs::create_dir(&dir).expect("mkdir state");
    if !can_mount_tmpfs(&dir) || !have("nsenter") {
        return;
    }
    t.write_svc("steady.toml", &sleep_service(2831, ""));
    t.write_svc("victim.toml", &sleep_service(2832, ""));
    let g = start_on_tiny_tmpfs(&t, &dir);
    // The tmpfs as going sees it, from outside its namespace.
    let inside = PathBuf::from(format!("/proc/{}/root{}", g.pid, dir.display()));
    let sock = inside.join("going.sock").display().to_string();
    wait_socket(&g, &sock);
    let steady = g.wait_for(secs(5), "steady", || sleeper(g.pid, 2831, 0));
    let mut victim = g.wait_for(secs(5), "victim", || sleeper(g.pid, 2832, 0));
    let said = "a going restarted after a crash may start services twice";
    // Full: a file takes every block left.
    let fill = inside.join("fill");
    let mut f = fs::File::create(&fill).expect("create fill");
    while f.write_all(&[0u8; 1024]).is_ok() {}
    drop(f);
    for _ in 0..2 {
        kill(victim, SIGKILL);
        victim = g.wait_for(secs(5), "victim restarted", || sleeper(g.pid, 2832, victim));
    }
    g.wait_log(said, secs(5));
    g.check(
        g.log_count(said) == 1,
        "said once while the directory is full",
    );
    assert_supervised(&g, &sock, &[("steady", steady), ("victim", victim)], &[]);
    // Room again: written again; then read-only.
    fs::remove_file(&fill).expect("remove fill");
    kill(victim, SIGKILL);
    victim = g.wait_for(secs(5), "victim restarted", || sleeper(g.pid, 2832, victim));
    let remount = Command::new("nsenter")
        .args(["-t", &g.pid.to_string(), "-m", "mount", "-o", "remount,ro"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    g.check(remount, "remount read-only");
    for _ in 0..2 {
        kill(victim, SIGKILL);
        victim = g.wait_for(secs(5), "victim restarted", || sleeper(g.pid, 2832, victim));
    }
    g.wait_log_count(said, 2, secs(5));
    g.check(g.log_count(said) == 2, "said once more once read-only");
    assert_supervised(&g, &sock, &[("steady", steady), ("victim", victim)], &[]);
}

/// The socket path is a symbolic link another user made (to a file of
/// going's user): going refuses it, says so, never follows it, and runs
/// its services without a control socket.
#[test]
fn socket_path_is_another_users_symlink() {
    require_root!();
    let t = TempDir::new("socklink");
    let run = t.join("run");
    fs::create_dir(&run).expect("mkdir run");
    let target = t.join("precious");
    fs::write(&target, "keep\n").expect("write target");
    let link = run.join("ctl.sock");
    symlink(&target, &link).expect("symlink");
    std::os::unix::fs::lchown(&link, Some(65_534), Some(65_534)).expect("lchown");
    t.write_svc("steady.toml", &sleep_service(2841, ""));
    let g = Going::start_with(
        &t,
        Opts {
            pre: format!("set -- \"$@\" -s '{}';", link.display()),
            ..Opts::default()
        },
    );
    let steady = g.wait_for(secs(5), "steady", || sleeper(g.pid, 2841, 0));
    g.wait_log("exists and is not a socket", secs(5));
    g.check(
        fs::read_link(&link).ok() == Some(target.clone())
            && fs::read_to_string(&target).ok().as_deref() == Some("keep\n"),
        "the link and its target are untouched",
    );
    g.check(
        UnixStream::connect(&link).is_err() && alive(steady),
        "no socket behind the link; the service runs",
    );
}
