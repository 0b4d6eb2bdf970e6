//! Orderly shutdown and stopping services.

mod common;
use common::*;
use std::fs;
use std::time::Instant;

fn shutdown_by(sig: i32, signame: &str) {
    let t = TempDir::new(&format!("shutdown-{signame}"));
    let pidf = t.join("pid");
    let got = t.join("got");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    t.write_svc("b.toml", &pid_service(&pidf, ""));
    let script = format!(
        "trap 'echo TERM > {}; exit 0' TERM; while :; do sleep 0.05; done",
        got.display()
    );
    t.write_svc(
        "c.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"5s\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let mut g = Going::start(&t);
    let a = g.wait_running("a");
    let b = g.pid_from_file(&pidf);
    let c = g.wait_running("c");
    let all = descendants(g.pid);
    let t0 = Instant::now();
    let st = g.stop_with(sig, secs(8));
    let took = t0.elapsed();
    g.check(
        st.code() == Some(0),
        &format!("exit status after SIG{signame}: {st:?}"),
    );
    g.check(took < secs(3), &format!("shutdown took {took:?}"));
    for p in all {
        g.check(
            !alive(p),
            &format!("process {p} ({:?}) survived the shutdown", cmdline(p)),
        );
    }
    g.check(
        fs::read_to_string(&got).unwrap_or_default() == "TERM\n",
        "c got its TERM and ran its trap",
    );
    // After going has exited only its log tells what it did: the lines
    // are the contract: going(8) LOGGING.
    let log = g.log();
    g.check(
        log.contains(&format!("going: SIG{signame}, stopping 3 services")),
        "'SIG..., stopping 3 services'",
    );
    for (n, p) in [("a", a), ("b", b), ("c", c)] {
        g.check(
            log.contains(&format!(" {n}: stopping, pid {p}, signal TERM")),
            &format!("{n}: stopping line"),
        );
        g.check(
            log.contains(&format!(" {n}: stopped, pid {p}")),
            &format!("{n}: stopped line"),
        );
    }
    g.check(
        log.contains(" c: stopped, pid ")
            && log.lines().any(|l| {
                l.contains(" c: stopped, pid ") && l.contains("exited with status 0 after ")
            }),
        "c exited 0",
    );
    g.check(
        log.trim_end()
            .ends_with("going: all services stopped, exiting"),
        "last line 'all services stopped, exiting'",
    );
}

#[test]
fn sigterm_stops_everything_and_exits_0() {
    shutdown_by(SIGTERM, "TERM");
}

#[test]
fn sigint_stops_everything_and_exits_0() {
    shutdown_by(SIGINT, "INT");
}

#[test]
fn sigquit_stops_everything_and_exits_0() {
    shutdown_by(SIGQUIT, "QUIT");
}

#[test]
fn shutdown_with_no_services() {
    let t = TempDir::new("shutdown-empty");
    let mut g = Going::start(&t);
    g.wait_up();
    let st = g.stop_with(SIGTERM, secs(3));
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_has("going: all services stopped, exiting"),
        "final line",
    );
}

/// Wait until `pid` has `n` children; return them.
fn wait_children(g: &Going, pid: i32, n: usize) -> Vec<i32> {
    g.wait_for(secs(5), &format!("{n} children of {pid}"), || {
        let c = children(pid);
        (c.len() >= n
            && c.iter()
                .all(|&x| cmdline(x).first().map(String::as_str) == Some("sleep")))
        .then_some(c)
    })
}

#[test]
fn stop_timeout_escalates_to_kill_of_the_group() {
    let t = TempDir::new("escalate");
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000"])
        ),
    );
    let mut g = Going::start(&t);
    let sh = g.wait_running("a");
    let kids = wait_children(&g, sh, 2);
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(8));
    let took = t0.elapsed();
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(
        took >= ms(900),
        &format!("stopped after {took:?}, before the 1 s stop-timeout"),
    );
    g.check(took < secs(4), &format!("stop took {took:?}"));
    for p in kids.iter().chain(std::iter::once(&sh)) {
        g.check(!alive(*p), &format!("{p} survived the KILL"));
    }
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_has(&format!(
            " a: stop timeout, pid {sh}, sending KILL to the process group"
        )),
        "stop timeout line",
    );
}

#[test]
fn stop_waits_for_the_group_after_the_leader_exits() {
    let t = TempDir::new("groupwait");
    // The leader dies on TERM; its child ignores TERM and stays.
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"1s\"\n",
            qa(&[
                "/bin/sh",
                "-c",
                "(trap '' TERM; exec sleep 1000) & exec sleep 1000"
            ])
        ),
    );
    let mut g = Going::start(&t);
    let leader = g.wait_running("a");
    let kids = wait_children(&g, leader, 1);
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(8));
    let took = t0.elapsed();
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(
        took >= ms(900),
        &format!("going exited after {took:?} while a process of the group was left"),
    );
    g.check(!alive(kids[0]), "the leader's child survived");
    // the line is the contract: going(8) LOGGING
    g.check(g.log_has(" a: stop timeout, pid "), "stop timeout line");
}

