//! The control socket: `going status|start|stop|restart|reload`, groups,
//! instances, peer credentials, many and hung clients, socket ownership.
//!
//! Every test but `default_socket_path_is_derived_from_dir` gives going
//! `-s PATH` with PATH in the test's own directory (TMP/run/ctl.sock, the
//! directory mode 0700; for the test with user nobody a 0755 directory under
//! /run), so that tests running in parallel never share a socket.

mod common;
use common::*;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- helpers

/// going on TMP/svc with its control socket at TMP/ctl.sock; returns once
/// the socket accepts connections.
fn start(t: &TempDir) -> (Going, String) {
    let sock = sock_path(t);
    let g = start_on(t, &sock, None);
    (g, sock)
}

/// TMP/run/ctl.sock, in a directory of mode 0700 (going insists on a
/// private directory for a socket under /tmp).
fn sock_path(t: &TempDir) -> String {
    let run = t.join("run");
    fs::create_dir_all(&run).expect("mkdir run");
    fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).expect("chmod run");
    run.join("ctl.sock").display().to_string()
}

/// A directory under /run (not /tmp), mode 0755, removed on drop: for a
/// socket that another user must be able to reach.
struct RunDir(std::path::PathBuf);

impl RunDir {
    fn new(tag: &str) -> RunDir {
        let p = std::path::PathBuf::from(format!(
            "/run/going-test-{tag}-{}-{}",
            std::process::id(),
            now_epoch() as u64
        ));
        fs::create_dir_all(&p).expect("mkdir under /run");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
        RunDir(p)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// going with `-s sock` (and another service directory, if given), waiting
/// for the socket to accept.
fn start_on(t: &TempDir, sock: &str, dir: Option<&Path>) -> Going {
    let g = spawn_on(t, sock, dir);
    g.wait_up();
    g.wait(secs(5), &format!("control socket {sock} accepting"), || {
        is_socket(sock) && UnixStream::connect(sock).is_ok()
    });
    g
}

/// Spawn `going -l stderr -d DIR -s sock` without waiting for anything.
fn spawn_on(t: &TempDir, sock: &str, dir: Option<&Path>) -> Going {
    Going::start_with(
        t,
        Opts {
            // Going::start_with runs `sh -c 'PRE exec "$0" "$@"' going -l
            // stderr -d DIR`: append `-s SOCK` to the arguments.
            pre: format!("set -- \"$@\" -s '{sock}';"),
            dir: dir.map(Path::to_path_buf),
            ..Opts::default()
        },
    )
}

fn is_socket(p: &str) -> bool {
    fs::symlink_metadata(p)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

fn mode(p: &str) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {p}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// What a `going CMD` client printed and its exit status.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}---",
            self.code, self.stdout, self.stderr
        )
    }
}

fn to_out(o: std::process::Output) -> Out {
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `going CMD -s SOCK ARGS...`
fn ctl(sock: &str, cmd: &str, args: &[&str]) -> Out {
    let mut a = vec![cmd, "-s", sock];
    a.extend_from_slice(args);
    to_out(run_going(&a))
}

/// `going CMD -s SOCK ARGS...`, which must exit 0.
fn ctl_ok(g: &Going, sock: &str, cmd: &str, args: &[&str]) -> Out {
    let o = ctl(sock, cmd, args);
    if o.code != 0 {
        g.fail(&format!("going {cmd} {args:?} should exit 0:\n{o}"));
    }
    o
}

/// Run a command to completion within `limit`, killing it otherwise.
fn run_limited(mut cmd: Command, limit: Duration) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let done = wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        kill(pid, SIGKILL);
    }
    let o = child.wait_with_output().expect("wait");
    assert!(done, "{cmd:?} did not exit within {limit:?}");
    to_out(o)
}

/// One row of `going status`.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    state: String,
    pid: Option<i32>,
    uptime: String,
    restarts: u64,
    last_exit: String,
    /// CPU, RSS and whatever follows, as printed.
    rest: Vec<String>,
    flapping: bool,
}

/// `going status` text: the summary line and the rows.
#[derive(Debug)]
struct Text {
    summary: String,
    rows: Vec<Row>,
    raw: String,
}

impl Text {
    fn row(&self, name: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row for {name:?} in status:\n{}", self.raw))
    }
}

/// Parse the text of `going status`: a summary line, a header line starting
/// with NAME, then one row a service (LAST EXIT may be two words).
fn parse_text(raw: &str) -> Result<Text, String> {
    let lines: Vec<&str> = raw.lines().collect();
    let summary = lines.first().ok_or("empty output")?.to_string();
    let h = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some("NAME"))
        .ok_or("no header line starting with NAME")?;
    let header = lines[h];
    for col in [
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "CPU", "RSS",
    ] {
        if !header.contains(col) {
            return Err(format!("header {header:?} lacks {col}"));
        }
    }
    let state_col = header.find("STATE").ok_or("no STATE")?;
    let mut rows = Vec::new();
    for line in &lines[h + 1..] {
        if line.trim().is_empty() {
            continue;
        }
        let tok: Vec<&str> = line.split_whitespace().collect();
        if tok.len() < 6 {
            return Err(format!("short row {line:?}"));
        }
        // Aligned: the STATE column starts where its header does.
        let after_name = line[tok[0].len()..]
            .find(|c: char| !c.is_whitespace())
            .map(|i| i + tok[0].len());
        if after_name != Some(state_col) {
            return Err(format!(
                "row {line:?} not aligned with header {header:?} (STATE at {state_col})"
            ));
        }
        let pid = match tok[2] {
            "-" => None,
            p => Some(p.parse().map_err(|_| format!("PID {p:?} in {line:?}"))?),
        };
        let restarts = tok[4]
            .parse()
            .map_err(|_| format!("RESTARTS {:?} in {line:?}", tok[4]))?;
        let (last_exit, i) = if tok[5] == "exit" || tok[5] == "signal" {
            let w = tok.get(6).ok_or(format!("LAST EXIT cut in {line:?}"))?;
            (format!("{} {w}", tok[5]), 7)
        } else {
            (tok[5].to_string(), 6)
        };
        let rest: Vec<String> = tok[i.min(tok.len())..]
            .iter()
            .map(|s| s.to_string())
            .collect();
        rows.push(Row {
            name: tok[0].to_string(),
            state: tok[1].to_string(),
            pid,
            uptime: tok[3].to_string(),
            restarts,
            last_exit,
            flapping: rest.iter().any(|s| s == "flapping"),
            rest,
        });
    }
    Ok(Text {
        summary,
        rows,
        raw: raw.to_string(),
    })
}

/// The body a client printed: on stdout, or (going prints it there when
/// the status is not 0) on stderr.
fn body(o: &Out) -> &str {
    if o.stdout.trim().is_empty() {
        &o.stderr
    } else {
        &o.stdout
    }
}

/// `going status -s SOCK ARGS` (exit status not checked), parsed.
fn status_text(g: &Going, sock: &str, args: &[&str]) -> (Out, Text) {
    let o = ctl(sock, "status", args);
    match parse_text(body(&o)) {
        Ok(t) => (o, t),
        Err(e) => g.fail(&format!("going status {args:?}: {e}\n{o}")),
    }
}

