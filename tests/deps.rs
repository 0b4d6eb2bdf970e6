//! Dependencies and readiness: `depends-on`, `ready-fd`, `notify`,
//! `ready` / `ready-interval` and `start-timeout`, checked on real
//! processes. Order is proven with time stamps the services write
//! themselves (CLOCK_BOOTTIME through /proc/uptime, which never goes back):
//! a dependency stamps the moment right before it says it is ready, its
//! dependent stamps the moment it starts, and the dependency takes about
//! half a second to get ready, so that a start gate that lets the
//! dependent through early shows.

mod common;
use common::*;
use std::fs;
use std::path::Path;
use std::time::Instant;

// ---------------------------------------------------------------- helpers

/// `going CMD -s SOCK ARGS...`: (exit code, stdout, stderr).
fn ctl(sock: &str, cmd: &str, args: &[&str]) -> (i32, String, String) {
    let mut a = vec![cmd, "-s", sock];
    a.extend_from_slice(args);
    let o = run_going(&a);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `going CMD -s SOCK ARGS...`, which must exit 0; its stdout.
fn ctl_ok(g: &Going, sock: &str, cmd: &str, args: &[&str]) -> String {
    let (code, out, err) = ctl(sock, cmd, args);
    if code != 0 {
        g.fail(&format!(
            "going {cmd} {args:?} should exit 0, got {code}\nstdout: {out}\nstderr: {err}"
        ));
    }
    out
}

/// A shell statement appending the current /proc/uptime (seconds since
/// boot, CLOCK_BOOTTIME, 10 ms steps) as one line to `file`.
fn stamp(file: &Path) -> String {
    format!("read u _ < /proc/uptime; echo $u >> '{}'", file.display())
}

/// The stamps in `file` (complete lines only), in seconds.
fn stamps(file: &Path) -> Vec<f64> {
    let s = fs::read_to_string(file).unwrap_or_default();
    let complete = &s[..s.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| {
            l.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("not a stamp in {}: {l:?}", file.display()))
        })
        .collect()
}

/// Wait until `file` holds at least `n` stamps; returns them.
fn wait_stamps(g: &Going, file: &Path, n: usize) -> Vec<f64> {
    g.wait_for(
        secs(10),
        &format!("{n} stamps in {}", file.display()),
        || {
            let v = stamps(file);
            (v.len() >= n).then_some(v)
        },
    )
}

/// A TOML service running `script` with /bin/sh, plus `extra` lines.
fn sh_service(script: &str, extra: &str) -> String {
    format!(
        "cmd = {}\nstop-timeout = \"2s\"\n{extra}\n",
        qa(&["/bin/sh", "-c", script])
    )
}

/// The script of a daemon NAME that stamps TMP/NAME.start when it starts,
/// gets ready after `delay` seconds (stamping TMP/NAME.ready right before
/// it runs `signal`, the statement that says so), then idles; on SIGTERM it
/// stamps TMP/NAME.term and exits 0.
fn daemon_script(t: &TempDir, name: &str, delay: &str, signal: &str) -> String {
    let f = |ext: &str| t.join(format!("{name}.{ext}"));
    format!(
        "trap '{term}; exit 0' TERM; {start}; sleep {delay}; {ready}; {signal}; \
         while :; do sleep 0.05; done",
        term = stamp(&f("term")),
        start = stamp(&f("start")),
        ready = stamp(&f("ready")),
    )
}

/// A plain dependent: stamps TMP/NAME.start when it starts, TMP/NAME.term
/// on SIGTERM, idles in between.
fn dependent(t: &TempDir, name: &str, depends: &str) -> String {
    let script = format!(
        "trap '{}; exit 0' TERM; {}; while :; do sleep 0.05; done",
        stamp(&t.join(format!("{name}.term"))),
        stamp(&t.join(format!("{name}.start"))),
    );
    sh_service(&script, &format!("depends-on = {depends}"))
}

/// Index of the first log line containing `pat`.
fn line_of(log: &str, pat: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(pat))
}

/// Every pattern is in the log, each first met after the one before.
fn assert_log_order(g: &Going, pats: &[&str]) {
    let log = g.log();
    let mut last: Option<(usize, &str)> = None;
    for p in pats {
        let Some(i) = line_of(&log, p) else {
            g.fail(&format!("no log line containing {p:?}"));
        };
        if let Some((j, q)) = last
            && i <= j
        {
            g.fail(&format!(
                "log line {p:?} (line {i}) should come after {q:?} (line {j})"
            ));
        }
        last = Some((i, p));
    }
}

