//! `going -- CMD`: the tini-style container-init mode, black box.
//!
//! Most cases run twice: as PID 1 of a new PID namespace (`unshare --pid
//! --fork --mount-proc`, module test `pid1`) and as an ordinary process
//! (module test `plain`). The main commands are small `sh -c` scripts that
//! record what happens to them in files of the test's temp dir; every loop
//! in them is bounded, and every wait in the tests has a deadline.

mod common;
use common::*;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SIGALRM: i32 = 14;
const SIGWINCH: i32 = 28;

/// The signals a user expects going to pass on, with their names.
const FORWARDED: [(i32, &str); 8] = [
    (SIGTERM, "TERM"),
    (SIGINT, "INT"),
    (SIGHUP, "HUP"),
    (SIGQUIT, "QUIT"),
    (SIGUSR1, "USR1"),
    (SIGWINCH, "WINCH"),
    (SIGALRM, "ALRM"),
    // As under tini; the upgrade is then `going upgrade`.
    (SIGUSR2, "USR2"),
];

static N: AtomicUsize = AtomicUsize::new(0);

/// A test run twice: `NAME::pid1` (going as PID 1 of a new PID namespace)
/// and `NAME::plain` (going as an ordinary process).
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn pid1() {
                if super::can_unshare() {
                    super::$name(true);
                }
            }

            #[test]
            fn plain() {
                super::$name(false);
            }
        }
    };
}

/// Only as PID 1.
macro_rules! pid1_only {
    ($name:ident, $body:ident) => {
        #[test]
        fn $name() {
            if can_unshare() {
                $body();
            }
        }
    };
}

// ---------------------------------------------------------------- harness

/// `going -l stderr -d TMP/svc FLAGS -- MAIN...`, under unshare when
/// `pid1`, stdin from /dev/null unless changed.
fn going_cmd(t: &TempDir, pid1: bool, flags: &[&str], main: &[&str]) -> Command {
    let dir = t.svc();
    fs::create_dir_all(&dir).expect("create service dir");
    let mut c = if pid1 {
        let mut c = Command::new("unshare");
        // --kill-child: should unshare die, going (and its namespace) dies.
        c.args(["--pid", "--fork", "--mount-proc", "--kill-child", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    // A socket beside the service directory: nothing is left in /run.
    c.arg("-s")
        .arg(format!("{}.sock", dir.display()))
        .args(["-l", "stderr", "-d"])
        .arg(&dir)
        .args(flags)
        .arg("--")
        .args(main);
    c.stdin(Stdio::null());
    c
}

/// One going with a main command. stdout and stderr go to files of the temp
/// dir. Drop kills whatever is left of it.
struct Init {
    child: Child,
    /// What we spawned: going, or unshare in PID 1 mode.
    spawned: i32,
    /// going's pid as seen from here, once known.
    going: Option<i32>,
    pid1: bool,
    out: PathBuf,
    err: PathBuf,
    exit: Option<ExitStatus>,
    /// Extra processes (pid, start time) to kill on drop if still there.
    tracked: Vec<(i32, u64)>,
}

impl Init {
    fn start(t: &TempDir, pid1: bool, flags: &[&str], main: &[&str]) -> Init {
        Init::spawn(t, pid1, going_cmd(t, pid1, flags, main))
    }

    fn spawn(t: &TempDir, pid1: bool, mut cmd: Command) -> Init {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out = t.join(format!("going-{n}.stdout"));
        let err = t.join(format!("going-{n}.stderr"));
        cmd.stdout(fs::File::create(&out).expect("create stdout file"));
        cmd.stderr(fs::File::create(&err).expect("create stderr file"));
        let child = cmd.spawn().expect("spawn going");
        let spawned = child.id() as i32;
        Init {
            child,
            spawned,
            going: (!pid1).then_some(spawned),
            pid1,
            out,
            err,
            exit: None,
            tracked: Vec::new(),
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "{msg}\n(going {})\n----- going's stderr -----\n{}-----",
            if self.pid1 {
                "as PID 1"
            } else {
                "as a plain process"
            },
            self.stderr()
        );
    }

    fn check(&self, cond: bool, msg: &str) {
        if !cond {
            self.fail(msg);
        }
    }

    fn wait_until(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        if !wait_until(timeout, cond) {
            self.fail(&format!("timed out after {timeout:?} waiting for: {what}"));
        }
    }

    /// going's pid (outer namespace); in PID 1 mode the child of unshare
    /// that is PID 1 of its namespace.
    fn going(&mut self) -> i32 {
        if let Some(p) = self.going {
            return p;
        }
        let spawned = self.spawned;
        let found = wait_for(secs(5), || {
            children(spawned)
                .into_iter()
                .find(|&c| nspid(c).last() == Some(&1))
        });
        match found {
            Some(p) => {
                self.going = Some(p);
                p
            }
            None => self.fail("going did not appear as PID 1 under unshare"),
        }
    }

    /// Map a pid seen inside going's namespace (e.g. `$$` of the main
    /// command) to ours.
    fn outer(&mut self, inner: i32) -> i32 {
        if !self.pid1 {
            return inner;
        }
        let g = self.going();
        let found = wait_for(secs(2), || {
            descendants(g)
                .into_iter()
                .find(|&p| nspid(p).len() >= 2 && nspid(p).last() == Some(&inner))
        });
        found.unwrap_or_else(|| self.fail(&format!("no process with pid {inner} in the namespace")))
    }

    /// Read a pid file written by a process under going; our pid for it.
    fn pid_file(&mut self, path: &Path) -> i32 {
        let inner = read_pid_file(path, secs(5))
            .unwrap_or_else(|| self.fail(&format!("no pid in {} after 5 s", path.display())));
        let p = self.outer(inner);
        self.track(p);
        p
    }

    /// Kill `pid` on drop should it still be the same process.
    fn track(&mut self, pid: i32) {
        if let Some(s) = stat(pid) {
            self.tracked.push((pid, s.starttime));
        }
    }

    fn signal(&mut self, sig: i32) {
        let g = self.going();
        self.check(kill(g, sig), &format!("kill(going {g}, {sig}) failed"));
    }

    /// Wait for going (unshare in PID 1 mode) to exit; fail after `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(st) = self.exit {
            return st;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st);
                return st;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("going did not exit within {timeout:?}"));
            }
            std::thread::sleep(ms(5));
        }
    }

    /// Wait for the exit and return going's exit code; failing if going
    /// (or unshare) was killed by a signal instead.
    fn code(&mut self, timeout: Duration) -> i32 {
        let st = self.wait(timeout);
        match st.code() {
            Some(c) => c,
            None => self.fail(&format!(
                "going died of signal {:?} instead of exiting",
                st.signal()
            )),
        }
    }

    fn expect_code(&mut self, timeout: Duration, want: i32, what: &str) {
        let got = self.code(timeout);
        self.check(
            got == want,
            &format!("{what}: going exited with {got}, expected {want}"),
        );
    }

    fn is_running(&mut self) -> bool {
        self.exit.is_none() && matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let procs: Vec<Stat> = descendants(self.spawned)
                .into_iter()
                .filter_map(stat)
                .collect();
            // As PID 1, killing going ends its namespace.
            for p in &procs {
                if self.pid1 && nspid(p.pid).last() == Some(&1) {
                    kill(p.pid, SIGKILL);
                }
            }
            kill(self.spawned, SIGKILL);
            let _ = self.child.wait();
            for p in &procs {
                if let Some(now) = stat(p.pid)
                    && now.starttime == p.starttime
                    && now.state != 'Z'
                {
                    kill(p.pid, SIGKILL);
                }
            }
        }
        for &(pid, start) in &self.tracked {
            if let Some(now) = stat(pid)
                && now.starttime == start
                && now.state != 'Z'
            {
                if now.pgrp == pid {
                    kill(-pid, SIGKILL);
                }
                kill(pid, SIGKILL);
            }
        }
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The lines of a file (none if it does not exist).
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn has_line(path: &Path, line: &str) -> bool {
    lines(path).iter().any(|l| l == line)
}

