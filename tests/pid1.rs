//! going as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`).

mod common;
use common::*;
use std::collections::HashSet;
use std::fs;
use std::time::Instant;

#[test]
fn pid1_starts_services() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("pid1-start");
    let pidf = t.join("pid");
    t.write_svc("a.toml", &pid_service(&pidf, ""));
    t.write_svc("b", "cmd=/bin/sleep 1001\n");
    let g = Going::start_pid1(&t);
    assert_eq!(
        nspid(g.pid).last(),
        Some(&1),
        "going is PID 1 in its namespace"
    );
    let a = g.pid_from_file(&pidf);
    let inner = read_pid_file(&pidf, secs(1)).unwrap();
    assert_eq!(
        nspid(a).last(),
        Some(&inner),
        "the service's pid in the namespace"
    );
    assert_ne!(a, inner, "outer and inner pids differ (sanity)");
    let s = stat(a).unwrap();
    assert_eq!((s.session, s.pgrp), (a, a), "session and group leader");
    g.wait_svc("a", "running as the namespace pid", secs(2), |s| {
        s.state == "running" && s.pid == Some(inner)
    });
    // the line is the contract: going(8) LOGGING
    g.wait_log("going: going 1.0.0 started, pid 1, directory ", secs(2));
    let b = g.wait_running("b");
    assert_eq!(cmdline(b), vec!["/bin/sleep", "1001"]);
}

#[test]
fn pid1_restarts_after_exit() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("pid1-restart");
    let pidf = t.join("pid");
    t.write_svc("a.toml", &pid_service(&pidf, ""));
    let g = Going::start_pid1(&t);
    let a1 = g.pid_from_file(&pidf);
    kill(a1, SIGKILL);
    let a2 = g.new_pid_from_file(&pidf, a1);
    g.check(!alive(a1), "old instance alive");
    g.check(stat(a1).is_none(), "old instance not reaped (zombie)");
    g.wait_svc("a", "killed by KILL", secs(2), |s| {
        s.last_exit.as_deref() == Some("signal KILL") && s.restarts >= 1
    });
    // And the crash-loop backoff works as PID 1 too: the second short run
    // waits 0.1 s.
    kill(a2, SIGKILL);
    g.new_pid_from_file(&pidf, a2);
    g.wait_svc("a", "two short runs", secs(2), |s| s.restarts >= 2);
    // the line is the contract: going(8) LOGGING
    g.wait_log(", restart in 0.1s", secs(2));
}

#[test]
fn pid1_reaps_double_forked_orphans() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("pid1-orphans");
    let done = t.join("done");
    // Every 0.05 s a subshell starts a sleeper and exits at once: the sleeper
    // is orphaned to PID 1 (going), which must reap it when it dies.
    let script = format!(
        "i=0; while [ $i -lt 30 ]; do (sleep 0.2 &); i=$((i+1)); sleep 0.05; done; echo done > {}; exec sleep 1000",
        done.display()
    );
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let g = Going::start_pid1(&t);
    let sh = g.wait_running("a");
    // Watch the namespace while orphans come and go.
    let mut orphans_seen = HashSet::new();
    let mut zombie_since: std::collections::HashMap<i32, Instant> = Default::default();
    let deadline = Instant::now() + secs(15);
    while !done.exists() {
        g.check(
            Instant::now() < deadline,
            "the orphan-making service did not finish",
        );
        for c in children(g.pid) {
            if c != sh && cmdline(c) == ["sleep", "0.2"] {
                orphans_seen.insert(c);
            }
        }
        for p in descendants(g.pid) {
            if stat(p).map(|s| s.state) == Some('Z') {
                let since = *zombie_since.entry(p).or_insert_with(Instant::now);
                g.check(
                    since.elapsed() < ms(500),
                    &format!("zombie {p} not reaped for 500 ms"),
                );
            }
        }
        std::thread::sleep(ms(15));
    }
    g.check(
        orphans_seen.len() >= 5,
        &format!(
            "only {} orphans were seen as children of PID 1",
            orphans_seen.len()
        ),
    );
    // After the last sleeper ends, nothing but the service is left.
    g.wait(
        secs(3),
        "every orphan reaped: going's only child is the service",
        || {
            let d = descendants(g.pid);
            d == vec![sh]
        },
    );
    for p in orphans_seen {
        g.check(
            stat(p).map(|s| s.ppid) != Some(g.pid),
            &format!("orphan {p} still a child of going"),
        );
    }
}

#[test]
fn pid1_sigterm_orderly_shutdown_exit_0() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("pid1-term");
    let pidf = t.join("pid");
    t.write_svc("a.toml", &pid_service(&pidf, ""));
    t.write_svc("b.toml", &sleep_service(1001, ""));
    t.write_svc(
        "c.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000"])
        ),
    );
    let mut g = Going::start_pid1(&t);
    g.pid_from_file(&pidf);
    g.wait_running("b");
    let c = g.wait_running("c");
    g.wait(secs(5), "c's children", || children(c).len() == 2);
    let all = descendants(g.pid);
    let going = g.pid;
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(8));
    let took = t0.elapsed();
    g.check(
        st.code() == Some(0),
        &format!("exit status of unshare (= going's) {st:?}"),
    );
    g.check(
        took >= ms(900) && took < secs(4),
        &format!("shutdown took {took:?} (c needs its 1 s stop-timeout)"),
    );
    let log = g.log();
    g.check(
        log.contains("going: SIGTERM, stopping 3 services"),
        "SIGTERM line",
    );
    g.check(log.contains(" c: stop timeout, pid "), "c escalated");
    g.check(
        log.trim_end()
            .ends_with("going: all services stopped, exiting"),
        "orderly exit line last",
    );
    g.check(!alive(going), "going still alive");
    for p in all {
        g.check(!alive(p), &format!("{p} survived"));
    }
}

#[test]
fn pid1_sigint_exit_0() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("pid1-int");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let mut g = Going::start_pid1(&t);
    let a = g.wait_running("a");
    let st = g.stop_with(SIGINT, secs(5));
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(!alive(a), "service survived");
}

#[test]
fn pid1_reload_new_file() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("pid1-reload");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start_pid1(&t);
    let a = g.wait_running("a");
    t.write_svc("b.toml", &sleep_service(1002, ""));
    g.wait_running("b");
    fs::remove_file(t.svc().join("a.toml")).unwrap();
    g.wait_gone(a, secs(5));
    // Dead is not enough: going, as PID 1, must also reap it (promptly).
    g.wait(secs(2), "a reaped, no zombie left", || stat(a).is_none());
}
