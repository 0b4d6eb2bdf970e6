//! `pid-file`: a command that daemonizes is followed through the pid it
//! writes, restarted when that daemon dies, and a pid file that never
//! names a process is a timeout and a backoff, never a hang.

mod common;
use common::*;

/// A classic double fork: the command starts a daemon in its own session
/// that writes its pid, then exits 0.
fn daemon_service(t: &TempDir) -> std::path::PathBuf {
    let pidfile = t.join("daemon.pid");
    let inner = format!("echo $$ > {}; exec sleep 1000", pidfile.display());
    let outer = format!("(setsid sh -c '{inner}' &); sleep 0.1; exit 0");
    t.write_svc(
        "d.toml",
        &format!(
            "cmd = {}\npid-file = \"{}\"\nstart-timeout = \"3s\"\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &outer]),
            pidfile.display()
        ),
    );
    pidfile
}

fn followed_and_restarted(pid1: bool) {
    if pid1 && !can_unshare() {
        return;
    }
    let t = TempDir::new(if pid1 { "pidfile-pid1" } else { "pidfile" });
    let pidfile = daemon_service(&t);
    let mut g = if pid1 {
        Going::start_pid1(&t)
    } else {
        Going::start(&t)
    };
    g.wait_state("d", "running", secs(5));
    let first = g.pid_from_file(&pidfile);
    g.check(alive(first), "the daemon runs");
    // Followed: going names the pid of its pid file.
    g.wait_svc("d", "running as the pid of its pid file", secs(5), |s| {
        s.state == "running" && s.pid.and_then(|p| g.outer(p)) == Some(first)
    });
    kill(first, 9);
    g.wait_svc("d", "killed by KILL, running again", secs(5), |s| {
        s.last_exit.as_deref() == Some("signal KILL")
            && s.state == "running"
            && s.pid.is_some_and(|p| g.outer(p) != Some(first))
    });
    let second = g.pid_from_file(&pidfile);
    g.wait_svc(
        "d",
        "running as the new pid of its pid file",
        secs(5),
        |s| s.state == "running" && s.pid.and_then(|p| g.outer(p)) == Some(second),
    );
    g.check(
        second != first && alive(second),
        "a new daemon replaced the killed one",
    );
    let st = g.stop_with(SIGTERM, secs(8));
    g.check(st.code() == Some(0), &format!("orderly exit, got {st:?}"));
    g.check(!alive(second), "the daemon was stopped with going");
}

#[test]
fn a_daemon_is_followed_and_restarted() {
    followed_and_restarted(false);
}

#[test]
fn a_daemon_is_followed_and_restarted_under_pid1() {
    followed_and_restarted(true);
}

#[test]
fn a_pid_file_that_never_appears_is_a_timeout_and_a_backoff() {
    let t = TempDir::new("pidfile-never");
    t.write_svc(
        "d.toml",
        &format!(
            "cmd = {}\npid-file = \"{}\"\nstart-timeout = \"300ms\"\n",
            qa(&["/bin/sh", "-c", "exit 0"]),
            t.join("never.pid").display()
        ),
    );
    let g = Going::start(&t);
    // the diagnostics are the contract: going(8) LOGGING
    g.wait_log(
        "named no live process within 0.3s, restart in 50ms",
        secs(5),
    );
    g.wait_log(
        "named no live process within 0.3s, restart in 0.1s",
        secs(5),
    );
    g.check(alive(g.pid), "going carries on");
}