/// Shell: poll for `stop` every 50 ms, at most 20 s.
fn until(stop: &Path) -> String {
    format!(
        "i=0; while [ ! -e {} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done",
        p(stop)
    )
}

/// Shell: trap each of `names`, appending the name to `rec`.
fn traps(names: &[&str], rec: &Path) -> String {
    format!(
        "for s in {}; do trap \"echo $s >> {}\" $s; done",
        names.join(" "),
        p(rec)
    )
}

fn touch(path: &Path) {
    fs::write(path, "").expect("touch");
}

// ---------------------------------------------------------------- exit status

fn exit_statuses(pid1: bool) {
    let t = TempDir::new("ct-exit");
    for (script, want, logged) in [
        ("exit 0", 0, "exited with status 0"),
        ("exit 3", 3, "exited with status 3"),
        ("exit 255", 255, "exited with status 255"),
        ("kill -KILL $$", 137, "killed by signal KILL"),
        ("kill -TERM $$", 143, "killed by signal TERM"),
    ] {
        let mut g = Init::start(&t, pid1, &[], &["sh", "-c", script]);
        g.expect_code(secs(10), want, script);
        let log = g.stderr();
        // the line is the contract: going(8) LOGGING
        g.check(
            log.contains(&format!("main command \"sh\" {logged}, pid ")),
            &format!("{script}: no log line \"main command \\\"sh\\\" {logged}, pid N\""),
        );
    }
}
both!(exit_statuses);

fn success_codes(pid1: bool) {
    let t = TempDir::new("ct-e");
    for (flags, script, want) in [
        (&["-e", "143"][..], "kill -TERM $$", 0),
        (&["-e", "143"], "exit 143", 0),
        (&["-e", "143"], "exit 3", 3),
        (&["-e", "3", "-e", "143"], "exit 3", 0),
        (&["-e", "137"], "kill -KILL $$", 0),
        (&["-e", "0"], "exit 1", 1),
    ] {
        let mut g = Init::start(&t, pid1, flags, &["sh", "-c", script]);
        g.expect_code(secs(10), want, &format!("{flags:?} -- sh -c {script:?}"));
    }
}
both!(success_codes);