#[test]
fn custom_stop_signal() {
    let t = TempDir::new("stopsig");
    let got = t.join("got");
    let got_b = t.join("got_b");
    let script = format!(
        "trap 'echo INT > {f}; exit 0' INT; trap 'echo TERM > {f}; exit 0' TERM; while :; do sleep 0.05; done",
        f = got.display()
    );
    let script_b = format!(
        "trap 'echo HUP > {f}; exit 0' HUP; trap 'echo TERM > {f}; exit 0' TERM; while :; do sleep 0.05; done",
        f = got_b.display()
    );
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-signal = \"sigint\"\nstop-timeout = \"5s\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    t.write_svc(
        "b.toml",
        &format!(
            "cmd = {}\nstop-signal = \"HUP\"\nstop-timeout = \"5s\"\n",
            qa(&["/bin/sh", "-c", &script_b])
        ),
    );
    let mut g = Going::start(&t);
    let a = g.wait_running("a");
    let b = g.wait_running("b");
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(8));
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(
        t0.elapsed() < secs(3),
        "stop-signal did not stop the services",
    );
    assert_eq!(
        fs::read_to_string(&got).unwrap_or_default(),
        "INT\n",
        "a received its stop-signal INT"
    );
    assert_eq!(
        fs::read_to_string(&got_b).unwrap_or_default(),
        "HUP\n",
        "b received its stop-signal HUP"
    );
    g.check(!alive(a) && !alive(b), "a and b stopped");
}

#[test]
fn stopped_service_gets_sigcont() {
    let t = TempDir::new("sigcont");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1001\"]\nstop-timeout = \"20s\"\n",
    );
    let mut g = Going::start(&t);
    let a = g.wait_running("a");
    kill(a, 19); // SIGSTOP
    g.wait(secs(3), "service stopped (state T)", || {
        stat(a).map(|s| s.state) == Some('T')
    });
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(8));
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(
        t0.elapsed() < secs(3),
        &format!(
            "a SIGSTOPped service was not woken by SIGCONT: stop took {:?}",
            t0.elapsed()
        ),
    );
    g.check(!alive(a), "service survived");
}

#[test]
fn second_sigterm_kills_at_once() {
    let t = TempDir::new("doubleterm");
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"60s\"\n",
            qa(&["/bin/sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000"])
        ),
    );
    let mut g = Going::start(&t);
    let sh = g.wait_running("a");
    let kids = wait_children(&g, sh, 2);
    g.signal(SIGTERM);
    g.wait_svc("a", "stopping", secs(3), |s| {
        s.state == "stopping" && g.outer(s.pid.unwrap_or(0)) == Some(sh)
    });
    std::thread::sleep(ms(100));
    let running = g.is_running();
    g.check(running, "going exited while a service was still running");
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(5));
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(
        t0.elapsed() < secs(2),
        &format!("second SIGTERM: exit took {:?}", t0.elapsed()),
    );
    for p in kids.iter().chain(std::iter::once(&sh)) {
        g.check(!alive(*p), &format!("{p} survived"));
    }
}

#[test]
fn removed_file_stop_escalates() {
    let t = TempDir::new("rmescalate");
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop-timeout = \"500ms\"\n",
            qa(&["/bin/sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000"])
        ),
    );
    t.write_svc("b.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let sh = g.wait_running("a");
    let b = g.wait_running("b");
    let kids = wait_children(&g, sh, 2);
    let t0 = Instant::now();
    t.remove_svc("a.toml");
    for p in kids.iter().chain(std::iter::once(&sh)) {
        g.wait_gone(*p, secs(5));
    }
    let took = t0.elapsed();
    g.check(
        took >= ms(400),
        &format!("group gone after {took:?}, before the 500 ms stop-timeout"),
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        g.log_has(&format!(
            " a: stop timeout, pid {sh}, sending KILL to the process group"
        )),
        "stop timeout line",
    );
    g.check(alive(b) && g.running_pid("b") == Some(b), "b disturbed");
}

#[test]
fn shutdown_does_not_wait_for_backoff_or_exited_services() {
    let t = TempDir::new("shutdown-backoff");
    let starts = t.join("starts");
    let crash = format!("echo >> {}; exit 1", starts.display());
    t.write_svc(
        "crash.toml",
        &format!("cmd = {}\n", qa(&["/bin/sh", "-c", &crash])),
    );
    t.write_svc("once.toml", "cmd = \"/bin/true\"\nrestart = \"never\"\n");
    t.write_svc("off.toml", "cmd = \"/bin/true\"\nenabled = false\n");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let mut g = Going::start(&t);
    let a = g.wait_running("a");
    g.wait_svc("once", "exited with status 0", secs(5), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 0")
    });
    // Let crash reach a backoff of more than a second.
    g.wait_backoff("crash", 6);
    let before = fs::read_to_string(&starts).unwrap_or_default().len();
    let t0 = Instant::now();
    let st = g.stop_with(SIGTERM, secs(8));
    g.check(st.code() == Some(0), &format!("exit status {st:?}"));
    g.check(
        t0.elapsed() < ms(1000),
        &format!("shutdown took {:?}", t0.elapsed()),
    );
    g.check(!alive(a), "a survived");
    let after = fs::read_to_string(&starts).unwrap_or_default().len();
    g.check(
        after == before,
        &format!("crash was started again during shutdown ({before} starts, then {after})"),
    );
}
