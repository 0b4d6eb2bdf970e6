//! `critical = true`: when a critical service ends for good, going stops
//! every other service and exits with that service's status, also as PID 1.

mod common;
use common::*;
use std::time::Instant;

/// A critical one-shot that exits `code` after a moment, beside a service
/// that must be stopped on the way out.
fn write_services(t: &TempDir, code: i32) {
    t.write_svc(
        "db.toml",
        &format!(
            "cmd = {}\nrestart = \"never\"\ncritical = true\n",
            qa(&["/bin/sh", "-c", &format!("sleep 0.5; exit {code}")])
        ),
    );
    t.write_svc("web.toml", &sleep_service(1001, ""));
}

fn ends_going_with_its_status(pid1: bool) {
    if pid1 && !can_unshare() {
        return;
    }
    let t = TempDir::new(if pid1 { "crit-pid1" } else { "crit" });
    write_services(&t, 7);
    let mut g = if pid1 {
        Going::start_pid1(&t)
    } else {
        Going::start(&t)
    };
    let web = g.wait_running("web");
    let t0 = Instant::now();
    let st = g.wait_exit(secs(10));
    g.check(
        st.and_then(|s| s.code()) == Some(7),
        &format!("going's exit status is the critical service's, got {st:?}"),
    );
    g.check(t0.elapsed() < secs(8), "going ended promptly");
    g.check(!alive(web), "the other service was stopped");
    let log = g.log();
    g.check(
        log.contains("critical service db ended with status 7, stopping everything"),
        "the critical line",
    );
    g.check(log.contains(" web: stopping, pid "), "web stopped in order");
}

#[test]
fn critical_service_ends_going_with_its_status() {
    ends_going_with_its_status(false);
}

#[test]
fn critical_service_ends_pid1_with_its_status() {
    ends_going_with_its_status(true);
}

#[test]
fn a_critical_service_killed_by_a_signal_gives_128_plus_n() {
    let t = TempDir::new("crit-sig");
    let pidf = t.join("db.pid");
    t.write_svc(
        "db.toml",
        &format!(
            "cmd = {}\nrestart = \"never\"\ncritical = true\n",
            qa(&[
                "/bin/sh",
                "-c",
                &format!("echo $$ > {}; exec sleep 1000", pidf.display())
            ])
        ),
    );
    let mut g = Going::start(&t);
    let db = g.pid_from_file(&pidf);
    kill(db, 9);
    let st = g.wait_exit(secs(10));
    g.check(
        st.and_then(|s| s.code()) == Some(137),
        &format!("128 + SIGKILL, got {st:?}"),
    );
}

#[test]
fn a_non_critical_service_ending_changes_nothing() {
    let t = TempDir::new("crit-not");
    t.write_svc(
        "job.toml",
        &format!(
            "cmd = {}\nrestart = \"never\"\n",
            qa(&["/bin/sh", "-c", "exit 7"])
        ),
    );
    t.write_svc("web.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let web = g.wait_running("web");
    g.wait_svc("job", "exited with status 7", secs(5), |s| {
        s.state == "exited" && s.last_exit.as_deref() == Some("exit 7")
    });
    std::thread::sleep(ms(300));
    g.check(alive(g.pid) && alive(web), "going and web keep running");
}