// ---------------------------------------------------------------- signals

/// Each forwarded signal sent to going reaches the main command, one at a
/// time, and going survives them all and exits with the command's status.
fn signals_reach_main_command(pid1: bool) {
    let t = TempDir::new("ct-sig");
    let (rec, ready, stop) = (t.join("rec"), t.join("ready"), t.join("stop"));
    let names: Vec<&str> = FORWARDED.iter().map(|f| f.1).collect();
    let script = format!(
        "{}; echo $$ > {}; {}; exit 7",
        traps(&names, &rec),
        p(&ready),
        until(&stop)
    );
    // A long grace: TERM and INT start the countdown to SIGKILL.
    let mut g = Init::start(&t, pid1, &["-t", "60s"], &["sh", "-c", &script]);
    let main = g.pid_file(&ready);
    let going = g.going();
    let (ms_, gs) = (stat(main).unwrap(), stat(going).unwrap());
    g.check(
        ms_.pgrp == main,
        &format!("main command is not its own process group leader: {ms_:?}"),
    );
    g.check(
        ms_.session == gs.session,
        &format!("main command {ms_:?} is not in going's session {gs:?}"),
    );
    for (i, &(sig, name)) in FORWARDED.iter().enumerate() {
        g.signal(sig);
        g.wait_until(
            secs(5),
            &format!("SIG{name} recorded by the main command"),
            || lines(&rec).len() > i,
        );
        g.check(
            lines(&rec)[i] == name,
            &format!("record #{i} is {:?}, expected {name}", lines(&rec)),
        );
        let running = g.is_running();
        g.check(running, &format!("going ended after SIG{name}"));
    }
    touch(&stop);
    g.expect_code(secs(10), 7, "after all signals");
    g.check(
        lines(&rec) == names,
        &format!("records {:?}, expected {names:?}", lines(&rec)),
    );
}
both!(signals_reach_main_command);

/// With `-g` a grandchild in the main command's group gets the forwarded
/// signals too; without it, only the main command does.
fn forward_group(pid1: bool, group: bool) {
    let t = TempDir::new("ct-grp");
    let (rec, grec, ready, gpid, stop) = (
        t.join("rec"),
        t.join("grec"),
        t.join("ready"),
        t.join("gpid"),
        t.join("stop"),
    );
    // A background child of a non-interactive shell has INT and QUIT
    // ignored, and cannot trap them: the grandchild records the others.
    let gnames = ["TERM", "HUP", "USR1", "WINCH", "ALRM"];
    let grand = format!(
        "{}; echo $$ > {}; {}",
        traps(&gnames, &grec),
        p(&gpid),
        until(&stop)
    );
    let names: Vec<&str> = FORWARDED.iter().map(|f| f.1).collect();
    let script = format!(
        "{}; sh -c '{grand}' & {}; echo $$ > {}; {}; wait; exit 7",
        traps(&names, &rec),
        // the grandchild's pid file first: its traps are set by then
        format_args!(
            "i=0; while [ ! -s {} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done",
            p(&gpid)
        ),
        p(&ready),
        until(&stop)
    );
    let flags: &[&str] = if group {
        &["-g", "-t", "60s"]
    } else {
        &["-t", "60s"]
    };
    let mut g = Init::start(&t, pid1, flags, &["sh", "-c", &script]);
    let main = g.pid_file(&ready);
    let gc = g.pid_file(&gpid);
    let gs = stat(gc).unwrap();
    g.check(
        gs.ppid == main && gs.pgrp == main,
        &format!("the grandchild {gs:?} is not a child in the group of the main command {main}"),
    );
    for (i, &(sig, name)) in FORWARDED.iter().enumerate() {
        g.signal(sig);
        g.wait_until(
            secs(5),
            &format!("SIG{name} recorded by the main command"),
            || lines(&rec).len() > i,
        );
        if group && gnames.contains(&name) {
            g.wait_until(
                secs(5),
                &format!("SIG{name} recorded by the grandchild (-g)"),
                || has_line(&grec, name),
            );
        }
    }
    if !group {
        // Anything sent to the grandchild would have arrived by now.
        std::thread::sleep(ms(300));
    }
    let got = lines(&grec);
    touch(&stop);
    g.expect_code(secs(10), 7, "after all signals");
    g.check(
        lines(&rec) == names,
        &format!(
            "main command recorded {:?}, expected {names:?}",
            lines(&rec)
        ),
    );
    if group {
        g.check(
            got == gnames,
            &format!("with -g the grandchild recorded {got:?}, expected {gnames:?}"),
        );
    } else {
        g.check(
            got.is_empty(),
            &format!("without -g the grandchild got signals: {got:?}"),
        );
    }
}

fn group_forwarding_reaches_grandchild(pid1: bool) {
    forward_group(pid1, true);
}
both!(group_forwarding_reaches_grandchild);

fn no_group_forwarding_without_g(pid1: bool) {
    forward_group(pid1, false);
}
both!(no_group_forwarding_without_g);