/// Poll `going status` until the row of `name` satisfies `cond`.
fn wait_row(g: &Going, sock: &str, name: &str, what: &str, cond: impl Fn(&Row) -> bool) -> Row {
    let mut last = String::new();
    let found = wait_for(secs(8), || {
        let o = ctl(sock, "status", &[]);
        last = o.to_string();
        let t = parse_text(body(&o)).ok()?;
        let r = t.rows.iter().find(|r| r.name == name)?;
        cond(r).then(|| r.clone())
    });
    match found {
        Some(r) => r,
        None => g.fail(&format!(
            "timed out waiting for status of {name}: {what}; last status:\n{last}"
        )),
    }
}

/// One service of `going status --json`, checked and flattened.
#[derive(Debug, Clone)]
struct JRow {
    name: String,
    service: String,
    instance: Option<u32>,
    groups: Vec<String>,
    state: String,
    pid: Option<i32>,
    restarts: u64,
    last_exit: String,
    start_time: Option<f64>,
    last_exit_time: Option<f64>,
    flapping: bool,
    admin_down: bool,
    rss_kb: Option<u64>,
}

#[derive(Debug)]
struct Json {
    going_pid: Option<i32>,
    rows: Vec<JRow>,
    raw: String,
}

impl Json {
    fn row(&self, name: &str) -> &JRow {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no service {name:?} in JSON:\n{}", self.raw))
    }
}

/// An integer (no fraction, no exponent).
fn json_int(v: &common::Json) -> Option<i64> {
    match v {
        common::Json::Num(n) if n.bytes().all(|c| c.is_ascii_digit() || c == b'-') => {
            n.parse().ok()
        }
        _ => None,
    }
}

/// `"YYYY-MM-DDTHH:MM:SS[.f]Z"` as seconds since the epoch.
fn iso_utc(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (d[..].try_into().ok()?, t[..].try_into().ok()?);
    if date.len() != 10 || hms.len() != 8 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let fraction: f64 = format!("0.{frac}").parse().ok()?;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + fraction)
}

/// One service object: every key DECISIONS lists, each of its type.
fn json_row(s: &common::Json) -> Result<JRow, String> {
    use common::Json as J;
    let key = |k: &str| s.get(k).ok_or(format!("service {s:?} lacks key {k}"));
    let bad = |k: &str| format!("service {s:?}: bad type for {k}");
    let opt = |k: &str| -> Result<Option<&J>, String> {
        let v = key(k)?;
        Ok((*v != J::Null).then_some(v))
    };
    let num = |k: &str| -> Result<Option<f64>, String> {
        match opt(k)? {
            None => Ok(None),
            Some(J::Num(n)) => n.parse().map(Some).map_err(|_| bad(k)),
            Some(_) => Err(bad(k)),
        }
    };
    let time = |k: &str| -> Result<Option<f64>, String> {
        match opt(k)? {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(iso_utc)
                .map(Some)
                .ok_or(format!("{k} of {s:?}: not an ISO UTC time")),
        }
    };
    let string = |k: &str| key(k)?.as_str().map(String::from).ok_or(bad(k));
    let flag = |k: &str| match key(k)? {
        J::Bool(b) => Ok(*b),
        _ => Err(bad(k)),
    };
    let int = |k: &str| -> Result<Option<i64>, String> {
        opt(k)?.map_or(Ok(None), |v| json_int(v).map(Some).ok_or(bad(k)))
    };
    let groups = match key("groups")? {
        J::Arr(v) => v
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or(bad("groups"))?,
        _ => return Err(bad("groups")),
    };
    let last_exit = match (opt("last_exit")?, key("last_exit")?) {
        (None, _) => "-".to_string(),
        (Some(J::Obj(f)), le) if f.len() == 1 => {
            if let Some(code) = le.get("code").and_then(json_int) {
                format!("exit {code}")
            } else if let Some(sig) = le.get("signal").and_then(J::as_str) {
                format!("signal {sig}")
            } else {
                return Err(bad("last_exit"));
            }
        }
        _ => return Err(bad("last_exit")),
    };
    num("uptime_seconds")?;
    num("cpu_seconds")?;
    Ok(JRow {
        name: string("name")?,
        service: string("service")?,
        instance: int("instance")?.map(|i| i as u32),
        groups,
        state: string("state")?,
        pid: int("pid")?.map(|p| p as i32),
        restarts: int("restarts")?.ok_or(bad("restarts"))? as u64,
        last_exit,
        start_time: time("start_time")?,
        last_exit_time: time("last_exit_time")?,
        flapping: flag("flapping")?,
        admin_down: flag("admin_down")?,
        rss_kb: num("rss_kb")?.map(|k| k as u64),
    })
}

/// Validates the document (types of every key DECISIONS lists, ISO UTC
/// times) with the JSON reader of tests/common.
fn parse_json(raw: &str) -> Result<Json, String> {
    use common::Json as J;
    let doc = common::parse_json(raw).ok_or("invalid status JSON: not one JSON document")?;
    let (Some(J::Obj(_)), Some(J::Arr(services))) = (doc.get("going"), doc.get("services")) else {
        return Err("top level must be {going: {...}, services: [...]}".into());
    };
    Ok(Json {
        going_pid: doc
            .get("going")
            .and_then(|g| g.get("pid"))
            .and_then(json_int)
            .map(|p| p as i32),
        rows: services.iter().map(json_row).collect::<Result<_, _>>()?,
        raw: raw.to_string(),
    })
}

/// `going status --json -s SOCK ARGS`, parsed.
fn status_json(g: &Going, sock: &str, args: &[&str]) -> (Out, Json) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = ctl(sock, "status", &a);
    match parse_json(body(&o)) {
        Ok(j) => (o, j),
        Err(e) => g.fail(&format!("going status --json {args:?}: {e}\n{o}")),
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// When a process started, in seconds since the epoch, from /proc
/// (btime + starttime / USER_HZ; btime is whole seconds).
fn proc_start_epoch(pid: i32) -> f64 {
    let btime: f64 = fs::read_to_string("/proc/stat")
        .expect("/proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime ").map(|v| v.trim().parse().unwrap()))
        .expect("btime");
    let st = stat(pid).unwrap_or_else(|| panic!("no /proc/{pid}/stat"));
    btime + st.starttime as f64 / 100.0
}

fn vm_rss_kb(pid: i32) -> u64 {
    status_field(pid, "VmRSS")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no VmRSS for pid {pid}"))
}

fn env_has(pid: i32, kv: &str) -> bool {
    environ(pid).iter().any(|e| e == kv)
}

/// A service that exits with `code` right away.
fn exit_service(code: i32, extra: &str) -> String {
    format!(
        "cmd = {}\n{extra}\n",
        qa(&["/bin/sh", "-c", &format!("exit {code}")])
    )
}