/// The dependent started after the dependency said it was ready: A's
/// ready stamp is no later than B's start stamp, and B started at least
/// the dependency's delay after A started.
fn assert_started_after_ready(g: &Going, t: &TempDir, a: &str, b: &str, delay: f64) {
    let a_start = wait_stamps(g, &t.join(format!("{a}.start")), 1)[0];
    let a_ready = wait_stamps(g, &t.join(format!("{a}.ready")), 1)[0];
    let b_start = wait_stamps(g, &t.join(format!("{b}.start")), 1)[0];
    g.check(
        a_ready - a_start >= delay - 0.015,
        &format!("{a} took {delay}s to get ready, stamps: start {a_start}, ready {a_ready}"),
    );
    g.check(
        a_ready <= b_start,
        &format!("{b} started at {b_start}, before {a} was ready at {a_ready}"),
    );
    g.check(
        b_start - a_start >= delay - 0.015,
        &format!(
            "{b} started {:.2}s after {a} started, {a} needs {delay}s to get ready",
            b_start - a_start
        ),
    );
    // The dependent comes up promptly once its dependency is ready.
    g.check(
        b_start - a_ready < 3.0,
        &format!("{b} started {:.2}s after {a} was ready", b_start - a_ready),
    );
}

/// One service of `going status`: its state and its notes (the last
/// column, comma-separated, when there is one).
fn status_row(g: &Going, sock: &str, name: &str) -> (String, Vec<String>) {
    let out = ctl_ok(g, sock, "status", &[]);
    for line in out.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.first() == Some(&name) && cells.len() >= 2 {
            let notes = cells
                .last()
                .map(|c| c.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            return (cells[1].to_string(), notes);
        }
    }
    g.fail(&format!("no row for {name:?} in going status:\n{out}"));
}

/// `name` as `going status --json` shows it; fails the test when absent.
fn svc(g: &Going, name: &str) -> Svc {
    g.svc(name)
        .unwrap_or_else(|| g.fail(&format!("no service {name:?} in going status --json")))
}

/// Poll `going status` until the row of `name` satisfies `cond`.
fn wait_status(
    g: &Going,
    sock: &str,
    name: &str,
    what: &str,
    cond: impl Fn(&str, &[String]) -> bool,
) {
    let mut last = (String::new(), Vec::new());
    let ok = wait_until(secs(5), || {
        last = status_row(g, sock, name);
        cond(&last.0, &last.1)
    });
    if !ok {
        g.fail(&format!(
            "status of {name}: wanted {what}, last seen {last:?}"
        ));
    }
}

/// Assert that `name` does not start (again) during `d`: once its last
/// process is gone, going shows it stopped, without a process, and with
/// neither a new exit nor a new restart.
fn assert_stays_down(g: &Going, name: &str, d: std::time::Duration) {
    let before = g.wait_svc(name, "stopped, no process", secs(5), |s| {
        s.state == "stopped" && s.pid.is_none()
    });
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        let now = svc(g, name);
        if now.state != "stopped"
            || now.pid.is_some()
            || now.restarts != before.restarts
            || now.last_exit != before.last_exit
        {
            g.fail(&format!(
                "{name} should not start, but status went from {before:?} to {now:?}"
            ));
        }
        std::thread::sleep(ms(20));
    }
}

/// The notifying daemon of the systemd way, in Python: stamps START,
/// sends a datagram that does not say READY=1, stamps READY about half a
/// second after START, sends `READY=1` (with a STATUS line, as sd_notify
/// callers do) to $NOTIFY_SOCKET, then sleeps. It writes the NOTIFY_SOCKET
/// it was given to ENVFILE.
const NOTIFY_DAEMON: &str = r#"
import os, socket, sys, time

start, ready, envfile = sys.argv[1:4]

def stamp(path):
    with open('/proc/uptime') as f:
        up = f.read().split()[0]
    with open(path, 'a') as f:
        f.write(up + '\n')

