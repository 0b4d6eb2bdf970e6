//! Life of a service: start, restart, backoff, restart policies, start
//! failures, orphans.

mod common;
use common::*;
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn starts_services_and_logs() {
    let t = TempDir::new("start");
    let pidf = t.join("pid");
    t.write_svc("a.toml", &pid_service(&pidf, ""));
    t.write_svc("b.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    g.wait_started();
    let a = g.pid_from_file(&pidf);
    assert_eq!(g.wait_running("a"), a, "status names the service's pid");
    g.wait_running("b");
    // This test is about the log itself: the lines are the contract:
    // going(8) LOGGING.
    let log = g.log();
    assert!(
        log.contains(&format!(" a: running, pid {a}")),
        "log 'a: running, pid N' names the service's pid:\n{log}"
    );
    assert!(
        log.contains(&format!(" a: starting, pid {a}")),
        "starting line:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "going: going 1.0.0 started, pid {}, directory {}",
            g.pid,
            t.svc().display()
        )),
        "started line:\n{log}"
    );
    // Log line format: TIMESTAMP LEVEL TAG: MESSAGE.
    for line in log.lines() {
        let mut it = line.splitn(3, ' ');
        let ts = it.next().unwrap_or("");
        let level = it.next().unwrap_or("");
        assert!(
            ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "timestamp of {line:?}"
        );
        assert!(
            ["error", "warn", "info"].contains(&level),
            "level of {line:?}"
        );
    }
}

#[test]
fn restarts_after_exit() {
    let t = TempDir::new("restart");
    let pidf = t.join("pid");
    let script = format!("echo $$ > {}; sleep 0.3; exit 3", pidf.display());
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let g = Going::start(&t);
    let first = g.pid_from_file(&pidf);
    let second = g.new_pid_from_file(&pidf, first);
    assert_ne!(first, second);
    g.check(!alive(first), "first instance still alive");
    g.wait_svc("a", "exit 3 recorded, one restart", secs(3), |s| {
        s.last_exit.as_deref() == Some("exit 3") && s.restarts >= 1
    });
    // The wording of durations is the contract: going(8) LOGGING.
    // "after 0.3s" normally; a loaded machine may take a little longer.
    let tail = format!(", pid {first}, restart in 50ms");
    g.wait(
        secs(3),
        "a: exited with status 3 after 0.3s, pid N, restart in 50ms",
        || {
            g.log()
                .lines()
                .any(|l| l.contains(" warn a: exited with status 3 after 0.") && l.ends_with(&tail))
        },
    );
}

#[test]
fn restart_after_kill_of_a_service() {
    let t = TempDir::new("killed");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let p1 = g.wait_running("a");
    kill(p1, SIGKILL);
    let p2 = g.wait_new_pid("a", p1);
    g.check(p2 != p1, "new pid");
    g.wait_svc("a", "killed by KILL, restarted", secs(3), |s| {
        s.last_exit.as_deref() == Some("signal KILL") && s.restarts == 1
    });
    // Every process id is written `pid N`: the contract of going(8) LOGGING.
    let line = g
        .log()
        .lines()
        .find(|l| l.contains(" a: killed by signal KILL"))
        .unwrap_or("")
        .to_string();
    g.check(
        line.contains(&format!("pid {p1}")),
        &format!("killed line names the pid: {line}"),
    );
}

#[test]
fn long_run_restarts_at_once() {
    // A run of >= 5 s is not a short run: the restart is immediate.
    let t = TempDir::new("longrun");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let p1 = g.wait_running("a");
    std::thread::sleep(ms(5200));
    let t0 = Instant::now();
    kill(p1, SIGKILL);
    let p2 = g.wait_new_pid("a", p1);
    let took = t0.elapsed();
    g.check(
        took < ms(500),
        &format!("restart after a long run took {took:?} (expected at once)"),
    );
    g.wait_svc("a", "killed by KILL, restarted once", secs(2), |s| {
        s.last_exit.as_deref() == Some("signal KILL") && s.restarts == 1
    });
    // the line is the contract: going(8) LOGGING
    g.wait_log(" a: killed by signal KILL after 5.", secs(2));
    g.check(
        g.log_has(&format!("pid {p1}, restarting")),
        "'restarting' after a long run",
    );
    g.check(alive(p2), "new instance alive");
}