/// The services of the status tests, and their pids.
struct Scenario {
    g: Going,
    sock: String,
    /// `a`: runs undisturbed.
    a: i32,
    /// `k`: killed with SIGKILL twice; its third pid.
    k: i32,
    test_start: f64,
    /// Last: fields drop in order, the directory after going.
    _t: TempDir,
}

/// a: running; f: /bin/false (backoff); d: enabled = false (disabled);
/// s: stopped with `going stop`; k: killed twice with SIGKILL;
/// e: exits 3, restart = never (exited).
fn scenario(tag: &str) -> Scenario {
    let test_start = now_epoch();
    let t = TempDir::new(tag);
    let (pa, ps, pk) = (t.join("a.pid"), t.join("s.pid"), t.join("k.pid"));
    t.write_svc("a.toml", &pid_service(&pa, ""));
    t.write_svc("f.toml", "cmd = [\"/bin/false\"]\n");
    t.write_svc("d.toml", &sleep_service(1201, "enabled = false"));
    t.write_svc("s.toml", &pid_service(&ps, ""));
    t.write_svc("k.toml", &pid_service(&pk, ""));
    t.write_svc("e.toml", &exit_service(3, "restart = \"never\""));
    let (g, sock) = start(&t);
    let a = g.pid_from_file(&pa);
    let s = g.pid_from_file(&ps);
    let k1 = g.pid_from_file(&pk);
    g.check(kill(k1, SIGKILL), "kill k");
    let k2 = g.new_pid_from_file(&pk, k1);
    g.check(kill(k2, SIGKILL), "kill k again");
    let k = g.new_pid_from_file(&pk, k2);
    g.wait_gone(k1, secs(2));
    g.wait_gone(k2, secs(2));
    ctl_ok(&g, &sock, "stop", &["s"]);
    g.wait_gone(s, secs(5));
    // f crash-loops: wait until it has failed a few times so that its
    // backoff is long and it is almost always seen in state backoff.
    wait_row(&g, &sock, "f", "backoff after 3 restarts", |r| {
        r.state == "backoff" && r.restarts >= 3
    });
    wait_row(&g, &sock, "e", "exited", |r| r.state == "exited");
    Scenario {
        _t: t,
        g,
        sock,
        a,
        k,
        test_start,
    }
}

// ---------------------------------------------------------------- status

#[test]
fn status_text_matches_proc() {
    let sc = scenario("st-text");
    let (g, sock) = (&sc.g, sc.sock.as_str());
    let (o, st) = status_text(g, sock, &[]);
    g.check(o.code == 0, &format!("status with no names exits 0:\n{o}"));
    let ctx = format!("\n{}", st.raw);

    let want = format!("going pid {}, up ", g.pid);
    g.check(
        st.summary.starts_with(&want),
        &format!("summary starts with {want:?}{ctx}"),
    );
    for w in [" rss ", " kB", "load ", "memory ", "available of "] {
        g.check(st.summary.contains(w), &format!("summary has {w:?}{ctx}"));
    }
    let names: Vec<&str> = st.rows.iter().map(|r| r.name.as_str()).collect();
    for n in ["a", "f", "d", "s", "k", "e"] {
        g.check(names.contains(&n), &format!("a row for {n}{ctx}"));
    }
    g.check(
        names.len() == 6,
        &format!("exactly 6 rows, got {names:?}{ctx}"),
    );

    let a = st.row("a");
    g.check(
        a.state == "running" && a.pid == Some(sc.a),
        &format!("a running with pid {} (its $$){ctx}", sc.a),
    );
    g.check(
        a.restarts == 0 && a.last_exit == "-" && a.uptime != "-",
        &format!("a: 0 restarts, LAST EXIT -, an uptime{ctx}"),
    );
    g.check(
        a.rest.len() >= 2 && !a.flapping,
        &format!("a: CPU and RSS columns, not flapping{ctx}"),
    );
    // CPU is a time (e.g. 0.00s), RSS is about /proc/PID/status VmRSS.
    g.check(
        a.rest[0].starts_with(|c: char| c.is_ascii_digit()),
        &format!("a: CPU column {:?} is a time{ctx}", a.rest[0]),
    );
    let rss = vm_rss_kb(sc.a);
    let shown: Option<u64> = a.rest[1]
        .trim_end_matches("kB")
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok();
    g.check(
        shown.is_some_and(|r| r.abs_diff(rss) <= (rss / 4).max(256)),
        &format!("a: RSS {:?} is about VmRSS {rss} kB{ctx}", a.rest[1]),
    );
    // The summary's rss is going's own VmRSS.
    let own = vm_rss_kb(g.pid);
    let shown: Option<u64> = st
        .summary
        .split(" rss ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    g.check(
        shown.is_some_and(|r| r.abs_diff(own) <= (own / 4).max(512)),
        &format!("summary rss is going's VmRSS {own} kB{ctx}"),
    );

    let k = st.row("k");
    g.check(
        k.state == "running" && k.pid == Some(sc.k),
        &format!("k running with its third pid {}{ctx}", sc.k),
    );
    g.check(
        k.restarts == 2,
        &format!("k: RESTARTS 2 after two kills, got {}{ctx}", k.restarts),
    );
    g.check(
        k.last_exit == "signal KILL",
        &format!("k: LAST EXIT 'signal KILL', got {:?}{ctx}", k.last_exit),
    );

    let f = st.row("f");
    g.check(
        f.state == "backoff" || f.state == "starting" || f.state == "running",
        &format!("f crash-looping{ctx}"),
    );
    g.check(
        f.last_exit == "exit 1" && f.restarts >= 3,
        &format!("f: LAST EXIT 'exit 1', RESTARTS >= 3{ctx}"),
    );
    // The backoff after 3+ failures is >= 0.8 s: it is seen in backoff.
    wait_row(g, sock, "f", "backoff, no pid", |r| {
        r.state == "backoff" && r.pid.is_none()
    });

    let d = st.row("d");
    g.check(
        d.state == "disabled" && d.pid.is_none() && d.uptime == "-",
        &format!("d disabled, PID -, UPTIME -{ctx}"),
    );
    let s = st.row("s");
    g.check(
        s.state == "stopped" && s.pid.is_none() && s.uptime == "-",
        &format!("s stopped, PID -, UPTIME -{ctx}"),
    );
    let e = st.row("e");
    g.check(
        e.state == "exited" && e.pid.is_none() && e.last_exit == "exit 3",
        &format!("e exited, PID -, LAST EXIT 'exit 3'{ctx}"),
    );

    // Filtering by name prints only those rows.
    let (o, st) = status_text(g, sock, &["a", "k"]);
    g.check(o.code == 0, &format!("status a k exits 0:\n{o}"));
    let names: Vec<&str> = st.rows.iter().map(|r| r.name.as_str()).collect();
    g.check(
        names.len() == 2 && names.contains(&"a") && names.contains(&"k"),
        &format!("status a k prints rows a and k, got {names:?}\n{}", st.raw),
    );
}