def notify(message):
    address = os.environ['NOTIFY_SOCKET']
    if address.startswith('@'):
        address = '\0' + address[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(message.encode(), address)
    finally:
        s.close()

stamp(start)
with open(envfile, 'w') as f:
    f.write(os.environ.get('NOTIFY_SOCKET', '') + '\n')
time.sleep(0.25)
notify('STATUS=warming up')
time.sleep(0.25)
stamp(ready)
notify('READY=1\nSTATUS=serving')
while True:
    time.sleep(1000)
"#;

/// A `notify = true` service NAME running [`NOTIFY_DAEMON`].
fn notify_service(t: &TempDir, name: &str) -> String {
    let script = t.join("notifyd.py");
    fs::write(&script, NOTIFY_DAEMON).expect("write notifyd.py");
    let arg = |ext: &str| t.s(&format!("{name}.{ext}"));
    format!(
        "cmd = {}\nnotify = true\nstop-timeout = \"2s\"\n",
        qa(&[
            "python3",
            &script.display().to_string(),
            &arg("start"),
            &arg("ready"),
            &arg("env"),
        ])
    )
}

/// Stop going with SIGTERM: it must exit 0 within 10 s, leaving none of
/// the given processes behind.
fn terminate(g: &mut Going, pids: &[i32]) {
    let st = g.stop_with(SIGTERM, secs(10));
    g.check(
        st.code() == Some(0),
        &format!("going should exit 0 on SIGTERM, got {st:?}"),
    );
    for &p in pids {
        g.check(!alive(p), &format!("process {p} survived going"));
    }
}

// ---------------------------------------------------------------- ordering

#[test]
fn ready_fd_dependency_is_ready_before_the_dependent_starts() {
    let t = TempDir::new("deps-fd");
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.5", "echo >&3"), "ready-fd = 3"),
    );
    // The string form of depends-on.
    t.write_svc("web.toml", &dependent(&t, "web", "\"db\""));
    let mut g = Going::start(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    assert_started_after_ready(&g, &t, "db", "web", 0.5);
    g.check(svc(&g, "db").ready, "db is ready in status");
    // The order is proven by the stamps; what going logs of it is the
    // contract: going(8) LOGGING.
    assert_log_order(
        &g,
        &[
            " web: waiting: waiting for db",
            " db: running, pid ",
            &format!(" db: ready, pid {db}"),
            " web: starting, pid ",
        ],
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_count(" web: waiting: ") == 1,
        "the waiting line is logged once",
    );
    terminate(&mut g, &[db, web]);
}

#[test]
fn notify_socket_dependency_is_ready_before_the_dependent_starts() {
    if !have("python3") {
        eprintln!("SKIPPED: no python3");
        return;
    }
    let t = TempDir::new("deps-notify");
    t.write_svc("db.toml", &notify_service(&t, "db"));
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    let mut g = Going::start(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    assert_started_after_ready(&g, &t, "db", "web", 0.5);
    g.check(svc(&g, "db").ready, "db is ready in status");
    // NOTIFY_SOCKET is an abstract address, written with a leading @.
    let env = fs::read_to_string(t.join("db.env")).unwrap_or_default();
    g.check(
        env.starts_with('@') && env.trim().len() > 1,
        &format!("NOTIFY_SOCKET should be @name, got {env:?}"),
    );
    // Only the service that asked for it gets NOTIFY_SOCKET.
    g.check(
        !environ(web).iter().any(|e| e.starts_with("NOTIFY_SOCKET=")),
        "a service without notify = true has no NOTIFY_SOCKET",
    );
    terminate(&mut g, &[db, web]);
}

#[test]
fn ready_command_dependency_is_ready_before_the_dependent_starts() {
    let t = TempDir::new("deps-cmd");
    let up = t.join("db.up");
    // The service creates db.up after 0.5 s; the ready command succeeds
    // (stamping db.ready) once the file is there.
    let script = daemon_script(&t, "db", "0.5", &format!("touch '{}'", up.display()));
    let ready = format!(
        "test -e '{}' || exit 1; {}",
        up.display(),
        stamp(&t.join("db.ready.check"))
    );
    t.write_svc(
        "db.toml",
        &sh_service(
            &script,
            &format!(
                "ready = {}\nready-interval = \"100ms\"",
                qa(&["/bin/sh", "-c", &ready])
            ),
        ),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    let mut g = Going::start(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    // The moment of readiness is the first successful check.
    let checked = wait_stamps(&g, &t.join("db.ready.check"), 1)[0];
    let db_ready = wait_stamps(&g, &t.join("db.ready"), 1)[0];
    let web_start = wait_stamps(&g, &t.join("web.start"), 1)[0];
    g.check(
        checked >= db_ready,
        &format!("the ready command succeeded at {checked}, before db.up existed ({db_ready})"),
    );
    g.check(
        checked <= web_start,
        &format!("web started at {web_start}, before db's ready command succeeded at {checked}"),
    );
    assert_started_after_ready(&g, &t, "db", "web", 0.5);
    // Polled every 100 ms: ready soon after the file appeared.
    g.check(
        checked - db_ready < 1.0,
        &format!(
            "ready-interval 100ms, yet ready {:.2}s late",
            checked - db_ready
        ),
    );
    g.check(svc(&g, "db").ready, "db is ready in status");
    terminate(&mut g, &[db, web]);
}

#[test]
fn ordering_holds_under_pid1_with_a_notify_dependency() {
    if !have("unshare") || !have("python3") {
        eprintln!("SKIPPED: needs unshare and python3");
        return;
    }
    require_root!();
    let t = TempDir::new("deps-pid1");
    // Credentials of the READY=1 datagram are namespace pids here.
    t.write_svc("db.toml", &notify_service(&t, "db"));
    // A second dependency, by ready-fd, and the going format's blank
    // separated list.
    t.write_svc(
        "cache.toml",
        &sh_service(
            &daemon_script(&t, "cache", "0.3", "echo >&3"),
            "ready-fd = 3",
        ),
    );
    let script = format!(
        "trap '{}; exit 0' TERM; {}; while :; do sleep 0.05; done",
        stamp(&t.join("web.term")),
        stamp(&t.join("web.start"))
    );
    t.write_svc(
        "web",
        &format!("shell=true\ncmd={script}\ndepends-on=db cache\nstop-timeout=2s\n"),
    );
    let mut g = Going::start_pid1(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    let cache = g.wait_running("cache");
    assert_started_after_ready(&g, &t, "db", "web", 0.5);
    assert_started_after_ready(&g, &t, "cache", "web", 0.3);
    g.check(
        svc(&g, "db").ready && svc(&g, "cache").ready,
        "db and cache are ready in status",
    );
    let st = g.stop_with(SIGTERM, secs(10));
    g.check(
        st.code() == Some(0),
        &format!("going as PID 1 should exit 0 on SIGTERM, got {st:?}"),
    );
    for p in [web, db, cache] {
        g.check(!alive(p), &format!("process {p} survived going"));
    }
    let (web_term, cache_term) = (stamps(&t.join("web.term")), stamps(&t.join("cache.term")));
    g.check(
        web_term.len() == 1 && cache_term.len() == 1 && web_term[0] <= cache_term[0],
        &format!("SIGTERM order: web {web_term:?}, cache {cache_term:?}"),
    );
    // going has exited: its log is the record of the order (the lines are
    // the contract: going(8) LOGGING).
    assert_log_order(&g, &[" web: stopped, pid ", " db: stopping, pid "]);
    assert_log_order(&g, &[" web: stopped, pid ", " cache: stopping, pid "]);
}

// ---------------------------------------------------------------- one-shots

#[test]
fn a_one_shot_dependency_that_exits_0_lets_the_dependent_start() {
    let t = TempDir::new("deps-oneshot");
    let script = format!(
        "{}; sleep 0.3; {}; exit 0",
        stamp(&t.join("init.start")),
        stamp(&t.join("init.end"))
    );
    t.write_svc("init.toml", &sh_service(&script, "restart = \"never\""));
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["init"])));
    let mut g = Going::start(&t);
    let web = g.wait_running("web");
    let init_start = wait_stamps(&g, &t.join("init.start"), 1)[0];
    let init_end = wait_stamps(&g, &t.join("init.end"), 1)[0];
    let web_start = wait_stamps(&g, &t.join("web.start"), 1)[0];
    g.check(
        init_end <= web_start && web_start - init_start >= 0.285,
        &format!("web started at {web_start}, the one-shot ran from {init_start} to {init_end}"),
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_has(" web: waiting: waiting for init"),
        "no line \"web: waiting: waiting for init\"",
    );
    // The one-shot is not run again, and web keeps running.
    std::thread::sleep(ms(500));
    let init = svc(&g, "init");
    g.check(
        init.state == "exited"
            && init.last_exit.as_deref() == Some("exit 0")
            && init.restarts == 0
            && stamps(&t.join("init.start")).len() == 1,
        &format!("the one-shot ran once and exited 0: {init:?}"),
    );
    g.check(alive(web), "web keeps running");
    terminate(&mut g, &[web]);
}

#[test]
fn a_one_shot_dependency_that_fails_keeps_the_dependent_stopped() {
    let t = TempDir::new("deps-oneshot-fail");
    t.write_svc(
        "init.toml",
        &sh_service("sleep 0.3; exit 1", "restart = \"never\""),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["init"])));
    t.write_svc("other.toml", &sleep_service(1207, ""));
    let (mut g, sock) = start_ctl(&t);
    let other = g.wait_running("other");
    g.wait_svc("init", "exited with status 1", secs(5), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 1")
    });
    let web = svc(&g, "web");
    g.check(
        web.last_exit.is_none() && web.pid.is_none(),
        &format!("web must not start: its one-shot dependency failed: {web:?}"),
    );
    assert_stays_down(&g, "web", ms(1500));
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_count(" web: waiting: waiting for init") == 1,
        "web logs its waiting line once",
    );
    g.check(!t.join("web.start").exists(), "web's command never ran");
    let (state, _) = status_row(&g, &sock, "web");
    g.check(
        state == "stopped",
        &format!("web is stopped, status says {state}"),
    );
    let (state, _) = status_row(&g, &sock, "init");
    g.check(
        state == "exited",
        &format!("init is exited, status says {state}"),
    );
    terminate(&mut g, &[other]);
}