/// SIGTERM to going: the main command gets it first, while the services
/// still run; they are stopped after it exits; going exits with its status.
fn sigterm_goes_to_main_command_first(pid1: bool) {
    let t = TempDir::new("ct-term");
    let (rec, ready, svcpid, stop) = (
        t.join("rec"),
        t.join("ready"),
        t.join("svcpid"),
        t.join("stop"),
    );
    let svc = format!(
        "trap 'echo svc TERM >> {r}; exit 0' TERM; echo $$ > {}; \
         i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        p(&svcpid),
        r = p(&rec)
    );
    t.write_svc(
        "svc.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"5s\"\n",
            qa(&["/bin/sh", "-c", &svc])
        ),
    );
    let script = format!(
        "trap 'if kill -0 $(cat {sp}); then echo main TERM svc-alive >> {r}; \
         else echo main TERM svc-gone >> {r}; fi; sleep 0.3; exit 5' TERM; \
         i=0; while [ ! -s {sp} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
         echo $$ > {}; {}; exit 9",
        p(&ready),
        until(&stop),
        sp = p(&svcpid),
        r = p(&rec)
    );
    let mut g = Init::start(&t, pid1, &["-t", "10s"], &["sh", "-c", &script]);
    g.pid_file(&ready);
    g.pid_file(&svcpid);
    g.signal(SIGTERM);
    g.expect_code(secs(8), 5, "SIGTERM to going");
    let got = lines(&rec);
    g.check(
        got == ["main TERM svc-alive", "svc TERM"],
        &format!(
            "records {got:?}, expected the main command's TERM (services still running) \
             then the service's"
        ),
    );
}
both!(sigterm_goes_to_main_command_first);

/// A main command that ignores SIGTERM is killed (KILL) once the grace
/// period (-t) after the forwarded TERM is over; going exits 137.
fn ignored_term_killed_after_grace(pid1: bool) {
    let t = TempDir::new("ct-grace");
    let ready = t.join("ready");
    let script = format!(
        "trap '' TERM; echo $$ > {}; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 0",
        p(&ready)
    );
    let mut g = Init::start(&t, pid1, &["-t", "1s"], &["sh", "-c", &script]);
    let main = g.pid_file(&ready);
    let t0 = Instant::now();
    g.signal(SIGTERM);
    g.expect_code(secs(10), 137, "main command ignoring TERM, -t 1s");
    let took = t0.elapsed();
    g.check(
        took >= ms(900) && took < secs(4),
        &format!("going exited {took:?} after SIGTERM; expected about 1 s (-t 1s)"),
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.stderr().contains("main command did not exit within 1"),
        "no log line about the grace period",
    );
    g.check(!alive(main), "the main command survived");
}
both!(ignored_term_killed_after_grace);

/// Without -t the grace period is 5 s: above 1 s, below Docker's 10 s.
#[test]
fn default_grace_is_below_docker_stop_timeout() {
    let t = TempDir::new("ct-grace5");
    let ready = t.join("ready");
    let script = format!(
        "trap '' TERM; echo $$ > {}; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 0",
        p(&ready)
    );
    let mut g = Init::start(&t, false, &[], &["sh", "-c", &script]);
    g.pid_file(&ready);
    let t0 = Instant::now();
    g.signal(SIGTERM);
    g.expect_code(secs(15), 137, "main command ignoring TERM, default grace");
    let took = t0.elapsed();
    g.check(
        took >= secs(4) && took < ms(9500),
        &format!("default grace: going exited {took:?} after SIGTERM, expected 5 s"),
    );
}

// ---------------------------------------------------------------- reaping

/// Orphans of the main command (double-forked) are reaped by going: as
/// PID 1 the kernel hands them to it, as a plain process it is a subreaper.
fn orphans_reaped(pid1: bool) {
    let t = TempDir::new("ct-orph");
    let (made, stop) = (t.join("made"), t.join("stop"));
    let script = format!(
        "i=0; while [ $i -lt 20 ]; do (sleep 0.3 &); i=$((i+1)); done; echo $$ > {}; {}; exit 0",
        p(&made),
        until(&stop)
    );
    let mut g = Init::start(&t, pid1, &[], &["sh", "-c", &script]);
    let going = g.going();
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + secs(5);
    while !made.exists() || seen.is_empty() {
        g.check(
            Instant::now() < deadline,
            "no orphan seen as a child of going",
        );
        for c in children(going) {
            if cmdline(c) == ["sleep", "0.3"] {
                seen.insert(c);
                g.track(c);
            }
        }
        std::thread::sleep(ms(5));
    }
    let main = g.pid_file(&made);
    g.wait_until(
        secs(3),
        "every orphan reaped: no zombie, only the main command and its sleep left",
        || {
            descendants(going).iter().all(|&d| {
                let s = stat(d);
                s.as_ref().is_some_and(|s| s.state != 'Z')
                    && (d == main || s.is_some_and(|s| s.ppid == main))
            })
        },
    );
    for o in &seen {
        g.check(stat(*o).is_none(), &format!("orphan {o} not reaped"));
    }
    touch(&stop);
    g.expect_code(secs(5), 0, "orphan maker");
}
both!(orphans_reaped);