#[test]
fn status_json_matches_proc() {
    let sc = scenario("st-json");
    let (g, sock) = (&sc.g, sc.sock.as_str());
    let (o, j) = status_json(g, sock, &[]);
    g.check(o.code == 0, &format!("status --json exits 0:\n{o}"));
    let ctx = format!("\n{}", j.raw);
    if let Some(p) = j.going_pid {
        g.check(p == g.pid, &format!("going.pid is {}{ctx}", g.pid));
    }
    g.check(j.rows.len() == 6, &format!("6 services{ctx}"));
    let now = now_epoch();

    let a = j.row("a");
    g.check(
        a.state == "running" && a.pid == Some(sc.a) && a.service == "a" && a.instance.is_none(),
        &format!("a running with pid {}, service a, instance null{ctx}", sc.a),
    );
    g.check(
        a.restarts == 0 && a.last_exit == "-" && a.last_exit_time.is_none(),
        &format!("a: 0 restarts, last_exit null, last_exit_time null{ctx}"),
    );
    g.check(
        !a.flapping && !a.admin_down,
        &format!("a: not flapping, not down{ctx}"),
    );
    let a_start = proc_start_epoch(sc.a);
    match a.start_time {
        Some(ts) => g.check(
            (ts - a_start).abs() < 2.5,
            &format!("a.start_time {ts} is the process start {a_start} (from /proc){ctx}"),
        ),
        None => g.fail(&format!("a.start_time missing{ctx}")),
    }
    let rss = vm_rss_kb(sc.a);
    match a.rss_kb {
        Some(r) => g.check(
            r > 0 && r.abs_diff(rss) <= (rss / 4).max(256),
            &format!("a.rss_kb {r} is about VmRSS {rss}{ctx}"),
        ),
        None => g.fail(&format!("a.rss_kb missing for a running service{ctx}")),
    }

    let k = j.row("k");
    g.check(
        k.state == "running" && k.pid == Some(sc.k),
        &format!("k running with pid {}{ctx}", sc.k),
    );
    g.check(
        k.restarts == 2 && k.last_exit == "signal KILL",
        &format!("k: restarts 2, last_exit {{\"signal\": \"KILL\"}}{ctx}"),
    );
    match (k.start_time, k.last_exit_time) {
        (Some(st), Some(le)) => {
            let k_start = proc_start_epoch(sc.k);
            g.check(
                (st - k_start).abs() < 2.5,
                &format!("k.start_time {st} is its third process's start {k_start}{ctx}"),
            );
            g.check(
                le >= sc.test_start - 1.0 && le <= st + 1.0 && le <= now + 1.0,
                &format!("k.last_exit_time {le} between test start and k's restart{ctx}"),
            );
        }
        _ => g.fail(&format!("k: start_time and last_exit_time present{ctx}")),
    }

    let f = j.row("f");
    g.check(
        f.last_exit == "exit 1" && f.restarts >= 3 && f.last_exit_time.is_some(),
        &format!("f: last_exit {{\"code\": 1}}, restarts >= 3, last_exit_time{ctx}"),
    );
    let d = j.row("d");
    g.check(
        d.state == "disabled" && d.pid.is_none(),
        &format!("d disabled, pid null{ctx}"),
    );
    let s = j.row("s");
    g.check(
        s.state == "stopped" && s.pid.is_none() && s.admin_down,
        &format!("s stopped, pid null, admin_down true{ctx}"),
    );
    let e = j.row("e");
    g.check(
        e.state == "exited"
            && e.pid.is_none()
            && e.last_exit == "exit 3"
            && e.last_exit_time.is_some(),
        &format!("e exited, last_exit {{\"code\": 3}}, last_exit_time{ctx}"),
    );

    // Names filter the document too.
    let (o, j) = status_json(g, sock, &["k"]);
    g.check(
        o.code == 0 && j.rows.len() == 1 && j.rows[0].name == "k",
        &format!("status --json k: only k, exit 0\n{o}"),
    );
}

#[test]
fn health_check_exit_codes() {
    let t = TempDir::new("health");
    let (pr, po) = (t.join("run.pid"), t.join("off.pid"));
    t.write_svc("run.toml", &pid_service(&pr, "groups = [\"web\", \"ok\"]"));
    t.write_svc("bad.toml", "cmd = [\"/bin/false\"]\ngroups = \"web\"\n");
    t.write_svc("off.toml", &pid_service(&po, ""));
    let (g, sock) = start(&t);
    g.pid_from_file(&pr);
    let off = g.pid_from_file(&po);
    // bad's backoff is >= 0.8 s from now on: it is seen as not running.
    wait_row(&g, &sock, "bad", "backoff after 3 restarts", |r| {
        r.state == "backoff" && r.restarts >= 3
    });
    ctl_ok(&g, &sock, "stop", &["off"]);
    g.wait_gone(off, secs(5));

    let code = |args: &[&str]| ctl(&sock, "status", args);
    let expect = |args: &[&str], ok: bool| {
        let o = code(args);
        g.check(
            (o.code == 0) == ok,
            &format!(
                "going status {args:?} should {}:\n{o}",
                if ok { "exit 0" } else { "exit non-zero" }
            ),
        );
    };
    expect(&[], true);
    expect(&["run"], true);
    expect(&["ok"], true);
    expect(&["--json", "run"], true);
    expect(&["bad"], false);
    expect(&["--json", "bad"], false);
    expect(&["off"], false);
    expect(&["run", "off"], false);
    expect(&["run", "bad"], false);
    expect(&["web"], false);

    for args in [
        &["nosuch"][..],
        &["run", "nosuch"][..],
        &["--json", "nosuch"][..],
    ] {
        let o = code(args);
        g.check(
            o.code == 1 && o.all().contains("nosuch"),
            &format!("going status {args:?}: exit 1 and a message naming nosuch:\n{o}"),
        );
    }
    let o = code(&["nosuch"]);
    g.check(
        o.all().contains("unknown service or group: nosuch"),
        &format!("message 'unknown service or group: nosuch':\n{o}"),
    );
}

// ---------------------------------------------------------------- stop/start/restart