// ---------------------------------------------------------------- stopping

#[test]
fn shutdown_stops_dependents_first() {
    let t = TempDir::new("deps-shutdown");
    // db <- web <- front; names chosen so that neither name order nor its
    // reverse is the dependency order.
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.2", "echo >&3"), "ready-fd = 3"),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    // front, in the going format, names both.
    let script = format!(
        "trap '{}; sleep 0.2; exit 0' TERM; {}; while :; do sleep 0.05; done",
        stamp(&t.join("front.term")),
        stamp(&t.join("front.start"))
    );
    t.write_svc(
        "front",
        &format!("shell=true\ncmd={script}\ndepends-on=web db\nstop-timeout=3s\n"),
    );
    let mut g = Going::start(&t);
    let front = g.wait_running("front");
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    let db_ready = wait_stamps(&g, &t.join("db.ready"), 1)[0];
    let web_start = wait_stamps(&g, &t.join("web.start"), 1)[0];
    let front_start = wait_stamps(&g, &t.join("front.start"), 1)[0];
    g.check(
        db_ready <= web_start && web_start <= front_start,
        &format!("start order: db ready {db_ready}, web {web_start}, front {front_start}"),
    );
    terminate(&mut g, &[front, web, db]);
    // going has exited: its log is the record of the stop order (the lines
    // are the contract: going(8) LOGGING and SHUTDOWN).
    assert_log_order(
        &g,
        &[
            " front: stopping, pid ",
            " front: stopped, pid ",
            " web: stopping, pid ",
            " web: stopped, pid ",
            " db: stopping, pid ",
            " db: stopped, pid ",
            " going: all services stopped",
        ],
    );
    // What the services saw: each got SIGTERM only after its dependent was
    // done (front takes 0.2 s to stop).
    let front_term = stamps(&t.join("front.term"));
    let web_term = stamps(&t.join("web.term"));
    let db_term = stamps(&t.join("db.term"));
    g.check(
        front_term.len() == 1 && web_term.len() == 1 && db_term.len() == 1,
        &format!("each got one SIGTERM: front {front_term:?} web {web_term:?} db {db_term:?}"),
    );
    g.check(
        web_term[0] - front_term[0] >= 0.185 && db_term[0] >= web_term[0],
        &format!("SIGTERM order: front {front_term:?}, web {web_term:?}, db {db_term:?}"),
    );
}