#[test]
fn crash_loop_backoff_follows_schedule() {
    let t = TempDir::new("backoff");
    // Each start stamps its wall-clock time, in seconds.
    let starts = t.join("starts");
    let script = format!("date +%s.%N >> {}; exit 1", starts.display());
    t.write_svc(
        "f.toml",
        &format!("cmd = {}\n", qa(&["/bin/sh", "-c", &script])),
    );
    let g = Going::start(&t);
    let stamps = || -> Vec<f64> {
        let s = fs::read_to_string(&starts).unwrap_or_default();
        let complete = &s[..s.rfind('\n').map_or(0, |i| i + 1)];
        complete.lines().filter_map(|l| l.parse().ok()).collect()
    };
    wait_until(secs(8), || stamps().len() >= 6);
    let seen = stamps();
    g.check(
        seen.len() >= 6,
        &format!("only {} starts of /bin/false in 8 s", seen.len()),
    );
    // Schedule: 0.05, 0.1, 0.2, 0.4, 0.8 s between consecutive starts.
    let expect = [50u64, 100, 200, 400, 800];
    for (i, want) in expect.iter().enumerate() {
        let gap = Duration::from_secs_f64(seen[i + 1] - seen[i]);
        g.check(
            gap >= ms(want - 40) && gap <= ms(want + 350),
            &format!(
                "gap between start {} and {} was {gap:?}, expected {want} ms (+ run time)",
                i + 1,
                i + 2
            ),
        );
    }
    g.wait_svc("f", "exit 1 recorded", secs(1), |s| {
        s.last_exit.as_deref() == Some("exit 1")
    });
    // The wording of the delays is the contract: going(8) LOGGING.
    for d in ["50ms", "0.1s", "0.2s", "0.4s", "0.8s"] {
        g.check(
            g.log_has(&format!(", restart in {d}")) && g.log_has(" f: exited with status 1 after "),
            &format!("log line 'exited with status 1 after ..., restart in {d}'"),
        );
    }
    // Bounded: the next start is 1.6 s later, not sooner.
    std::thread::sleep(ms(1200));
    let n = stamps().len();
    g.check(
        n <= 6,
        &format!("{n} starts: the 7th came less than 1.2 s after the 6th"),
    );
    g.check(alive(g.pid), "going died");
}

#[test]
fn restart_never() {
    let t = TempDir::new("never");
    let count = t.join("count");
    let script = format!("echo x >> {}; exit 0", count.display());
    let script1 = format!("echo x >> {}.1; exit 1", count.display());
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nrestart = \"never\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    t.write_svc(
        "b.toml",
        &format!(
            "cmd = {}\nrestart = \"never\"\n",
            qa(&["/bin/sh", "-c", &script1])
        ),
    );
    let g = Going::start(&t);
    for (name, exit) in [("a", "exit 0"), ("b", "exit 1")] {
        g.wait_svc(name, exit, secs(5), |s| {
            s.state == "exited" && s.last_exit.as_deref() == Some(exit)
        });
    }
    std::thread::sleep(ms(600)); // several backoff periods
    assert_eq!(
        fs::read_to_string(&count).unwrap_or_default(),
        "x\n",
        "a ran once"
    );
    assert_eq!(
        fs::read_to_string(t.join("count.1")).unwrap_or_default(),
        "x\n",
        "b ran once"
    );
    for name in ["a", "b"] {
        let s = g.svc(name);
        g.check(
            s.as_ref()
                .is_some_and(|s| s.state == "exited" && s.restarts == 0),
            &format!("{name} started once: {s:?}"),
        );
    }
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_count("not restarted (restart = never)") == 2,
        "two 'not restarted' lines",
    );
}

#[test]
fn restart_on_failure() {
    let t = TempDir::new("onfail");
    let ok = t.join("ok");
    let bad = t.join("bad");
    let s_ok = format!("echo x >> {}; exit 0", ok.display());
    let s_bad = format!("echo x >> {}; exit 2", bad.display());
    t.write_svc(
        "ok.toml",
        &format!(
            "cmd = {}\nrestart = \"on-failure\"\n",
            qa(&["/bin/sh", "-c", &s_ok])
        ),
    );
    t.write_svc(
        "bad.toml",
        &format!(
            "cmd = {}\nrestart = \"on-failure\"\n",
            qa(&["/bin/sh", "-c", &s_bad])
        ),
    );
    let g = Going::start(&t);
    g.wait(secs(5), "bad restarted (3 runs)", || {
        fs::read_to_string(&bad).unwrap_or_default().len() >= 6
    });
    g.wait_svc("ok", "exited with status 0", secs(3), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 0")
    });
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_has("not restarted (restart = on-failure)"),
        "'not restarted (restart = on-failure)'",
    );
    std::thread::sleep(ms(400));
    assert_eq!(
        fs::read_to_string(&ok).unwrap_or_default(),
        "x\n",
        "ok ran once"
    );
}