#[test]
fn stop_start_restart_by_name_and_group() {
    let t = TempDir::new("ssr");
    let (pa, pb, pc) = (t.join("a.pid"), t.join("b.pid"), t.join("c.pid"));
    t.write_svc("a.toml", &pid_service(&pa, "groups = \"web\""));
    t.write_svc("b.toml", &pid_service(&pb, "groups = [\"web\", \"edge\"]"));
    t.write_svc("c.toml", &pid_service(&pc, ""));
    let (g, sock) = start(&t);
    let a1 = g.pid_from_file(&pa);
    let b1 = g.pid_from_file(&pb);
    let c1 = g.pid_from_file(&pc);

    // stop by name
    ctl_ok(&g, &sock, "stop", &["a"]);
    g.wait_gone(a1, secs(5));
    g.wait(secs(5), "a's process group gone after stop", || {
        !kill(-a1, 0)
    });
    let (_, st) = status_text(&g, &sock, &[]);
    g.check(
        st.row("a").state == "stopped" && st.row("a").pid.is_none(),
        &format!("a stopped after 'going stop a':\n{}", st.raw),
    );
    g.check(
        alive(b1) && alive(c1) && st.row("b").pid == Some(b1) && st.row("c").pid == Some(c1),
        &format!("b and c untouched by 'stop a':\n{}", st.raw),
    );
    // It stays down (no restart behind our back).
    std::thread::sleep(ms(500));
    g.check(
        read_pid_file(&pa, ms(0)) == Some(a1) && !alive(a1),
        "a not restarted after stop",
    );

    // start by name
    ctl_ok(&g, &sock, "start", &["a"]);
    let a2 = g.new_pid_from_file(&pa, a1);
    wait_row(&g, &sock, "a", &format!("running with pid {a2}"), |r| {
        r.state == "running" && r.pid == Some(a2)
    });

    // restart by name
    ctl_ok(&g, &sock, "restart", &["a"]);
    let a3 = g.new_pid_from_file(&pa, a2);
    g.wait_gone(a2, secs(5));
    wait_row(&g, &sock, "a", &format!("running with pid {a3}"), |r| {
        r.state == "running" && r.pid == Some(a3)
    });
    g.check(alive(b1) && alive(c1), "b and c untouched by restart a");

    // stop by group: a and b, not c
    ctl_ok(&g, &sock, "stop", &["web"]);
    g.wait_gone(a3, secs(5));
    g.wait_gone(b1, secs(5));
    let (o, st) = status_text(&g, &sock, &["web"]);
    g.check(
        o.code != 0,
        &format!("status web non-zero when stopped:\n{o}"),
    );
    g.check(
        st.rows.len() == 2 && st.row("a").state == "stopped" && st.row("b").state == "stopped",
        &format!("status web: a and b stopped:\n{}", st.raw),
    );
    g.check(alive(c1), "c untouched by stop web");

    // start by group
    ctl_ok(&g, &sock, "start", &["web"]);
    let a4 = g.new_pid_from_file(&pa, a3);
    let b2 = g.new_pid_from_file(&pb, b1);
    let o = ctl(&sock, "status", &["web"]);
    let o = if o.code == 0 {
        o
    } else {
        // Give both a moment to be "running" rather than "starting".
        std::thread::sleep(ms(300));
        ctl(&sock, "status", &["web"])
    };
    g.check(
        o.code == 0,
        &format!("status web exits 0 after start web:\n{o}"),
    );

    // restart by group (the other group of b)
    ctl_ok(&g, &sock, "restart", &["edge"]);
    let b3 = g.new_pid_from_file(&pb, b2);
    g.wait_gone(b2, secs(5));
    g.check(alive(a4), "a (not in edge) untouched by restart edge");
    ctl_ok(&g, &sock, "restart", &["web"]);
    let a5 = g.new_pid_from_file(&pa, a4);
    let b4 = g.new_pid_from_file(&pb, b3);
    g.wait_gone(a4, secs(5));
    g.wait_gone(b3, secs(5));
    let (_, st) = status_text(&g, &sock, &[]);
    g.check(
        st.row("c").pid == Some(c1) && st.row("c").restarts == 0 && alive(c1),
        &format!("c never touched:\n{}", st.raw),
    );
    wait_row(&g, &sock, "b", &format!("running with pid {b4}"), |r| {
        r.state == "running" && r.pid == Some(b4)
    });
    wait_row(&g, &sock, "a", &format!("running with pid {a5}"), |r| {
        r.state == "running" && r.pid == Some(a5)
    });
}

#[test]
fn unknown_name_is_an_error_and_changes_nothing() {
    let t = TempDir::new("unknown");
    let (pa, pb) = (t.join("a.pid"), t.join("b.pid"));
    t.write_svc("a.toml", &pid_service(&pa, "groups = \"web\""));
    t.write_svc("b.toml", &pid_service(&pb, ""));
    let (g, sock) = start(&t);
    let a = g.pid_from_file(&pa);
    let b = g.pid_from_file(&pb);

    for cmd in ["stop", "restart", "start"] {
        for args in [
            &["nosuch"][..],
            &["a", "nosuch"][..],
            &["web", "b", "nosuch"][..],
        ] {
            let o = ctl(&sock, cmd, args);
            g.check(
                o.code == 1 && o.all().contains("nosuch"),
                &format!("going {cmd} {args:?}: exit 1 naming nosuch:\n{o}"),
            );
        }
    }
    std::thread::sleep(ms(500));
    g.check(
        alive(a) && alive(b),
        "a and b still running after refused commands",
    );
    g.check(
        read_pid_file(&pa, ms(0)) == Some(a) && read_pid_file(&pb, ms(0)) == Some(b),
        "a and b not restarted by refused commands",
    );
    let (o, j) = status_json(&g, &sock, &[]);
    g.check(o.code == 0, &format!("status exits 0:\n{o}"));
    for (n, p) in [("a", a), ("b", b)] {
        let r = j.row(n);
        g.check(
            r.state == "running" && r.pid == Some(p) && r.restarts == 0 && !r.admin_down,
            &format!("{n} untouched:\n{}", j.raw),
        );
    }

    // A stopped service stays stopped when `start a nosuch` is refused.
    ctl_ok(&g, &sock, "stop", &["a"]);
    g.wait_gone(a, secs(5));
    let o = ctl(&sock, "start", &["a", "nosuch"]);
    g.check(o.code == 1, &format!("start a nosuch exits 1:\n{o}"));
    std::thread::sleep(ms(500));
    g.check(
        read_pid_file(&pa, ms(0)) == Some(a),
        "a not started by a refused 'start a nosuch'",
    );
    let (_, st) = status_text(&g, &sock, &["a"]);
    g.check(
        st.row("a").state == "stopped",
        &format!("a still stopped:\n{}", st.raw),
    );
}

#[test]
fn admin_down_survives_reload() {
    let t = TempDir::new("down");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    let (g, sock) = start(&t);
    let a1 = g.pid_from_file(&pa);
    ctl_ok(&g, &sock, "stop", &["a"]);
    g.wait_gone(a1, secs(5));

    // The definition changes (a new variable) ...
    t.replace_svc("a.toml", &pid_service(&pa, "env = { V = \"2\" }"));
    g.sync(&t);
    // ... and a full rescan, by signal and by command.
    // Only the log says a rescan happened: the line is the contract:
    // going(8) LOGGING.
    let rescans = g.log_count("rescanning");
    g.signal(SIGHUP);
    g.wait_log_count("rescanning", rescans + 1, secs(5));
    ctl_ok(&g, &sock, "reload", &[]);
    g.sync(&t);
    std::thread::sleep(ms(300));
    g.check(
        read_pid_file(&pa, ms(0)) == Some(a1) && !alive(a1),
        "a started again by a reload although stopped with 'going stop'",
    );
    let (_, j) = status_json(&g, &sock, &["a"]);
    let r = j.row("a");
    g.check(
        r.state == "stopped" && r.pid.is_none() && r.admin_down,
        &format!("a still stopped (admin_down) after the reloads:\n{}", j.raw),
    );

    // `start` brings it back, with the new definition.
    ctl_ok(&g, &sock, "start", &["a"]);
    let a2 = g.new_pid_from_file(&pa, a1);
    g.check(env_has(a2, "V=2"), "a runs the new definition (V=2)");
    let r = wait_row(&g, &sock, "a", "running", |r| r.state == "running");
    g.check(
        r.pid == Some(a2),
        &format!("status pid of a is {a2}: {r:?}"),
    );
    let (_, j) = status_json(&g, &sock, &["a"]);
    g.check(
        !j.row("a").admin_down,
        &format!("admin_down false after start:\n{}", j.raw),
    );
}