#[test]
fn stopping_a_dependency_stops_its_dependents_first_and_they_come_back() {
    let t = TempDir::new("deps-stop");
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.4", "echo >&3"), "ready-fd = 3"),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    t.write_svc("other.toml", &sleep_service(1208, ""));
    let (mut g, sock) = start_ctl(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    let other = g.wait_running("other");
    ctl_ok(&g, &sock, "stop", &["db"]);
    g.wait_svc("db", "stopped and down", secs(10), |s| {
        s.state == "stopped" && s.pid.is_none() && s.admin_down
    });
    // the lines are the contract: going(8) LOGGING (a dependent stopped
    // with its dependency logs only its stopping and stopped lines)
    assert_log_order(
        &g,
        &[
            " db: stop requested",
            " web: stopping, pid ",
            " web: stopped, pid ",
            " db: stopping, pid ",
            " db: stopped, pid ",
        ],
    );
    g.wait_gone(web, secs(2));
    g.wait_gone(db, secs(2));
    let web_term = wait_stamps(&g, &t.join("web.term"), 1)[0];
    let db_term = wait_stamps(&g, &t.join("db.term"), 1)[0];
    g.check(
        web_term <= db_term,
        &format!("db got SIGTERM at {db_term}, before web did at {web_term}"),
    );
    // Both stay down while db is down; the unrelated service is untouched.
    assert_stays_down(&g, "web", ms(1000));
    let db_now = svc(&g, "db");
    g.check(
        db_now.state == "stopped"
            && db_now.admin_down
            && db_now.pid.is_none()
            && db_now.restarts == 0
            && stamps(&t.join("db.start")).len() == 1,
        &format!("db is not restarted after going stop: {db_now:?}"),
    );
    let web_now = svc(&g, "web");
    g.check(
        web_now.state == "stopped" && !web_now.admin_down,
        &format!("web is stopped, not down: {web_now:?}"),
    );
    g.check(alive(other), "other keeps running");

    ctl_ok(&g, &sock, "start", &["db"]);
    let web2 = g.wait_new_pid("web", web);
    let db2 = g.wait_new_pid("db", db);
    g.check(web2 != web && db2 != db, "new processes");
    // web came back by itself, and only once db was ready again.
    let db_ready = wait_stamps(&g, &t.join("db.ready"), 2)[1];
    let db_start = wait_stamps(&g, &t.join("db.start"), 2)[1];
    let web_start = wait_stamps(&g, &t.join("web.start"), 2)[1];
    g.check(
        db_ready <= web_start && web_start - db_start >= 0.385,
        &format!("web restarted at {web_start}; db restarted at {db_start}, ready at {db_ready}"),
    );
    // the line is the contract: going(8) LOGGING (only a request logs it)
    g.check(
        g.log_count(" web: start requested") == 0,
        "web started without being asked",
    );
    terminate(&mut g, &[web2, db2, other]);
}

#[test]
fn removing_a_dependency_file_stops_its_dependents_first() {
    let t = TempDir::new("deps-remove");
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.1", "echo >&3"), "ready-fd = 3"),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    let mut g = Going::start(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    t.remove_svc("db.toml");
    // A removed service leaves status once its process is gone.
    g.wait(secs(10), "db gone from status", || {
        let all = g.services();
        all.iter().any(|s| s.name == "web") && !all.iter().any(|s| s.name == "db")
    });
    // the lines are the contract: going(8) LOGGING
    assert_log_order(
        &g,
        &[
            " db: file removed, stopping",
            " web: stopping, pid ",
            " web: stopped, pid ",
            " db: stopping, pid ",
            " db: stopped, pid ",
        ],
    );
    g.wait_gone(web, secs(2));
    g.wait_gone(db, secs(2));
    // db is gone for good: web waits for a file that is not there.
    assert_stays_down(&g, "web", ms(800));
    g.check(
        stamps(&t.join("web.start")).len() == 1,
        "web did not come back",
    );
    terminate(&mut g, &[]);
}

#[test]
fn a_crashing_dependency_does_not_stop_its_dependents() {
    let t = TempDir::new("deps-crash");
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.2", "echo >&3"), "ready-fd = 3"),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    let mut g = Going::start(&t);
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    g.wait_svc("db", &format!("ready, pid {db}"), secs(5), |s| {
        s.ready && s.pid == Some(db)
    });
    kill(db, SIGKILL);
    let db2 = g.wait_new_pid("db", db);
    g.wait_svc("db", &format!("ready, pid {db2}"), secs(5), |s| {
        s.ready && s.pid == Some(db2)
    });
    std::thread::sleep(ms(500));
    g.check(alive(web), "web keeps running through db's crash");
    let web_now = svc(&g, "web");
    g.check(
        web_now.state == "running"
            && web_now.pid == Some(web)
            && web_now.restarts == 0
            && web_now.last_exit.is_none()
            && stamps(&t.join("web.start")).len() == 1,
        &format!("web is neither stopped nor restarted when db crashes: {web_now:?}"),
    );
    g.check(stamps(&t.join("web.term")).is_empty(), "web got no SIGTERM");
    terminate(&mut g, &[web, db2]);
}

// ---------------------------------------------------------------- problems

#[test]
fn check_reports_cycles_and_dangling_names() {
    let t = TempDir::new("deps-check");
    let dir = t.svc();
    t.write_svc("a.toml", "cmd = \"/bin/sleep 1\"\ndepends-on = [\"b\"]\n");
    t.write_svc("b", "# b, going format\ncmd=/bin/sleep 1\ndepends-on=a\n");
    t.write_svc("c.toml", "cmd = \"/bin/sleep 1\"\n\n\ndepends-on = \"x\"\n");
    t.write_svc("ok.toml", "cmd = \"/bin/sleep 1\"\n");
    t.write_svc(
        "uses-ok.toml",
        "depends-on = [\"ok\"]\ncmd = \"/bin/sleep 1\"\n",
    );
    let d = dir.display().to_string();
    let o = run_going(&["check", "-d", &d]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "check exits 1\nstdout: {out}\nstderr: {err}"
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    let want_a = format!("{d}/a.toml:2: depends-on: in a dependency cycle: a -> b -> a");
    let want_b = format!("{d}/b:3: depends-on: in a dependency cycle: b -> a -> b");
    let want_c = format!("{d}/c.toml:4: depends-on: depends on \"x\", which no file defines");
    assert_eq!(
        lines,
        vec![want_a.as_str(), want_b.as_str(), want_c.as_str()],
        "going check output:\n{out}\nstderr: {err}"
    );

    // A sound graph is clean.
    for f in ["a.toml", "b", "c.toml"] {
        t.remove_svc(f);
    }
    let o = run_going(&["check", "-d", &d]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "check of a sound graph exits 0: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.is_empty(), "nothing to report");

    // A longer cycle, and a service depending on itself is a file problem.
    t.write_svc("p.toml", "cmd = \"/bin/sleep 1\"\ndepends-on = [\"q\"]\n");
    t.write_svc(
        "q.toml",
        "cmd = \"/bin/sleep 1\"\ndepends-on = [\"r\", \"ok\"]\n",
    );
    t.write_svc("r.toml", "cmd = \"/bin/sleep 1\"\ndepends-on = \"p\"\n");
    let o = run_going(&["check", "-d", &d]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "check exits 1: {out}");
    for want in [
        format!("{d}/p.toml:2: depends-on: in a dependency cycle: p -> q -> r -> p"),
        format!("{d}/q.toml:2: depends-on: in a dependency cycle: q -> r -> p -> q"),
        format!("{d}/r.toml:2: depends-on: in a dependency cycle: r -> p -> q -> r"),
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "missing {want:?} in:\n{out}"
        );
    }
    assert_eq!(out.lines().count(), 3, "only the cycle is reported:\n{out}");
}

#[test]
fn a_cycle_at_run_time_holds_its_services_while_the_rest_run() {
    let t = TempDir::new("deps-cycle");
    t.write_svc("a.toml", &dependent(&t, "a", &qa(&["b"])));
    t.write_svc("b.toml", &dependent(&t, "b", &qa(&["a"])));
    t.write_svc("c.toml", &sleep_service(1209, ""));
    let (mut g, sock) = start_ctl(&t);
    let c = g.wait_running("c");
    // Only the log says why they wait: the line is the contract: going(8)
    // LOGGING.
    g.wait_log(" b: waiting: in a dependency cycle: b -> a -> b", secs(5));
    // Other events (a new service) do not repeat the lines or start them.
    g.sync(&t);
    assert_stays_down(&g, "a", ms(800));
    assert_stays_down(&g, "b", ms(10));
    // the lines are the contract: going(8) LOGGING
    g.check(
        g.log_count(" a: waiting: ") == 1 && g.log_count(" b: waiting: ") == 1,
        "one waiting line each",
    );
    for n in ["a", "b"] {
        let (state, _) = status_row(&g, &sock, n);
        g.check(
            state == "stopped",
            &format!("{n} is stopped, status says {state}"),
        );
    }
    let begin = Instant::now();
    terminate(&mut g, &[c]);
    assert!(
        begin.elapsed() < secs(5),
        "shutdown with a cycle took {:?}",
        begin.elapsed()
    );
    g.check(
        !t.join("a.start").exists() && !t.join("b.start").exists(),
        "a and b never started",
    );
    // Both files exist from the start: a's one line names the cycle too,
    // not a missing file (the line is the contract: going(8) LOGGING).
    g.check(
        g.log_has(" a: waiting: in a dependency cycle: a -> b -> a"),
        "a's waiting line should say: in a dependency cycle: a -> b -> a",
    );
}

#[test]
fn a_dangling_dependency_waits_until_its_file_appears() {
    let t = TempDir::new("deps-dangling");
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    t.write_svc("other.toml", &sleep_service(1210, ""));
    let (mut g, sock) = start_ctl(&t);
    let other = g.wait_running("other");
    // Only the log says why web waits: the line is the contract: going(8)
    // LOGGING.
    g.wait_log(
        " web: waiting: depends on \"db\", which no file defines",
        secs(5),
    );
    assert_stays_down(&g, "web", ms(1000));
    let (state, _) = status_row(&g, &sock, "web");
    g.check(
        state == "stopped",
        &format!("web is stopped, status says {state}"),
    );
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.5", "echo >&3"), "ready-fd = 3"),
    );
    let web = g.wait_running("web");
    let db = g.wait_running("db");
    assert_started_after_ready(&g, &t, "db", "web", 0.5);
    g.check(svc(&g, "db").ready, "db is ready in status");
    terminate(&mut g, &[web, db, other]);
}

// ---------------------------------------------------------------- readiness

#[test]
fn not_ready_within_start_timeout_restarts_with_backoff() {
    let t = TempDir::new("deps-timeout");
    // Never writes to fd 3.
    let script = format!(
        "trap '{}; exit 0' TERM; {}; while :; do sleep 0.05; done",
        stamp(&t.join("slow.term")),
        stamp(&t.join("slow.start"))
    );
    t.write_svc(
        "slow.toml",
        &sh_service(&script, "ready-fd = 3\nstart-timeout = \"500ms\""),
    );
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["slow"])));
    let mut g = Going::start(&t);
    let p1 = g.wait_running("slow");
    g.wait_gone(p1, secs(3));
    let p2 = g.wait_new_pid("slow", p1);
    g.check(
        !svc(&g, "slow").ready,
        "slow, never ready, is ready in status",
    );
    g.wait_gone(p2, secs(3));
    g.wait_new_pid("slow", p2);
    g.check(
        svc(&g, "slow").restarts >= 2,
        &format!("two restarts: {:?}", svc(&g, "slow")),
    );
    // the lines are the contract: going(8) LOGGING
    for p in [p1, p2] {
        let line = format!(" slow: not ready within 0.5s, pid {p}, restarting");
        g.check(g.log_has(&line), &format!("no line {line:?}"));
    }
    // The backoff grows from one restart to the next; the wording of the
    // delays is the contract: going(8) LOGGING.
    g.wait_log_count(" slow: restart in ", 2, secs(5));
    let log = g.log();
    let delays: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split(" slow: restart in ").nth(1))
        .collect();
    g.check(
        delays.len() >= 2 && delays[0] == "50ms" && delays[1] == "0.1s",
        &format!("backoff delays {delays:?}, expected 50ms then 0.1s"),
    );
    let starts = wait_stamps(&g, &t.join("slow.start"), 2);
    let terms = wait_stamps(&g, &t.join("slow.term"), 1);
    g.check(
        terms[0] - starts[0] >= 0.485 && terms[0] - starts[0] < 2.0,
        &format!(
            "start-timeout 500ms: ran {:.2}s before being stopped",
            terms[0] - starts[0]
        ),
    );
    g.check(
        starts[1] - terms[0] >= 0.040,
        &format!(
            "restarted {:.2}s after the stop, the backoff is 50ms",
            starts[1] - terms[0]
        ),
    );
    // A service that is never ready never lets its dependent start.
    let web = svc(&g, "web");
    g.check(
        !t.join("web.start").exists() && web.state == "stopped" && web.last_exit.is_none(),
        &format!("web never started: {web:?}"),
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_count(" web: waiting: waiting for slow") == 1,
        "web logs its waiting line once",
    );
    terminate(&mut g, &[]);
}