/// As PID 1: 10,000 orphaned zombies in a burst; one second after the
/// burst, none is left in the namespace (counted from inside, in the
/// namespace's own /proc), and the zombie count stays bounded meanwhile.
fn burst_of_10000_orphans() {
    let t = TempDir::new("ct-burst");
    let (end, zc) = (t.join("burst-end"), t.join("zombies"));
    // 1000 subshells, each leaving 10 orphans that exit at once.
    let script = format!(
        "i=0; while [ $i -lt 1000 ]; do ( : & : & : & : & : & : & : & : & : & : & ); i=$((i+1)); done; \
         echo end > {}; sleep 1; \
         z=0; n=0; for f in /proc/[0-9]*/stat; do \
           {{ read -r l < \"$f\"; }} 2>/dev/null || continue; set -- $l; n=$((n+1)); \
           [ \"$3\" = Z ] && z=$((z+1)); done; \
         echo \"$z $n\" > {}",
        p(&end),
        p(&zc)
    );
    let t0 = Instant::now();
    let mut g = Init::start(&t, true, &[], &["sh", "-c", &script]);
    let going = g.going();
    // Watch the zombies among going's children during the burst.
    let mut max_zombies = 0;
    let mut orphans = 0;
    while g.is_running() && !end.exists() {
        g.check(t0.elapsed() < secs(50), "the burst did not end within 50 s");
        let kids = children(going);
        orphans = orphans.max(kids.len());
        let z = kids
            .iter()
            .filter(|&&c| stat(c).is_some_and(|s| s.state == 'Z'))
            .count();
        max_zombies = max_zombies.max(z);
        std::thread::sleep(ms(20));
    }
    g.expect_code(secs(55).saturating_sub(t0.elapsed()), 0, "orphan burst");
    let took = t0.elapsed();
    let got = fs::read_to_string(&zc).unwrap_or_default();
    let mut f = got.split_whitespace().map(|x| x.parse::<usize>().ok());
    let (z, n) = (f.next().flatten(), f.next().flatten());
    g.check(
        z == Some(0),
        &format!("one second after the burst, zombies/processes in the namespace: {got:?}"),
    );
    // going, the main command, at most a few of its helpers.
    g.check(
        n.is_some_and(|n| (2..=4).contains(&n)),
        &format!("processes left in the namespace: {got:?}"),
    );
    g.check(
        orphans >= 2,
        "no orphan ever seen as a child of going (is the burst working?)",
    );
    g.check(
        max_zombies < 1000,
        &format!("{max_zombies} zombies at once among going's children during the burst"),
    );
    g.check(took < secs(60), &format!("the burst test took {took:?}"));
    eprintln!("burst: {took:?}, at most {max_zombies} zombies at once");
}
pid1_only!(pid1_reaps_burst_of_10000_orphans, burst_of_10000_orphans);

// ---------------------------------------------------------------- final sweep

/// After the main command exits, a process it left behind gets SIGTERM
/// (as PID 1 with the rest of the namespace, as a subreaper with the rest
/// of going's descendants), and going waits for it (well within the grace
/// period) before exiting with the main command's status.
fn sweep_waits_for_leftovers(pid1: bool) {
    let t = TempDir::new("ct-sweep");
    let (rec, lpid) = (t.join("rec"), t.join("lpid"));
    let left = format!(
        "trap \"sleep 0.5; echo done >> {}; exit 0\" TERM; echo $$ > {}; \
         i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        p(&rec),
        p(&lpid)
    );
    let script = format!(
        "sh -c '{left}' & i=0; while [ ! -s {} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 6",
        p(&lpid)
    );
    let t0 = Instant::now();
    let mut g = Init::start(&t, pid1, &["-t", "5s"], &["sh", "-c", &script]);
    g.expect_code(secs(10), 6, "main command leaving a process behind");
    let took = t0.elapsed();
    g.check(
        lines(&rec) == ["done"],
        &format!(
            "the leftover did not finish its TERM handler before going exited: {:?}",
            lines(&rec)
        ),
    );
    g.check(
        took < secs(4),
        &format!("going took {took:?}: it should exit once the namespace is empty, not after the 5 s grace"),
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.stderr().contains("sending TERM to every process left"),
        "no log line about the final sweep",
    );
}
both!(sweep_waits_for_leftovers);

/// A leftover that ignores SIGTERM is killed after the grace, and so is
/// its own child (a grandchild of the main command).
fn sweep_kills_stubborn_leftovers(pid1: bool) {
    let t = TempDir::new("ct-sweepk");
    let (lpid, kpid) = (t.join("lpid"), t.join("kpid"));
    let left = format!(
        "trap \"\" TERM; sleep 1000 & echo $! > {}; echo $$ > {}; \
         i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        p(&kpid),
        p(&lpid)
    );
    let script = format!(
        "sh -c '{left}' & i=0; while [ ! -s {} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 6",
        p(&lpid)
    );
    let t0 = Instant::now();
    let mut g = Init::start(&t, pid1, &["-t", "1s"], &["sh", "-c", &script]);
    let (left, kid) = (g.pid_file(&lpid), g.pid_file(&kpid));
    g.expect_code(secs(10), 6, "main command leaving a TERM-ignoring process");
    g.check(
        !alive(left) && !alive(kid),
        &format!(
            "left behind: {left} alive {}, {kid} alive {}",
            alive(left),
            alive(kid)
        ),
    );
    let took = t0.elapsed();
    g.check(
        took >= ms(900) && took < secs(5),
        &format!("going took {took:?}, expected about the 1 s grace"),
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.stderr().contains("sending KILL to all"),
        "no log line about the KILL sweep",
    );
}
both!(sweep_kills_stubborn_leftovers);