// ---------------------------------------------------------------- instances

fn instance_service(t: &TempDir, n: u32) -> String {
    let script = format!(
        "echo $$ > {}/w.$GOING_INSTANCE; exec sleep 1000",
        t.path.display()
    );
    format!(
        "cmd = {}\nstop-timeout = \"2s\"\ninstances = {n}\ngroups = \"pool\"\n",
        qa(&["/bin/sh", "-c", &script])
    )
}

#[test]
fn instances_up_and_down() {
    let t = TempDir::new("inst");
    t.write_svc("w.toml", &instance_service(&t, 3));
    let (g, sock) = start(&t);
    let pidf = |i: u32| t.join(format!("w.{i}"));
    let mut pids: Vec<i32> = (0..3).map(|i| g.pid_from_file(&pidf(i))).collect();
    let starts: Vec<u64> = pids.iter().map(|&p| stat(p).unwrap().starttime).collect();
    for (i, &p) in pids.iter().enumerate() {
        g.check(
            env_has(p, &format!("GOING_INSTANCE={i}")),
            &format!("w@{i} has GOING_INSTANCE={i}: {:?}", environ(p)),
        );
        g.check(
            env_has(p, &format!("GOING_SERVICE=w@{i}")),
            &format!("w@{i} has GOING_SERVICE=w@{i}: {:?}", environ(p)),
        );
    }
    for i in 0..3 {
        let p = pids[i as usize];
        wait_row(
            &g,
            &sock,
            &format!("w@{i}"),
            &format!("running, pid {p}"),
            |r| r.state == "running" && r.pid == Some(p),
        );
    }
    let (o, j) = status_json(&g, &sock, &["w"]);
    g.check(
        o.code == 0,
        &format!("status w exits 0 with all instances running:\n{o}"),
    );
    g.check(
        j.rows.len() == 3,
        &format!("status w: 3 instances\n{}", j.raw),
    );
    for i in 0..3u32 {
        let r = j.row(&format!("w@{i}"));
        g.check(
            r.service == "w" && r.instance == Some(i) && r.groups == ["pool"],
            &format!("w@{i}: service w, instance {i}, groups [pool]\n{}", j.raw),
        );
    }

    // One instance by name.
    ctl_ok(&g, &sock, "stop", &["w@1"]);
    g.wait_gone(pids[1], secs(5));
    g.check(alive(pids[0]) && alive(pids[2]), "stop w@1 stops only w@1");
    let o = ctl(&sock, "status", &["w"]);
    g.check(
        o.code != 0,
        &format!("status w non-zero with w@1 stopped:\n{o}"),
    );
    ctl_ok(&g, &sock, "start", &["pool"]);
    pids[1] = g.new_pid_from_file(&pidf(1), pids[1]);
    let starts = [starts[0], stat(pids[1]).unwrap().starttime, starts[2]];
    g.check(
        alive(pids[0]) && alive(pids[2]),
        "start pool leaves running w@0, w@2 alone",
    );

    // 3 -> 5: only @3 and @4 start.
    t.replace_svc("w.toml", &instance_service(&t, 5));
    let p3 = g.pid_from_file(&pidf(3));
    let p4 = g.pid_from_file(&pidf(4));
    g.check(
        env_has(p4, "GOING_INSTANCE=4") && env_has(p4, "GOING_SERVICE=w@4"),
        &format!("w@4 environment: {:?}", environ(p4)),
    );
    std::thread::sleep(ms(500));
    for i in 0..3 {
        let p = pids[i];
        g.check(
            stat(p).map(|s| s.starttime) == Some(starts[i])
                && alive(p)
                && read_pid_file(&pidf(i as u32), ms(0)) == Some(p),
            &format!("w@{i} (pid {p}) untouched when instances went 3 -> 5"),
        );
    }
    let (_, st) = status_text(&g, &sock, &["w"]);
    g.check(st.rows.len() == 5, &format!("5 rows for w:\n{}", st.raw));
    for (i, p) in pids.iter().chain([p3, p4].iter()).enumerate() {
        g.check(
            st.row(&format!("w@{i}")).pid == Some(*p),
            &format!("w@{i} pid {p} in status:\n{}", st.raw),
        );
    }

    // 5 -> 2: @2, @3, @4 stop; @0, @1 stay.
    t.replace_svc("w.toml", &instance_service(&t, 2));
    for p in [pids[2], p3, p4] {
        g.wait_gone(p, secs(5));
    }
    std::thread::sleep(ms(300));
    for i in 0..2 {
        let p = pids[i];
        g.check(
            stat(p).map(|s| s.starttime) == Some(starts[i]) && alive(p),
            &format!("w@{i} (pid {p}) untouched when instances went 5 -> 2"),
        );
    }
    let (o, st) = status_text(&g, &sock, &[]);
    g.check(o.code == 0, &format!("status:\n{o}"));
    let names: Vec<&str> = st.rows.iter().map(|r| r.name.as_str()).collect();
    g.check(
        names == ["w@0", "w@1"] || names == ["w@1", "w@0"],
        &format!("only w@0 and w@1 left, got {names:?}\n{}", st.raw),
    );
    let o = ctl(&sock, "status", &["w@3"]);
    g.check(o.code == 1, &format!("w@3 no longer exists: exit 1\n{o}"));
    let o = ctl(&sock, "status", &["w"]);
    g.check(o.code == 0, &format!("status w exits 0:\n{o}"));
}

// ---------------------------------------------------------------- credentials

#[test]
fn non_root_client_is_refused() {
    require_root!();
    if passwd_entry("nobody").is_none() || !have("runuser") {
        eprintln!("SKIPPED: needs user nobody and runuser");
        return;
    }
    // Declared first: removed after going has gone.
    let run = RunDir::new("nobody");
    let t = TempDir::new("nobody");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    // The socket's directory is 0755 so that nobody can reach the socket.
    let sock = run.0.join("ctl.sock").display().to_string();
    let g = start_on(&t, &sock, None);
    let a = g.pid_from_file(&pa);
    g.check(
        mode(&sock) == 0o600,
        &format!("socket mode {:o}, want 600", mode(&sock)),
    );
    // The temp dir and the copy of the binary are world-readable: nobody
    // runs going.
    let bin = bin_for_others(&t.path);
    let as_nobody = || {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", &bin, "status", "-s", &sock]);
        run_limited(c, secs(10))
    };
    let o = as_nobody();
    g.check(o.code != 0, &format!("nobody is refused (mode 0600):\n{o}"));

    // Past the file mode, the peer credentials check refuses too.
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod socket");
    let o = as_nobody();
    g.check(
        o.code != 0,
        &format!("nobody is refused by SO_PEERCRED with the socket at 0666:\n{o}"),
    );
    g.check(
        !o.stdout.contains("NAME"),
        &format!("no status for nobody:\n{o}"),
    );
    let uid = passwd_entry("nobody").unwrap().0;
    // the line is the contract: going(8) LOGGING
    g.wait_log(
        &format!("refused control connection from uid {uid}"),
        secs(5),
    );
    std::thread::sleep(ms(200));
    g.check(
        g.log_count("refused control connection from uid") == 1,
        "exactly one 'refused control connection' line",
    );
    g.check(alive(a), "a still running");
    let (o, st) = status_text(&g, &sock, &[]);
    g.check(
        o.code == 0 && st.row("a").pid == Some(a),
        &format!("root still served:\n{o}"),
    );
}