#[test]
fn status_shows_ready_and_not_ready() {
    let t = TempDir::new("deps-status");
    let go = t.join("go");
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; echo >&3; exec sleep 1000",
        go.display()
    );
    t.write_svc("db.toml", &sh_service(&script, "ready-fd = 3"));
    t.write_svc("web.toml", &dependent(&t, "web", &qa(&["db"])));
    t.write_svc("plain.toml", &sleep_service(1211, ""));
    let (mut g, sock) = start_ctl(&t);
    let db = g.wait_running("db");
    let plain = g.wait_running("plain");
    wait_status(&g, &sock, "db", "running, not-ready", |state, notes| {
        state == "running" && notes.iter().any(|n| n == "not-ready")
    });
    let Svc { state, ready, .. } = svc(&g, "db");
    g.check(
        state == "running" && !ready,
        &format!("JSON for db: running and \"ready\": false, got {state} {ready}"),
    );
    let (state, _) = status_row(&g, &sock, "web");
    g.check(
        state == "stopped",
        &format!("web waits, status says {state}"),
    );
    let Svc { state, ready, .. } = svc(&g, "web");
    g.check(
        state == "stopped" && !ready,
        &format!("JSON for web: stopped and \"ready\": false, got {state} {ready}"),
    );
    // A service without readiness: no ready note, ready as soon as it runs.
    let (state, notes) = status_row(&g, &sock, "plain");
    g.check(
        state == "running" && !notes.iter().any(|n| n == "ready" || n == "not-ready"),
        &format!("plain has no readiness note: {state} {notes:?}"),
    );
    let ready = svc(&g, "plain").ready;
    g.check(ready, "JSON for plain: \"ready\": true");

    fs::write(&go, "").expect("create go");
    g.wait_svc("db", &format!("ready, pid {db}"), secs(5), |s| {
        s.ready && s.pid == Some(db)
    });
    wait_status(&g, &sock, "db", "running, ready", |state, notes| {
        state == "running"
            && notes.iter().any(|n| n == "ready")
            && !notes.iter().any(|n| n == "not-ready")
    });
    let Svc { state, ready, .. } = svc(&g, "db");
    g.check(
        state == "running" && ready,
        &format!("JSON for db: running and \"ready\": true, got {state} {ready}"),
    );
    let web = g.wait_running("web");
    // web declares no readiness: no note.
    let (state, notes) = status_row(&g, &sock, "web");
    g.check(
        state == "running" && !notes.iter().any(|n| n == "ready" || n == "not-ready"),
        &format!("web has no readiness note: {state} {notes:?}"),
    );
    terminate(&mut g, &[db, web, plain]);
}

#[test]
fn a_dependency_later_in_name_order_is_waited_for_by_name() {
    let t = TempDir::new("deps-name-order");
    // app sorts before db: when going reads the directory, db's file is
    // there all along.
    t.write_svc(
        "db.toml",
        &sh_service(&daemon_script(&t, "db", "0.5", "echo >&3"), "ready-fd = 3"),
    );
    t.write_svc("app.toml", &dependent(&t, "app", &qa(&["db"])));
    let mut g = Going::start(&t);
    let app = g.wait_running("app");
    let db = g.wait_running("db");
    assert_started_after_ready(&g, &t, "db", "app", 0.5);
    g.check(svc(&g, "db").ready, "db is ready in status");
    terminate(&mut g, &[app, db]);
    // the lines are the contract: going(8) LOGGING
    g.check(
        g.log_count(" app: waiting: ") == 1,
        "app logs one waiting line",
    );
    g.check(
        g.log_has(" app: waiting: waiting for db"),
        "app's waiting line should say: waiting for db (db.toml exists)",
    );
}