// ---------------------------------------------------------------- services

/// Services of DIR run while the main command runs, and are stopped (with
/// their stop-signal) after it exits and before going exits.
fn services_run_beside_main_command(pid1: bool) {
    let t = TempDir::new("ct-svc");
    let (pidf, svcrec, rec) = (t.join("svcpid"), t.join("svcrec"), t.join("rec"));
    let svc = format!(
        "trap 'echo USR1 >> {}; exit 0' USR1; echo $$ > {}; \
         i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        p(&svcrec),
        p(&pidf)
    );
    t.write_svc(
        "svc.toml",
        &format!(
            "cmd = {}\nstop-signal = \"USR1\"\nstop-timeout = \"5s\"\n",
            qa(&["/bin/sh", "-c", &svc])
        ),
    );
    let script = format!(
        "i=0; while [ ! -s {f} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
         sp=$(cat {f}); if kill -0 \"$sp\"; then echo \"alive $sp\" > {r}; \
         else echo \"dead $sp\" > {r}; fi; exit 4",
        f = p(&pidf),
        r = p(&rec)
    );
    let mut g = Init::start(&t, pid1, &[], &["sh", "-c", &script]);
    // Learn the service's pid while it runs, for the checks and cleanup.
    let svc_pid = if pid1 { None } else { Some(g.pid_file(&pidf)) };
    g.expect_code(secs(10), 4, "main command beside a service");
    let got = lines(&rec);
    let inner = read_pid_file(&pidf, ms(0));
    g.check(
        inner.is_some() && got == [format!("alive {}", inner.unwrap())],
        &format!("the main command saw the service as {got:?} (pid file {inner:?})"),
    );
    g.check(
        lines(&svcrec) == ["USR1"],
        &format!(
            "the service was not stopped with its stop-signal: {:?}",
            lines(&svcrec)
        ),
    );
    if let Some(sp) = svc_pid {
        g.check(!alive(sp), "the service outlived going");
    }
    // going has exited, so no status to ask: the order of its lines is the
    // contract of going(8) LOGGING and SHUTDOWN.
    let log = g.stderr();
    let at = |pat: &str| {
        log.find(pat)
            .unwrap_or_else(|| g.fail(&format!("no log line containing {pat:?}")))
    };
    let ended = at("main command \"sh\" exited with status 4");
    let stopping = at(" svc: stopping, pid ");
    let stopped = at(" svc: stopped, pid ");
    let exiting = at("all services stopped, exiting");
    // Whether "svc: running" is logged before the main command's end is
    // up to the scheduler (both can be read in one wake-up): the service
    // ran, as the main command saw; the order that matters is the stop's.
    g.check(
        at(" svc: starting, pid ") < ended
            && ended < stopping
            && stopping < stopped
            && stopped < exiting,
        "log order: svc starting, main command exited, svc stopping, svc stopped, exiting",
    );
}
both!(services_run_beside_main_command);

// ---------------------------------------------------------------- exec failures

fn exec_failures(pid1: bool) {
    let t = TempDir::new("ct-exec");
    let noexec = t.join("noexec.sh");
    fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    let noexec_s = p(&noexec);
    for (prog, want) in [
        ("nope", 127),
        ("/nonexistent/nope", 127),
        ("/etc/passwd", 126),
        (noexec_s.as_str(), 126),
        ("/tmp", 126),
    ] {
        let mut g = Init::start(&t, pid1, &[], &[prog, "arg"]);
        g.expect_code(secs(10), want, &format!("going -- {prog}"));
        // the line is the contract: going(8) LOGGING
        let log = g.stderr();
        let pat = format!("cannot run \"{prog}\"");
        let n = log.lines().filter(|l| l.contains(&pat)).count();
        g.check(
            n == 1,
            &format!("{n} stderr lines contain {pat:?}, expected exactly one"),
        );
    }
}
both!(exec_failures);

// ---------------------------------------------------------------- stdio, env

/// stdin passes through to the main command, and its stdout is going's.
fn stdin_passes_through(pid1: bool) {
    let t = TempDir::new("ct-stdin");
    let mut cmd = going_cmd(
        &t,
        pid1,
        &[],
        &[
            "sh",
            "-c",
            "read -r first; echo \"first:$first\"; cat; exit 2",
        ],
    );
    cmd.stdin(Stdio::piped());
    let mut g = Init::spawn(&t, pid1, cmd);
    {
        let mut stdin = g.child.stdin.take().expect("stdin pipe");
        stdin
            .write_all(b"one line\ntwo\nthree\n")
            .expect("write to going's stdin");
        // dropped: EOF for cat
    }
    g.expect_code(secs(10), 2, "read and cat");
    let out = g.stdout();
    g.check(
        out == "first:one line\ntwo\nthree\n",
        &format!("the main command's stdout was {out:?}"),
    );
}
both!(stdin_passes_through);