// ---------------------------------------------------------------- many clients

#[test]
fn hung_clients_do_not_stall_restarts_or_grow_going() {
    let t = TempDir::new("hung");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    let (g, sock) = start(&t);
    let a = g.pid_from_file(&pa);
    for _ in 0..5 {
        ctl_ok(&g, &sock, "status", &[]);
        ctl_ok(&g, &sock, "status", &["--json"]);
    }
    // The crash loop starts now, so that its first restarts (after 0.1,
    // 0.2, 0.4, 0.8 s of backoff) fall while the clients hang.
    let crash = t.join("crash.pids");
    let script = format!("echo $$ >> {}; exit 0", crash.display());
    t.write_svc(
        "crash.toml",
        &format!("cmd = {}\n", qa(&["/bin/sh", "-c", &script])),
    );
    let starts = || {
        fs::read_to_string(&crash)
            .map(|s| s.lines().filter(|l| !l.is_empty()).count())
            .unwrap_or(0)
    };
    g.wait(secs(5), "crash started", || starts() >= 1);
    let rss_before = vm_rss_kb(g.pid);

    // 50 connections that never write. connect() may block while the
    // backlog is full, so connect from a thread and bound the wait.
    let (tx, rx) = mpsc::channel();
    let s2 = sock.clone();
    std::thread::spawn(move || {
        let v: Vec<std::io::Result<UnixStream>> =
            (0..50).map(|_| UnixStream::connect(&s2)).collect();
        let _ = tx.send(v);
    });
    let opened = Instant::now();
    let conns = match rx.recv_timeout(secs(10)) {
        Ok(v) => v,
        Err(_) => g.fail("50 connects did not finish within 10 s"),
    };
    let n_before = starts();
    let conns: Vec<UnixStream> = conns.into_iter().filter_map(Result::ok).collect();
    g.check(
        conns.len() >= 32,
        &format!("at least 32 of 50 connects succeed, got {}", conns.len()),
    );
    for c in &conns {
        c.set_read_timeout(Some(ms(20))).expect("read timeout");
    }
    // Closed by going: EOF or an error other than a timeout.
    let closed = |c: &UnixStream| {
        let mut b = [0u8; 64];
        match (&*c).read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    };
    let mut is_closed = vec![false; conns.len()];

    // While they hang, the crash loop goes on.
    g.wait(
        secs(4),
        "crash restarted 3 times while 50 clients hang",
        || starts() >= n_before + 3,
    );
    g.check(
        opened.elapsed() < secs(5),
        "restarts seen before going's 5 s deadline",
    );
    g.check(alive(a), "a still running");
    for (i, c) in conns.iter().enumerate() {
        if !is_closed[i] && closed(c) {
            is_closed[i] = true;
        }
    }
    let open_now = is_closed.iter().filter(|c| !**c).count();
    g.check(
        open_now <= 32,
        &format!("at most 32 connections held at once, {open_now} still open"),
    );

    // going closes each hung one after 5 s.
    g.wait(secs(9), "going closes every hung connection", || {
        for (i, c) in conns.iter().enumerate() {
            if !is_closed[i] && closed(c) {
                is_closed[i] = true;
            }
        }
        is_closed.iter().all(|c| *c)
    });
    g.check(
        opened.elapsed() >= secs(4),
        &format!(
            "hung connections closed after about 5 s, not at once ({:?})",
            opened.elapsed()
        ),
    );
    drop(conns);

    // A fresh client is served.
    let (o, st) = status_text(&g, &sock, &[]);
    g.check(o.code == 0, &format!("status after the hung clients:\n{o}"));
    let r = st.row("crash");
    let n = starts() as u64;
    g.check(
        r.restarts + 1 >= n.saturating_sub(1) && r.restarts >= 3,
        &format!(
            "crash restarts {} match its {n} starts:\n{}",
            r.restarts, st.raw
        ),
    );
    g.check(
        st.row("a").pid == Some(a),
        &format!("a untouched:\n{}", st.raw),
    );
    std::thread::sleep(ms(200));
    let rss_after = vm_rss_kb(g.pid);
    g.check(
        rss_after <= rss_before + 64,
        &format!("going's VmRSS {rss_before} kB before, {rss_after} kB after (allowed +64)"),
    );
}