#[test]
fn restart_on_failure_restarts_after_signal() {
    let t = TempDir::new("onfailsig");
    t.write_svc("a.toml", &sleep_service(1001, "restart = \"on-failure\""));
    let g = Going::start(&t);
    let p1 = g.wait_running("a");
    kill(p1, SIGTERM);
    let p2 = g.wait_new_pid("a", p1);
    g.check(alive(p2), "restarted after being killed by a signal");
}

#[test]
fn start_failures_are_logged_and_backed_off() {
    let t = TempDir::new("execfail");
    let noexec = t.join("noexec");
    fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    t.write_svc("missing.toml", "cmd = \"/nonexistent/prog\"\n");
    t.write_svc("inpath.toml", "cmd = \"no-such-program-going-test\"\n");
    t.write_svc(
        "noexec.toml",
        &format!("cmd = {}\n", q(&noexec.display().to_string())),
    );
    t.write_svc(
        "baddir.toml",
        "cmd = \"/bin/true\"\ndir = \"/nonexistent-dir-going\"\n",
    );
    t.write_svc(
        "baduser.toml",
        "cmd = \"/bin/true\"\nuser = \"no-such-user-going\"\n",
    );
    t.write_svc("good.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let good = g.wait_running("good");
    // The reason names the failing step (the documented diagnostic: the
    // lines are the contract: going(8) LOGGING) and the path; the errno text follows
    // (DECISIONS.md: `exec "nope": ENOENT: No such file or directory`).
    let has = |name: &str, reason: &str, err: &str| {
        g.log().lines().any(|l| {
            l.contains(&format!(" error {name}: cannot start: {reason}")) && l.contains(err)
        })
    };
    g.wait(secs(5), "missing: exec ENOENT", || {
        has(
            "missing",
            "exec \"/nonexistent/prog\": ",
            "No such file or directory",
        )
    });
    g.wait(secs(5), "inpath: exec ENOENT", || {
        has(
            "inpath",
            "exec \"no-such-program-going-test\": ",
            "No such file or directory",
        )
    });
    let noexec_s = format!("exec \"{}\": ", noexec.display());
    g.wait(secs(5), "noexec: exec EACCES", || {
        has("noexec", &noexec_s, "Permission denied")
    });
    g.wait(secs(5), "baddir: chdir ENOENT", || {
        has(
            "baddir",
            "chdir \"/nonexistent-dir-going\": ",
            "No such file or directory",
        )
    });
    g.wait(secs(5), "baduser: unknown user", || {
        has(
            "baduser",
            "unknown user \"no-such-user-going\"",
            ", restart in ",
        )
    });
    // Backed off, growing: the second and third attempts say 0.2s and 0.4s.
    for name in ["missing", "baddir", "baduser"] {
        g.wait(secs(5), &format!("{name}: third failure"), || {
            g.log_count(&format!(" {name}: cannot start: ")) >= 3
        });
        let lines: Vec<String> = g
            .log()
            .lines()
            .filter(|l| l.contains(&format!(" {name}: cannot start: ")))
            .map(String::from)
            .collect();
        g.check(
            lines[0].ends_with(", restart in 50ms"),
            &format!("first failure: {}", lines[0]),
        );
        g.check(
            lines[1].ends_with(", restart in 0.1s"),
            &format!("second failure: {}", lines[1]),
        );
        g.check(
            lines[2].ends_with(", restart in 0.2s"),
            &format!("third failure: {}", lines[2]),
        );
        // Status keeps no history of states: only the log says that the
        // service never reached running (the line is the contract:
        // going(8) LOGGING).
        g.check(
            !g.log_has(&format!(" {name}: running")),
            &format!("{name} was reported running"),
        );
    }
    // Not a flood: within ~1 s, at most 4 attempts each.
    let s = g.svc("missing");
    g.check(
        s.as_ref().is_some_and(|s| s.restarts <= 5),
        &format!("too many attempts: {s:?}"),
    );
    let mut g = g;
    let running = g.is_running();
    g.check(running, "going exited");
    g.check(
        alive(good) && g.running_pid("good") == Some(good),
        "the good service was disturbed",
    );
}

#[test]
fn orphans_are_reaped_by_subreaper() {
    let t = TempDir::new("subreaper");
    let orphan_f = t.join("orphan");
    // The subshell starts a sleeper and exits: the sleeper is orphaned.
    let script = format!(
        "(sleep 1000 & echo $! > {}); exec sleep 1000",
        orphan_f.display()
    );
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let g = Going::start(&t);
    g.wait_running("a");
    let orphan = g.wait_for(secs(5), "orphan pid", || read_pid_file(&orphan_f, ms(0)));
    g.wait(
        secs(3),
        "orphan reparented to going (child subreaper)",
        || stat(orphan).map(|s| s.ppid) == Some(g.pid),
    );
    kill(orphan, SIGKILL);
    g.wait(secs(3), "orphan reaped (no zombie left)", || {
        stat(orphan).is_none()
    });
}

#[test]
fn leader_exit_leaves_its_group_alone() {
    let t = TempDir::new("leaderexit");
    let child_f = t.join("child");
    let script = format!("sleep 1000 & echo $! > {}; exit 0", child_f.display());
    t.write_svc(
        "a.toml",
        &format!(
            // The default (`stop`) is tested in tests/leftovers.rs.
            "cmd = {}\nrestart = \"never\"\nleftovers = \"keep\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let g = Going::start(&t);
    let child = g.wait_for(secs(5), "child pid", || read_pid_file(&child_f, ms(0)));
    g.wait_svc("a", "exited with status 0", secs(5), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 0")
    });
    std::thread::sleep(ms(300));
    g.check(
        alive(child),
        "the leader's child was killed when the leader exited",
    );
    kill(child, SIGKILL);
    g.wait(secs(3), "child reaped by going", || stat(child).is_none());
}

#[test]
fn missing_dir_at_startup_then_created() {
    let t = TempDir::new("nodir");
    let g = Going::start_with(
        &t,
        Opts {
            no_dir: true,
            ..Opts::default()
        },
    );
    let mut g = g;
    // the line is the contract: going(8) LOGGING
    g.wait(secs(5), "a warning about the missing directory", || {
        g.log().contains("warn")
    });
    std::thread::sleep(ms(200));
    let running = g.is_running();
    g.check(running, "going exited on a missing directory");
    let pidf = t.join("pid");
    // Create the directory with a service in it, atomically.
    let staging = t.join("staging");
    fs::create_dir_all(&staging).unwrap();
    fs::write(staging.join("a.toml"), pid_service(&pidf, "")).unwrap();
    fs::rename(&staging, t.svc()).unwrap();
    g.pid_from_file(&pidf);
}

#[test]
fn fatal_when_parent_of_dir_missing() {
    let out = run_going(&["-l", "stderr", "-d", "/nonexistent-going-parent/sub"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
}

#[test]
fn usr1_reports_states() {
    let t = TempDir::new("usr1");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let a = g.wait_running("a");
    g.signal(SIGUSR1);
    // The report is the log: the line is the contract: going(8) LOGGING.
    g.wait_log(&format!(" a: running, pid {a}, up "), secs(3));
    g.wait_log(", 0 restarts", secs(1));
}

fn ctxt_switches(pid: i32) -> u64 {
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .filter_map(|f| status_field(pid, f).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

#[test]
fn idle_going_does_not_wake_up() {
    // SPEC: with nothing pending, going sleeps in poll(2) forever.
    let t = TempDir::new("idle");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    g.wait_running("a");
    std::thread::sleep(ms(300));
    let before = ctxt_switches(g.pid);
    std::thread::sleep(ms(1500));
    let after = ctxt_switches(g.pid);
    g.check(
        after == before,
        &format!("idle going woke up {} times in 1.5 s", after - before),
    );
}

#[test]
fn missing_dir_logs_one_warning() {
    // DECISIONS.md: DIR missing at start-up or later: one warning.
    let t = TempDir::new("nodirwarn");
    let g = Going::start_with(
        &t,
        Opts {
            no_dir: true,
            ..Opts::default()
        },
    );
    g.wait_up();
    std::thread::sleep(ms(200));
    // the line is the contract: going(8) LOGGING
    let log = g.log();
    let warns: Vec<&str> = log.lines().filter(|l| l.contains(" warn ")).collect();
    g.check(
        warns.len() == 1,
        &format!(
            "{} warnings for a missing directory: {warns:#?}",
            warns.len()
        ),
    );
}

#[test]
fn other_signals_are_ignored() {
    let t = TempDir::new("othersig");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let a = g.wait_running("a");
    // ALRM PIPE TSTP TTIN TTOU XCPU XFSZ VTALRM PROF WINCH POLL PWR, RT 40
    for sig in [14, 13, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 40] {
        g.signal(sig);
    }
    std::thread::sleep(ms(300));
    let st = stat(g.pid);
    g.check(
        st.as_ref().map(|s| s.state) == Some('S'),
        &format!("going after stray signals: {st:?}"),
    );
    g.check(alive(a), "service disturbed by stray signals to going");
    g.check(g.running_pid("a") == Some(a), "service restarted");
    // Still responsive; the report is the contract: going(8) LOGGING.
    g.signal(SIGUSR1);
    g.wait_log(&format!(" a: running, pid {a}, up "), secs(3));
}