/// The main command gets going's environment and working directory.
fn environment_and_cwd_pass_through(pid1: bool) {
    let t = TempDir::new("ct-env");
    let mut cmd = going_cmd(
        &t,
        pid1,
        &[],
        &["sh", "-c", "echo \"$GOING_CT_VAR|$(pwd)\""],
    );
    cmd.env("GOING_CT_VAR", "a value").current_dir(&t.path);
    let mut g = Init::spawn(&t, pid1, cmd);
    g.expect_code(secs(10), 0, "env and cwd");
    let out = g.stdout();
    let want = format!("a value|{}\n", t.path.display());
    g.check(out == want, &format!("stdout {out:?}, expected {want:?}"));
}
both!(environment_and_cwd_pass_through);

// ---------------------------------------------------------------- terminal

unsafe extern "C" {
    fn posix_openpt(flags: i32) -> i32;
    fn grantpt(fd: i32) -> i32;
    fn unlockpt(fd: i32) -> i32;
    fn ptsname_r(fd: i32, buf: *mut std::ffi::c_char, len: usize) -> i32;
    fn setsid() -> i32;
    fn ioctl(fd: i32, request: std::ffi::c_ulong, ...) -> i32;
}

const O_RDWR: i32 = 2;
const O_NOCTTY: i32 = 0o400;
const TIOCSCTTY: std::ffi::c_ulong = 0x540E;

/// A new pseudo-terminal: (master, slave).
fn open_pty() -> (fs::File, fs::File) {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: plain calls on a descriptor we own; buf outlives ptsname_r.
    unsafe {
        let m = posix_openpt(O_RDWR | O_NOCTTY);
        assert!(m >= 0, "posix_openpt failed");
        let master = fs::File::from_raw_fd(m);
        assert_eq!(grantpt(m), 0, "grantpt");
        assert_eq!(unlockpt(m), 0, "unlockpt");
        let mut buf = [0 as std::ffi::c_char; 128];
        assert_eq!(ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0, "ptsname_r");
        let name = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned();
        let slave = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOCTTY)
            .open(&name)
            .unwrap_or_else(|e| panic!("open {name}: {e}"));
        (master, slave)
    }
}

/// going (or unshare) in a new session whose controlling terminal is a new
/// pty, stdin on it (stdout and stderr stay files). Returns the master.
fn start_on_pty(t: &TempDir, pid1: bool, flags: &[&str], main: &[&str]) -> (Init, fs::File) {
    let (master, slave) = open_pty();
    let mut cmd = going_cmd(t, pid1, flags, main);
    cmd.stdin(Stdio::from(slave));
    // SAFETY: only system calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let g = Init::spawn(t, pid1, cmd);
    // Echoes must never fill the pty and block anyone: drain the master.
    let mut reader = master.try_clone().expect("dup master");
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    (g, master)
}

/// Field 8 of /proc/PID/stat: the terminal's foreground process group.
fn tpgid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(5)?.parse().ok()
}

/// Ctrl-C typed on the terminal reaches the main command (the foreground
/// group) and not going: had going got SIGINT it would forward it and kill
/// the command after the 1 s grace.
fn ctrl_c_reaches_main_command(pid1: bool) {
    let t = TempDir::new("ct-pty");
    let (rec, ready, stop) = (t.join("rec"), t.join("ready"), t.join("stop"));
    let script = format!(
        "{}; echo $$ > {}; {}; exit 7",
        traps(&["INT"], &rec),
        p(&ready),
        until(&stop)
    );
    let (mut g, mut master) = start_on_pty(&t, pid1, &["-t", "1s"], &["sh", "-c", &script]);
    let main = g.pid_file(&ready);
    let going = g.going();
    g.wait_until(
        secs(3),
        "the main command's group in the terminal's foreground",
        || tpgid(going) == Some(main) && tpgid(main) == Some(main),
    );
    master.write_all(b"\x03").expect("write ^C");
    g.wait_until(secs(3), "SIGINT recorded by the main command", || {
        has_line(&rec, "INT")
    });
    // Longer than the grace period: a SIGINT to going would be fatal now.
    std::thread::sleep(ms(1500));
    g.check(
        alive(main),
        "the main command was killed after ^C: going got SIGINT too",
    );
    g.check(
        lines(&rec) == ["INT"],
        &format!("records {:?}, expected one INT", lines(&rec)),
    );
    touch(&stop);
    g.expect_code(secs(10), 7, "after ^C");
    // the line is the contract: going(8) LOGGING
    g.check(
        !g.stderr().contains("sending KILL"),
        "going escalated after ^C",
    );
}
both!(ctrl_c_reaches_main_command);