#[test]
fn raw_protocol_and_bad_requests() {
    let t = TempDir::new("proto");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    let (g, sock) = start(&t);
    let a = g.pid_from_file(&pa);
    wait_row(&g, &sock, "a", "running", |r| r.state == "running");

    // Talk to the socket without the going binary.
    let talk = |req: &[u8]| -> String {
        let mut c = UnixStream::connect(&sock).expect("connect");
        c.set_read_timeout(Some(secs(8))).expect("timeout");
        c.write_all(req).expect("write request");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let r = talk(b"status\n");
    let (first, body) = r.split_once('\n').unwrap_or((&r, ""));
    g.check(first == "0", &format!("first line 0:\n{r}"));
    match parse_text(body) {
        Ok(st) => g.check(
            st.row("a").pid == Some(a),
            &format!("raw status names a's pid {a}:\n{r}"),
        ),
        Err(e) => g.fail(&format!("raw status body: {e}\n{r}")),
    }
    let r = talk(b"status a\n");
    g.check(r.starts_with("0\n"), &format!("status a: 0\n{r}"));
    let r = talk(b"status nosuch\n");
    g.check(
        r.starts_with("1\n") && r.contains("nosuch"),
        &format!("status nosuch: 1 and a message\n{r}"),
    );
    let r = talk(b"status --json a\n");
    g.check(r.starts_with("0\n"), &format!("status --json a: 0\n{r}"));
    if let Err(e) = parse_json(r.split_once('\n').map(|x| x.1).unwrap_or("")) {
        g.fail(&format!("raw --json body: {e}\n{r}"));
    }
    let r = talk(b"frobnicate\n");
    g.check(
        !r.starts_with("0\n"),
        &format!("an unknown command is not a success\n{r}"),
    );

    // A request line longer than 4096 bytes is not served; going goes on.
    let t0 = Instant::now();
    let mut big = vec![b'x'; 5000];
    big.push(b'\n');
    let r = talk(&big);
    g.check(
        !r.starts_with("0\n") && t0.elapsed() < secs(7),
        &format!("oversized request refused within the deadline: {r:?}"),
    );
    // A partial request (no newline) is closed by the 5 s deadline.
    let t0 = Instant::now();
    let r = talk(b"status");
    let took = t0.elapsed();
    g.check(
        !r.starts_with("0\n") && took < secs(7),
        &format!("partial request closed after the deadline ({took:?}): {r:?}"),
    );
    ctl_ok(&g, &sock, "status", &["a"]);
    g.check(alive(a), "a still running");
}

#[test]
fn flapping_is_marked() {
    let t = TempDir::new("flap");
    t.write_svc("crash.toml", &exit_service(0, ""));
    t.write_svc("calm.toml", &sleep_service(1301, ""));
    let (g, sock) = start(&t);
    // 5 restarts take 0.1+0.2+0.4+0.8+1.6 s of backoff.
    let r = wait_row(&g, &sock, "crash", "5 restarts", |r| r.restarts >= 5);
    let (_, st) = status_text(&g, &sock, &[]);
    g.check(
        st.row("crash").flapping && !st.row("calm").flapping,
        &format!(
            "crash marked flapping ({} restarts), calm not:\n{}",
            r.restarts, st.raw
        ),
    );
    let (_, j) = status_json(&g, &sock, &[]);
    g.check(
        j.row("crash").flapping && !j.row("calm").flapping,
        &format!("JSON flapping true for crash only:\n{}", j.raw),
    );
}

// ---------------------------------------------------------------- the socket file

#[test]
fn second_going_on_the_same_socket_refuses_to_start() {
    let t = TempDir::new("second");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    let (g, sock) = start(&t);
    let a = g.pid_from_file(&pa);

    let mut g2 = spawn_on(&t, &sock, Some(&t.svc()));
    let st = match g2.wait_exit(secs(5)) {
        Some(st) => st,
        None => g2.fail("a second going on the same socket kept running"),
    };
    g2.check(
        st.code() == Some(1),
        &format!("second going exits 1, got {st:?}"),
    );
    // The second going exited: its log is all there is (the lines are the
    // contract: going(8) LOGGING).
    let err = g2.log();
    g2.check(
        err.contains("another going") && err.contains(&sock),
        "stderr: going: another going is running on DIR (socket PATH)",
    );
    g2.check(
        !err.contains(": starting, pid"),
        "the second going started no service",
    );
    drop(g2);
    std::thread::sleep(ms(200));
    g.check(
        alive(a) && read_pid_file(&pa, ms(0)) == Some(a),
        "a untouched, not duplicated",
    );
    g.check(is_socket(&sock), "the first going's socket is still there");
    let (o, st) = status_text(&g, &sock, &[]);
    g.check(
        o.code == 0 && st.row("a").pid == Some(a),
        &format!("first going still answers:\n{o}"),
    );
}

#[test]
fn stale_socket_file_is_replaced() {
    let t = TempDir::new("stale");
    let sock = sock_path(&t);
    // A socket file nobody listens on any more.
    drop(UnixListener::bind(&sock).expect("bind"));
    assert!(is_socket(&sock), "stale socket file left behind");
    assert!(UnixStream::connect(&sock).is_err(), "nobody listens");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    let mut g = start_on(&t, &sock, None);
    let a = g.pid_from_file(&pa);
    let running = g.is_running();
    g.check(running, "going started over a stale socket");
    g.check(
        mode(&sock) == 0o600,
        &format!("socket mode {:o}, want 600", mode(&sock)),
    );
    let (o, st) = status_text(&g, &sock, &[]);
    g.check(
        o.code == 0 && st.row("a").pid == Some(a),
        &format!("status over the replaced socket:\n{o}"),
    );
}

/// FNV-1a 64.
fn fnv1a64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= c as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Removes a file when dropped (declared before the Going guard, so that
/// it runs after going is gone).
struct RmOnDrop(String);

impl Drop for RmOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn default_socket_path_is_derived_from_dir() {
    require_root!();
    let t = TempDir::new("defsock");
    let pa = t.join("a.pid");
    t.write_svc("a.toml", &pid_service(&pa, ""));
    let dir = fs::canonicalize(t.svc()).expect("canonicalize");
    let path = format!(
        "/run/going-{:016x}.sock",
        fnv1a64(dir.as_os_str().as_encoded_bytes())
    );
    let _rm = RmOnDrop(path.clone());
    let g = Going::start_with(
        &t,
        Opts {
            default_socket: true,
            ..Opts::default()
        },
    );
    g.wait_up();
    let a = g.pid_from_file(&pa);
    g.wait(secs(5), &format!("socket {path}"), || is_socket(&path));
    g.check(
        mode(&path) == 0o600,
        &format!("{path} mode {:o}, want 600", mode(&path)),
    );
    let dir_s = dir.display().to_string();
    let o = to_out(run_going(&["status", "-d", &dir_s]));
    g.check(o.code == 0, &format!("going status -d DIR:\n{o}"));
    match parse_text(&o.stdout) {
        Ok(st) => g.check(
            st.row("a").pid == Some(a),
            &format!("status -d DIR shows a with pid {a}:\n{o}"),
        ),
        Err(e) => g.fail(&format!("status -d DIR: {e}\n{o}")),
    }
    // A relative spelling of the same DIR finds the same socket.
    let mut c = Command::new(BIN);
    c.args(["status", "-d", "./svc/", "a"]).current_dir(&t.path);
    let o = run_limited(c, secs(10));
    g.check(
        o.code == 0 && o.stdout.contains(&a.to_string()),
        &format!("going status -d ./svc/ a (from the temp dir):\n{o}"),
    );
}

// ------------------------------------------------------- clients that wait

/// A Unix listener at `path` that accepts every connection and never
/// answers, holding each connection open until the returned sender is
/// dropped.
fn silent_server(path: &str) -> mpsc::Sender<()> {
    let listener = UnixListener::bind(path).expect("bind the silent server");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Err(mpsc::TryRecvError::Empty) = stopped.try_recv() {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(ms(10)),
            }
        }
    });
    stop
}

#[test]
fn client_gives_up_after_its_timeout() {
    let t = TempDir::new("client-timeout");
    let sock = sock_path(&t);
    let _server = silent_server(&sock);
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["status", "-s", &sock, "-t", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("run going status");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        took >= ms(900) && took < secs(3),
        "going status -t 1 took {took:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn client_is_stopped_by_sigint() {
    use std::os::unix::process::ExitStatusExt;
    let t = TempDir::new("client-sigint");
    let sock = sock_path(&t);
    let _server = silent_server(&sock);
    // Without -t: the default (5s) is longer than the wait for SIGINT.
    let mut child = Command::new(BIN)
        .args(["status", "-s", &sock])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn going status");
    let started = Instant::now();
    std::thread::sleep(secs(1));
    assert!(kill(child.id() as i32, SIGINT), "kill -INT");
    let status = wait_for(secs(8), || child.try_wait().ok().flatten());
    let took = started.elapsed();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("going status outlived SIGINT by 8 s");
    };
    assert_eq!(status.signal(), Some(SIGINT), "ended by {status:?}");
    assert!(took < secs(2), "SIGINT took {took:?} to end going status");
}