/// Ctrl-Z stops the main command, never going; SIGCONT sent to going is
/// forwarded and resumes it.
fn ctrl_z_does_not_stop_going(pid1: bool) {
    let t = TempDir::new("ct-tstp");
    let ready = t.join("ready");
    let script = format!("echo $$ > {}; exec sleep 30", p(&ready));
    let (mut g, mut master) = start_on_pty(&t, pid1, &["-t", "2s"], &["sh", "-c", &script]);
    let main = g.pid_file(&ready);
    let going = g.going();
    g.wait_until(secs(3), "the main command runs sleep", || {
        cmdline(main) == ["sleep", "30"] && tpgid(main) == Some(main)
    });
    master.write_all(b"\x1a").expect("write ^Z");
    g.wait_until(secs(3), "the main command stopped by ^Z", || {
        stat(main).is_some_and(|s| s.state == 'T')
    });
    std::thread::sleep(ms(300));
    let gs = stat(going).unwrap();
    g.check(gs.state != 'T', &format!("going is stopped: {gs:?}"));
    g.signal(SIGCONT);
    g.wait_until(secs(3), "the main command resumed by SIGCONT", || {
        stat(main).is_some_and(|s| s.state != 'T')
    });
    g.signal(SIGTERM);
    g.expect_code(secs(5), 143, "TERM after ^Z and CONT");
}
both!(ctrl_z_does_not_stop_going);

// ---------------------------------------------------------------- upgrade

/// With a main command, SIGUSR2 is the main command's (see FORWARDED);
/// the in-place upgrade is `going upgrade`: going execs itself, keeps its
/// pid, the main command and the services, answers again, and still exits
/// with the main command's status.
fn upgrade_on_the_control_socket(pid1: bool) {
    let t = TempDir::new("ct-upgrade");
    let (ready, stop) = (t.join("ready"), t.join("stop"));
    t.write_svc("svc.toml", &sleep_service(7161, ""));
    let script = format!("echo $$ > {}; {}; exit 5", p(&ready), until(&stop));
    let mut g = Init::start(&t, pid1, &[], &["sh", "-c", &script]);
    let main = g.pid_file(&ready);
    let going = g.going();
    let sock = format!("{}.sock", t.svc().display());
    let svc_pid = || -> Option<i32> {
        children(going)
            .into_iter()
            .find(|&c| cmdline(c) == ["/bin/sleep", "7161"])
    };
    let svc = wait_for(secs(5), svc_pid).unwrap_or_else(|| g.fail("svc did not start"));
    let before = g.stderr().matches("going 1.0.0 started").count();
    let out = run_going(&["upgrade", "-s", &sock]);
    g.check(
        out.status.code() == Some(0),
        &format!(
            "going upgrade: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    g.wait_until(secs(5), "going started again by the upgrade", || {
        g.stderr().matches("going 1.0.0 started").count() > before
    });
    g.wait_until(secs(5), "going answering after the upgrade", || {
        run_going(&["status", "-s", &sock]).status.success()
    });
    let running = g.is_running();
    g.check(
        running && alive(going) && stat(main).map(|s| s.ppid) == Some(going),
        "the main command is still going's child after the upgrade",
    );
    g.check(
        svc_pid() == Some(svc),
        "the service kept running across the upgrade",
    );
    touch(&stop);
    g.expect_code(secs(10), 5, "the main command's status after an upgrade");
}
both!(upgrade_on_the_control_socket);

/// Without a main command `going upgrade` does what SIGUSR2 does.
#[test]
fn upgrade_without_main_command() {
    let t = TempDir::new("upgrade-nomain");
    t.write_svc("a.toml", &sleep_service(7171, ""));
    let g = Going::start(&t);
    let a = g.wait_running("a");
    let before = g.log_count("going 1.0.0 started");
    let out = run_going(&["upgrade", "-s", &t.s("going.sock")]);
    g.check(out.status.success(), "going upgrade exits 0");
    g.wait_log_count("going 1.0.0 started", before + 1, secs(5));
    g.wait_log(&format!(" a: adopted, pid {a}, running for "), secs(5));
    g.check(
        stat(a).map(|s| s.ppid) == Some(g.pid),
        "after the upgrade, a is still going's child",
    );
}

/// With a main command the directory is watched only after a moment (its
/// watch would cost `going -- /bin/true` more than the rest of its run):
/// a file written at once, before the watch, and one written later both
/// start.
fn directory_followed_beside_main_command(pid1: bool) {
    let t = TempDir::new("ct-watch");
    let stop = t.join("stop");
    let mut g = Init::start(&t, pid1, &[], &["sh", "-c", &until(&stop)]);
    t.write_svc("early.toml", &sleep_service(7181, ""));
    let going = g.going();
    let running = |tag: &str| {
        let want = ["/bin/sleep".to_string(), tag.to_string()];
        children(going).into_iter().any(|c| cmdline(c) == want)
    };
    g.wait_until(secs(5), "early started", || running("7181"));
    t.write_svc("late.toml", &sleep_service(7182, ""));
    g.wait_until(secs(5), "late started", || running("7182"));
    touch(&stop);
    g.expect_code(secs(10), 0, "main command");
}
both!(directory_followed_beside_main_command);
