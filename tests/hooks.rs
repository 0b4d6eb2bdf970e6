//! Hooks and health checks: `before`, `stop`, `on-exit`, `hook-timeout`
//! and `health-check`, checked on real processes, through the log, marker
//! files the hooks write and /proc.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// `going CMD -s SOCK NAME`, which must exit 0.
fn ctl_ok(g: &Going, sock: &str, cmd: &str, name: &str) {
    let o = run_going(&[cmd, "-s", sock, name]);
    if !o.status.success() {
        g.fail(&format!(
            "going {cmd} {name} should exit 0: {:?}\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
}

/// Whether any process of the group `pgid` exists.
fn group_exists(pgid: i32) -> bool {
    kill(-pgid, 0)
}

/// The lines of a file, empty when it does not exist.
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Wait until a file has at least `n` complete lines; returns them.
fn wait_lines(g: &Going, path: &Path, n: usize, timeout: Duration) -> Vec<String> {
    g.wait_for(timeout, &format!("{n} lines in {}", path.display()), || {
        let s = fs::read_to_string(path).ok()?;
        let complete = &s[..s.rfind('\n').map_or(0, |i| i + 1)];
        let v: Vec<String> = complete.lines().map(str::to_string).collect();
        (v.len() >= n).then_some(v)
    })
}

/// Lines of `date +%s%N` as nanoseconds.
fn nanos(lines: &[String]) -> Vec<u128> {
    lines
        .iter()
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|_| panic!("not a date +%s%N: {l:?}"))
        })
        .collect()
}

/// The log lines containing `pat`.
fn log_lines(g: &Going, pat: &str) -> Vec<String> {
    g.log()
        .lines()
        .filter(|l| l.contains(pat))
        .map(str::to_string)
        .collect()
}

/// Position of the first log line containing `pat`.
fn log_pos(g: &Going, pat: &str) -> Option<usize> {
    g.log().lines().position(|l| l.contains(pat))
}

/// The complete environments `/usr/bin/env` appended to `path`, one per
/// run of the hook: a record begins at its PATH= line and is complete once
/// its GOING_RESTARTS= line (the last variable added) is there.
fn env_records(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut records: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("PATH=") || records.is_empty() {
            records.push(Vec::new());
        }
        if let Some(r) = records.last_mut() {
            r.push(line.to_string());
        }
    }
    records.retain(|r| r.iter().any(|l| l.starts_with("GOING_RESTARTS=")));
    records
}

fn wait_records(g: &Going, path: &Path, n: usize) -> Vec<Vec<String>> {
    g.wait_for(
        secs(5),
        &format!("{n} on-exit environments in {}", path.display()),
        || {
            let r = env_records(path);
            (r.len() >= n).then_some(r)
        },
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The variables every process of service `name` gets: PATH, HOME, USER
/// (of the user the tests run as) and GOING_SERVICE.
fn base_env(name: &str) -> Vec<String> {
    let uid: u32 = status_field(std::process::id() as i32, "Uid")
        .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    let user = user_name(uid).unwrap_or_else(|| "root".into());
    let home = passwd_entry(&user).map_or_else(|| "/".into(), |e| e.2);
    vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        format!("HOME={home}"),
        format!("USER={user}"),
        format!("GOING_SERVICE={name}"),
    ]
}

/// SIGTERM to going; it must exit within 10 s, and none of `pids` (nor
/// their process groups) may be left.
fn shut_down(g: &mut Going, pids: &[i32]) {
    g.stop_with(SIGTERM, secs(10));
    for &p in pids {
        let gone = wait_until(secs(2), || !alive(p));
        assert!(gone, "pid {p} still alive after going exited");
    }
}

// ---------------------------------------------------------------- before

#[test]
fn before_runs_before_each_start() {
    let t = TempDir::new("hk-before");
    let (mark, out) = (t.join("mark"), t.join("out"));
    // Every write is a whole line with O_APPEND; a service running as
    // nobody must be able to append too.
    fs::write(&mark, "").unwrap();
    fs::set_permissions(&mark, fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = if is_root() {
        passwd_entry("nobody")
    } else {
        None
    };
    let user_line = if nobody.is_some() {
        "user = \"nobody\"\n"
    } else {
        ""
    };
    let m = mark.display();
    let before = format!(
        "echo before $$ $(id -u) $(pwd) $GOING_SERVICE $FOO $(date +%s%N) >> {m}; \
         sleep 0.3; echo done $$ $(date +%s%N) >> {m}; echo before-out"
    );
    let cmd = format!("echo start $$ $(date +%s%N) >> {m}; exec sleep 1000");
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nbefore = {}\ndir = {}\nstdout = {}\nstop-timeout = \"2s\"\n{user_line}\n[env]\nFOO = \"bar\"\n",
            qa(&["/bin/sh", "-c", &cmd]),
            qa(&["/bin/sh", "-c", &before]),
            q(&t.path.display().to_string()),
            q(&out.display().to_string()),
        ),
    );
    let mut g = Going::start(&t);
    let mut pids = vec![g.wait_running("a")];
    for _ in 0..2 {
        let last = *pids.last().unwrap();
        // Killed only once it has written its line.
        let started = format!("start {last} ");
        g.wait(secs(5), &format!("{started:?} in mark"), || {
            lines(&mark).iter().any(|l| l.starts_with(&started))
        });
        kill(last, SIGKILL);
        pids.push(g.wait_new_pid("a", last));
    }
    let v = wait_lines(&g, &mark, 9, secs(5));
    g.check(v.len() == 9, &format!("3 starts, 9 lines in mark: {v:#?}"));
    let own_uid = status_field(std::process::id() as i32, "Uid")
        .and_then(|v| v.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let uid = nobody.as_ref().map_or(own_uid, |e| e.0.to_string());
    for (i, chunk) in v.chunks(3).enumerate() {
        let b: Vec<&str> = chunk[0].split(' ').collect();
        let d: Vec<&str> = chunk[1].split(' ').collect();
        let s: Vec<&str> = chunk[2].split(' ').collect();
        g.check(
            b.len() == 7 && b[0] == "before" && d[0] == "done" && s[0] == "start",
            &format!("start {i}: before, done, start in this order: {chunk:#?}"),
        );
        // The hook is a process of its own, as the service's user, in its
        // directory, with its environment.
        let hook_pid: i32 = b[1].parse().unwrap();
        g.check(
            d[1] == b[1] && hook_pid != pids[i],
            &format!("start {i}: one before process, not the service: {chunk:#?}"),
        );
        g.check(
            b[2] == uid && b[3] == t.path.display().to_string() && b[4] == "a" && b[5] == "bar",
            &format!(
                "start {i}: before runs as uid {uid} in {} with GOING_SERVICE=a FOO=bar: {chunk:#?}",
                t.path.display()
            ),
        );
        g.check(
            s[1] == pids[i].to_string(),
            &format!("start {i}: the service is pid {}: {chunk:#?}", pids[i]),
        );
        let (tb, td, ts): (u128, u128, u128) = (
            b[6].parse().unwrap(),
            d[2].parse().unwrap(),
            s[2].parse().unwrap(),
        );
        g.check(
            td >= tb + 250_000_000 && ts >= td,
            &format!("start {i}: the service starts after its before hook has ended: {chunk:#?}"),
        );
        // The live service (the last one) runs as that user too.
        if i == 2 {
            let service_uid = status_field(pids[i], "Uid")
                .and_then(|v| v.split_whitespace().next().map(str::to_string));
            g.check(
                service_uid.as_deref() == Some(uid.as_str()),
                &format!("the service runs as uid {uid} too: {service_uid:?}"),
            );
        }
    }
    // The hook's output goes where the service's does.
    let o = fs::read_to_string(&out).unwrap_or_default();
    g.check(
        o.matches("before-out").count() == 3,
        &format!("3 before-out lines in the service's stdout file: {o:?}"),
    );
    shut_down(&mut g, &pids);
}

#[test]
fn before_failing_backs_off() {
    let t = TempDir::new("hk-bfail");
    let (pidf, times) = (t.join("pid"), t.join("times"));
    let before = format!("date +%s%N >> {}; exit 3", times.display());
    t.write_svc(
        "a.toml",
        &pid_service(
            &pidf,
            &format!("before = {}", qa(&["/bin/sh", "-c", &before])),
        ),
    );
    let mut g = Going::start(&t);
    let pat =
        |d: &str| format!("a: cannot start: before hook exited with status 3, restart in {d}");
    // Five failed starts, each counted as a restart.
    g.wait_backoff("a", 5);
    // The reason and the delays are the contract: going(8) LOGGING; the
    // delays themselves are measured below.
    g.wait_log(&pat("0.8s"), secs(2));
    let positions: Vec<usize> = ["50ms", "0.1s", "0.2s", "0.4s"]
        .iter()
        .map(|d| log_pos(&g, &pat(d)).unwrap_or_else(|| g.fail(&format!("no line {:?}", pat(d)))))
        .collect();
    g.check(
        positions.windows(2).all(|w| w[0] < w[1]),
        "backoff lines 50ms, 0.1s, 0.2s, 0.4s in this order",
    );
    let ts = nanos(&wait_lines(&g, &times, 4, secs(2)));
    let gaps: Vec<u128> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, want_ms) in [50u128, 100, 200].iter().enumerate() {
        g.check(
            gaps[i] >= want_ms * 1_000_000 * 9 / 10,
            &format!(
                "run {} of before waits ~{want_ms} ms after the previous: gaps {gaps:?} ns",
                i + 2
            ),
        );
    }
    g.check(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        &format!("delays grow: {gaps:?} ns"),
    );
    // The service itself never ran.
    g.check(!pidf.exists(), "the service's process never ran");
    let a = g.svc("a");
    g.check(
        a.as_ref()
            .is_some_and(|s| s.state != "running" && s.pid.is_none()),
        &format!("status shows the service started: {a:?}"),
    );
    shut_down(&mut g, &[]);
}

#[test]
fn before_timeout_is_killed() {
    let t = TempDir::new("hk-btime");
    let (pidf, hooks, sleeps) = (t.join("pid"), t.join("hooks"), t.join("sleeps"));
    let before = format!(
        "echo $$ >> {}; sleep 10 & echo $! >> {}; wait; echo survived >> {}",
        hooks.display(),
        sleeps.display(),
        hooks.display()
    );
    t.write_svc(
        "a.toml",
        &pid_service(
            &pidf,
            &format!(
                "before = {}\nhook-timeout = \"300ms\"",
                qa(&["/bin/sh", "-c", &before])
            ),
        ),
    );
    let mut g = Going::start(&t);
    let hook = wait_lines(&g, &hooks, 1, secs(5))[0]
        .parse::<i32>()
        .unwrap();
    let seen = Instant::now();
    let sleeper = wait_lines(&g, &sleeps, 1, secs(5))[0]
        .parse::<i32>()
        .unwrap();
    g.check(
        alive(hook) && stat(hook).map(|s| s.ppid) == Some(g.pid),
        &format!("the before hook {hook} is a live child of going"),
    );
    g.wait_gone(hook, secs(2));
    g.wait_gone(sleeper, secs(2));
    g.check(
        !group_exists(hook),
        "nothing of the hook's process group is left",
    );
    let took = seen.elapsed();
    g.check(
        took >= ms(200) && took < secs(3),
        &format!("the hook was killed after its 300 ms timeout, not before (took {took:?})"),
    );
    // The backoff goes on: the hook runs again, and times out again.
    g.wait_backoff("a", 2);
    // the lines are the contract: going(8) LOGGING
    for line in [
        format!("a: before hook timed out, pid {hook}, killing it"),
        "a: cannot start: before hook killed by signal KILL, restart in 50ms".to_string(),
        "a: cannot start: before hook killed by signal KILL, restart in 0.1s".to_string(),
    ] {
        g.check(g.log_has(&line), &format!("no line {line:?}"));
    }
    let all = wait_lines(&g, &hooks, 2, secs(5));
    g.check(
        all.iter().all(|l| l != "survived"),
        &format!("no hook ran to its end: {all:?}"),
    );
    g.check(!pidf.exists(), "the service's process never ran");
    let a = g.svc("a");
    g.check(
        a.as_ref()
            .is_some_and(|s| s.state != "running" && s.pid.is_none()),
        &format!("status shows the service started: {a:?}"),
    );
    let mut known: Vec<i32> = all.iter().filter_map(|l| l.parse().ok()).collect();
    known.extend(lines(&sleeps).iter().filter_map(|l| l.parse::<i32>().ok()));
    shut_down(&mut g, &known);
}

#[test]
fn stop_during_before_kills_the_hook() {
    let t = TempDir::new("hk-bstop");
    let (pidf, hooks) = (t.join("pid"), t.join("hooks"));
    let before = format!("echo $$ >> {}; exec sleep 10", hooks.display());
    t.write_svc(
        "a.toml",
        &pid_service(
            &pidf,
            &format!("before = {}", qa(&["/bin/sh", "-c", &before])),
        ),
    );
    let (mut g, sock) = start_ctl(&t);
    let hook = wait_lines(&g, &hooks, 1, secs(5))[0]
        .parse::<i32>()
        .unwrap();
    g.check(alive(hook), "the before hook runs");
    let t0 = Instant::now();
    ctl_ok(&g, &sock, "stop", "a");
    g.wait_gone(hook, secs(2));
    g.check(
        t0.elapsed() < secs(2),
        "the stop killed the hook (it did not run out its 30 s timeout)",
    );
    std::thread::sleep(ms(500));
    let a = g.svc("a");
    g.check(
        !pidf.exists()
            && a.as_ref()
                .is_some_and(|s| s.state == "stopped" && s.admin_down && s.pid.is_none()),
        &format!("a stopped service is not started after its cancelled before hook: {a:?}"),
    );
    // A failed start would count a restart.
    g.check(
        a.as_ref().is_some_and(|s| s.restarts == 0),
        &format!("a cancelled before hook is not a failed start: {a:?}"),
    );
    // start runs the hook again, and then the service.
    ctl_ok(&g, &sock, "start", "a");
    let again = wait_lines(&g, &hooks, 2, secs(5))[1]
        .parse::<i32>()
        .unwrap();
    g.check(again != hook, "a new before hook on start");
    shut_down(&mut g, &[hook, again]);
}

// ---------------------------------------------------------------- stop

#[test]
fn stop_command_is_used_then_sigkill() {
    let t = TempDir::new("hk-stop");
    let (pidf, child, got, stopf) = (
        t.join("pid"),
        t.join("child"),
        t.join("got"),
        t.join("stop"),
    );
    // It survives TERM (it only notes it) and has a child in its group.
    let cmd = format!(
        "sleep 1000 & echo $! > {}; trap 'echo TERM >> {}' TERM; echo $$ > {}; \
         while :; do sleep 0.1; done",
        child.display(),
        got.display(),
        pidf.display()
    );
    let stop = format!("echo $GOING_PID > {}", stopf.display());
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &cmd]),
            qa(&["/bin/sh", "-c", &stop])
        ),
    );
    let (mut g, sock) = start_ctl(&t);
    let pid = g.pid_from_file(&pidf);
    let kid = read_pid_file(&child, secs(5)).unwrap_or_else(|| g.fail("no child pid"));
    g.check(
        stat(kid).map(|s| s.pgrp) == Some(pid),
        "the service's child is in its process group",
    );
    let t0 = Instant::now();
    ctl_ok(&g, &sock, "stop", "a");
    let told = read_pid_file(&stopf, secs(5)).unwrap_or_else(|| g.fail("stop hook never ran"));
    g.check(
        told == pid,
        &format!("the stop hook got GOING_PID={told}, the service is {pid}"),
    );
    g.wait_state("a", "stopping", secs(2));
    // The hook did nothing: both processes are still there before the timeout.
    std::thread::sleep(ms(400).saturating_sub(t0.elapsed()));
    g.check(
        t0.elapsed() < ms(900) && alive(pid) && alive(kid),
        "before stop-timeout, the service and its child still run",
    );
    g.wait_gone(pid, secs(5));
    g.wait_gone(kid, secs(2));
    g.wait(secs(2), "the service's process group to be empty", || {
        !group_exists(pid)
    });
    let took = t0.elapsed();
    g.check(
        took >= ms(900) && took < secs(4),
        &format!("SIGKILL came at stop-timeout = 1s (took {took:?})"),
    );
    g.wait_svc("a", "stopped by KILL", secs(2), |s| {
        s.state == "stopped" && s.last_exit.as_deref() == Some("signal KILL")
    });
    // the lines are the contract: going(8) LOGGING
    let stopping = log_pos(&g, &format!("a: stopping, pid {pid}, stop hook"));
    let timeout = log_pos(
        &g,
        &format!("a: stop timeout, pid {pid}, sending KILL to the process group"),
    );
    g.check(
        stopping.is_some() && timeout.is_some() && stopping < timeout,
        "log: stop hook, then stop timeout",
    );
    g.check(
        !got.exists(),
        "no TERM was sent: the stop hook replaced the signal",
    );
    // the line is the contract: going(8) LOGGING
    g.check(
        !g.log_has(&format!("a: stopping, pid {pid}, signal TERM")),
        "no stop by signal logged",
    );
    shut_down(&mut g, &[pid, kid]);
}

#[test]
fn stop_hook_is_killed_at_stop_timeout() {
    let t = TempDir::new("hk-stopslow");
    let (pidf, hookf) = (t.join("pid"), t.join("hook"));
    let stop = format!("echo $$ > {}; sleep 10; kill $GOING_PID", hookf.display());
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop = {}\nstop-timeout = \"1s\"\n",
            qa(&[
                "/bin/sh",
                "-c",
                &format!("echo $$ > {}; exec sleep 1000", pidf.display())
            ]),
            qa(&["/bin/sh", "-c", &stop])
        ),
    );
    let (mut g, sock) = start_ctl(&t);
    let pid = g.pid_from_file(&pidf);
    let t0 = Instant::now();
    ctl_ok(&g, &sock, "stop", "a");
    let hook = read_pid_file(&hookf, secs(5)).unwrap_or_else(|| g.fail("stop hook never ran"));
    g.check(
        alive(hook) && alive(pid),
        "the stop hook and the service run",
    );
    g.wait_gone(hook, secs(4));
    g.wait_gone(pid, secs(4));
    // The hook's child, killed with it, is reaped by going a moment later.
    g.wait(secs(2), "nothing of the hook's group is left", || {
        !group_exists(hook)
    });
    let took = t0.elapsed();
    g.check(
        took >= ms(900) && took < secs(4),
        &format!("the hook and the service were killed at stop-timeout (took {took:?})"),
    );
    g.wait_svc("a", "stopped by KILL", secs(2), |s| {
        s.state == "stopped" && s.last_exit.as_deref() == Some("signal KILL")
    });
    // the lines are the contract: going(8) LOGGING
    for line in [
        format!("a: stop hook timed out, pid {hook}, killing it"),
        format!("a: stop timeout, pid {pid}, sending KILL to the process group"),
    ] {
        g.check(g.log_has(&line), &format!("no line {line:?}"));
    }
    shut_down(&mut g, &[pid, hook]);
}

#[test]
fn stop_hook_that_works_at_shutdown() {
    let t = TempDir::new("hk-stopok");
    let pidf = t.join("pid");
    let cmd = format!(
        "trap 'exit 0' USR1; echo $$ > {}; while :; do sleep 0.1; done",
        pidf.display()
    );
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstop = {}\nstop-timeout = \"5s\"\n",
            qa(&["/bin/sh", "-c", &cmd]),
            qa(&["/bin/sh", "-c", "kill -USR1 $GOING_PID"]),
        ),
    );
    let mut g = Going::start(&t);
    let pid = g.pid_from_file(&pidf);
    let t0 = Instant::now();
    g.stop_with(SIGTERM, secs(10));
    let took = t0.elapsed();
    // going has exited: its log is the record of the stop (the lines are
    // the contract: going(8) LOGGING).
    let log = g.log();
    g.check(
        log.contains(&format!("a: stopping, pid {pid}, stop hook")),
        "the shutdown stops the service with its stop hook",
    );
    g.check(
        log.contains(&format!("a: stopped, pid {pid}, exited with status 0")),
        "the service exited 0 on the USR1 its stop hook sent",
    );
    g.check(
        !log.contains("stop timeout") && took < secs(3),
        &format!("no SIGKILL needed (took {took:?})"),
    );
    g.check(!alive(pid), "the service is gone");
}

// ---------------------------------------------------------------- on-exit

#[test]
fn on_exit_environment_exact() {
    let t = TempDir::new("hk-onexit");
    let (kf, xf, sf, xpids) = (
        t.join("k.env"),
        t.join("x.env"),
        t.join("s.env"),
        t.join("xpids"),
    );
    // /usr/bin/env with no shell in between: exactly what going gave it.
    t.write_svc(
        "k.toml",
        &format!(
            "cmd = [\"/bin/sleep\", \"1001\"]\nrestart = \"never\"\non-exit = \"/usr/bin/env\"\nstdout = {}\nstop-timeout = \"2s\"\n[env]\nFOO = \"bar baz\"\n",
            q(&kf.display().to_string())
        ),
    );
    let xcmd = format!("echo $$ >> {}; exit 3", xpids.display());
    t.write_svc(
        "x.toml",
        &format!(
            "cmd = {}\non-exit = [\"/usr/bin/env\"]\nstdout = {}\n",
            qa(&["/bin/sh", "-c", &xcmd]),
            q(&xf.display().to_string())
        ),
    );
    t.write_svc(
        "s.toml",
        &format!(
            "cmd = [\"/bin/sleep\", \"1002\"]\non-exit = \"/usr/bin/env\"\nstdout = {}\nstop-timeout = \"2s\"\n",
            q(&sf.display().to_string())
        ),
    );
    let (mut g, sock) = start_ctl(&t);

    // Killed with SIGKILL.
    let k = g.wait_running("k");
    kill(k, SIGKILL);
    let rec = wait_records(&g, &kf, 1);
    let mut want = base_env("k");
    want.extend([
        "FOO=bar baz".to_string(),
        format!("GOING_PID={k}"),
        "GOING_EXIT_SIGNAL=KILL".to_string(),
        "GOING_RESTARTS=0".to_string(),
    ]);
    g.check(
        sorted(rec[0].clone()) == sorted(want.clone()),
        &format!("on-exit of k: exactly {want:#?}\ngot {:#?}", rec[0]),
    );

    // Exits with status 3, again and again.
    let recs = wait_records(&g, &xf, 3);
    let xp = wait_lines(&g, &xpids, 3, secs(2));
    for (i, rec) in recs.iter().take(3).enumerate() {
        let mut want = base_env("x");
        want.extend([
            format!("GOING_PID={}", xp[i]),
            "GOING_EXIT_CODE=3".to_string(),
            format!("GOING_RESTARTS={i}"),
        ]);
        g.check(
            sorted(rec.clone()) == sorted(want.clone()),
            &format!("on-exit of x, run {i}: exactly {want:#?}\ngot {rec:#?}"),
        );
    }

    // Stopped by going: the stop signal is what ended it.
    let s = g.wait_running("s");
    ctl_ok(&g, &sock, "stop", "s");
    let rec = wait_records(&g, &sf, 1);
    let mut want = base_env("s");
    want.extend([
        format!("GOING_PID={s}"),
        "GOING_EXIT_SIGNAL=TERM".to_string(),
        "GOING_RESTARTS=0".to_string(),
    ]);
    g.check(
        sorted(rec[0].clone()) == sorted(want.clone()),
        &format!("on-exit of s: exactly {want:#?}\ngot {:#?}", rec[0]),
    );

    // k is not restarted: its on-exit ran once.
    std::thread::sleep(ms(300));
    g.check(
        env_records(&kf).len() == 1,
        "one on-exit run for one exit of k",
    );
    // Only the log reports a hook's failure: the line is the contract:
    // going(8) LOGGING.
    g.check(
        !g.log().lines().any(|l| l.contains("on-exit hook")),
        "no on-exit hook failure logged",
    );
    shut_down(&mut g, &[k, s]);
}

#[test]
fn on_exit_failure_and_timeout_are_logged() {
    let t = TempDir::new("hk-onexitfail");
    let hookf = t.join("hook");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sh\", \"-c\", \"exit 0\"]\nrestart = \"never\"\non-exit = [\"/bin/sh\", \"-c\", \"exit 4\"]\n",
    );
    let slow = format!("echo $$ > {}; exec sleep 10", hookf.display());
    t.write_svc(
        "b.toml",
        &format!(
            "cmd = [\"/bin/sh\", \"-c\", \"exit 0\"]\nrestart = \"never\"\nhook-timeout = \"300ms\"\non-exit = {}\n",
            qa(&["/bin/sh", "-c", &slow])
        ),
    );
    let mut g = Going::start(&t);
    // Only the log reports a hook's failure: the lines are the contract:
    // going(8) LOGGING.
    g.wait_log("a: on-exit hook exited with status 4", secs(5));
    let hook = read_pid_file(&hookf, secs(5)).unwrap_or_else(|| g.fail("b's on-exit never ran"));
    let t0 = Instant::now();
    g.wait_log(
        &format!("b: on-exit hook timed out, pid {hook}, killing it"),
        secs(3),
    );
    g.wait_log("b: on-exit hook killed by signal KILL", secs(2));
    g.wait_gone(hook, secs(2));
    g.check(
        t0.elapsed() < secs(2),
        "killed after its 300 ms hook-timeout",
    );
    shut_down(&mut g, &[hook]);
}

// ---------------------------------------------------------------- health

#[test]
fn health_check_restart() {
    let t = TempDir::new("hk-health");
    let flag = t.join("flag");
    let flag_s = flag.display().to_string();
    t.write_svc(
        "h.toml",
        &format!(
            "cmd = [\"/bin/sleep\", \"1003\"]\nstop-timeout = \"2s\"\nhealth-check = {{ cmd = {}, interval = \"200ms\", retries = 2 }}\n",
            qa(&["test", "!", "-e", &flag_s])
        ),
    );
    let mut g = Going::start(&t);
    let p1 = g.wait_running("h");
    // Passing checks change nothing.
    std::thread::sleep(ms(700));
    // A failed check is logged (the line is the contract: going(8) LOGGING).
    g.check(
        !g.log_has("h: health check") && g.running_pid("h") == Some(p1) && alive(p1),
        "passing checks: no log line, no restart",
    );
    fs::write(&flag, "").unwrap();
    let t0 = Instant::now();
    let restart =
        format!("h: health check exited with status 1, 2 times in a row, pid {p1}, restarting");
    g.wait_gone(p1, secs(5));
    let took = t0.elapsed();
    g.check(
        took >= ms(150),
        &format!("two failures in a row take two intervals (took {took:?})"),
    );
    let p2 = g.wait_new_pid("h", p1);
    // The stop is the usual one, and a short run backs off.
    let h = g.svc("h");
    g.check(
        h.as_ref()
            .is_some_and(|s| s.restarts == 1 && s.last_exit.as_deref() == Some("signal TERM")),
        &format!("one restart, the old process stopped with its stop-signal: {h:?}"),
    );
    // the lines are the contract: going(8) LOGGING
    g.check(g.log_has(&restart), &format!("no line {restart:?}"));
    let first = log_pos(
        &g,
        &format!("h: health check exited with status 1, 1 of 2, pid {p1}"),
    );
    g.check(
        first.is_some() && first < log_pos(&g, &restart),
        "a first failure is logged as 1 of 2 before the restart",
    );
    // `restart in` alone follows the stopped line of a service restarted
    // for its health check (going(8) LOGGING).
    let stopped = log_pos(&g, &format!("h: stopped, pid {p1}, killed by signal TERM"));
    g.check(
        stopped > log_pos(&g, &restart) && log_pos(&g, "h: restart in 50ms") > stopped,
        "restarted after the backoff of a short run (stopped, then restart in 50ms)",
    );
    g.check(!alive(p1), "the old process is gone");
    fs::remove_file(&flag).unwrap();
    // It stays up now.
    std::thread::sleep(ms(400));
    let pid = g.wait_running("h");
    let restarts = g.svc("h").map(|s| s.restarts);
    std::thread::sleep(ms(1500));
    g.check(
        alive(pid) && g.running_pid("h") == Some(pid),
        &format!("with the check passing, pid {pid} stays"),
    );
    let now = g.svc("h").map(|s| s.restarts);
    g.check(
        now == restarts,
        &format!("no more health restarts once the check passes: {restarts:?} then {now:?}"),
    );
    shut_down(&mut g, &[p1, p2, pid]);
}

#[test]
fn health_check_timeout() {
    let t = TempDir::new("hk-htime");
    let checks = t.join("checks");
    // The going format: health-check.KEY=value lines.
    t.write_svc(
        "h",
        &format!(
            "cmd=/bin/sleep 1004\nstop-timeout=2\nhealth-check.cmd=/bin/sh -c 'echo $$ >> {}; exec sleep 10'\nhealth-check.interval=200ms\nhealth-check.timeout=300ms\nhealth-check.retries=2\n",
            checks.display()
        ),
    );
    let mut g = Going::start(&t);
    let p1 = g.wait_running("h");
    let t0 = Instant::now();
    let c1 = wait_lines(&g, &checks, 1, secs(5))[0]
        .parse::<i32>()
        .unwrap();
    g.wait_gone(c1, secs(3));
    g.wait_gone(p1, secs(5));
    let took = t0.elapsed();
    // interval + timeout, twice.
    g.check(
        took >= ms(800) && took < secs(4),
        &format!("two timed-out checks take ~1 s (took {took:?})"),
    );
    let p2 = g.wait_new_pid("h", p1);
    g.check(
        g.svc("h").is_some_and(|s| s.restarts == 1),
        "one restart for the timed-out checks",
    );
    // the lines are the contract: going(8) LOGGING
    for line in [
        format!("h: health-check hook timed out, pid {c1}, killing it"),
        format!("h: health check killed by signal KILL, 1 of 2, pid {p1}"),
        format!("h: health check killed by signal KILL, 2 times in a row, pid {p1}, restarting"),
    ] {
        g.check(g.log_has(&line), &format!("no line {line:?}"));
    }
    let cs: Vec<i32> = lines(&checks)
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    for &c in cs.iter().take(2) {
        g.check(!alive(c), &format!("timed-out check {c} is gone"));
    }
    let mut known = cs.clone();
    known.extend([p1, p2]);
    shut_down(&mut g, &known);
}

#[test]
fn health_check_pass_resets_count() {
    let t = TempDir::new("hk-hreset");
    let count = t.join("count");
    // Fails every other time: never twice in a row.
    let check = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {c}; [ $((n % 2)) -eq 0 ]",
        c = count.display()
    );
    t.write_svc(
        "h.toml",
        &format!(
            "cmd = [\"/bin/sleep\", \"1005\"]\nstop-timeout = \"2s\"\n[health-check]\ncmd = {}\ninterval = \"100ms\"\nretries = 2\n",
            qa(&["/bin/sh", "-c", &check])
        ),
    );
    let mut g = Going::start(&t);
    let p = g.wait_running("h");
    // Runs 1, 3, 5 and 7 fail.
    g.wait(secs(5), "8 runs of the check", || {
        fs::read_to_string(&count)
            .ok()
            .and_then(|c| c.trim().parse::<u32>().ok())
            .is_some_and(|n| n >= 8)
    });
    let h = g.svc("h");
    g.check(
        h.as_ref().is_some_and(|s| s.restarts == 0) && g.running_pid("h") == Some(p) && alive(p),
        &format!("a passing check between failures resets the count: no restart: {h:?}"),
    );
    // Each failure is the first in a row (the lines are the contract:
    // going(8) LOGGING).
    g.wait_log_count(
        &format!("h: health check exited with status 1, 1 of 2, pid {p}"),
        4,
        secs(5),
    );
    g.check(!g.log_has("times in a row"), "a health restart logged");
    shut_down(&mut g, &[p]);
}

// ---------------------------------------------------------------- known bugs
//
// These fail with the current going; each names the behaviour it shows.

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = s
        .rfind(')')
        .map(|i| s[i + 1..].split_whitespace().collect())
        .unwrap_or_default();
    // rest[0] is field 3; utime and stime are fields 14 and 15.
    let f = |k: usize| {
        rest.get(k - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    f(14) + f(15)
}

#[test]
fn restart_during_before_is_not_a_failure() {
    let t = TempDir::new("hk-brestart");
    let pidf = t.join("pid");
    t.write_svc(
        "a.toml",
        &pid_service(&pidf, "before = [\"/bin/sleep\", \"0.5\"]"),
    );
    let (mut g, sock) = start_ctl(&t);
    // The restart must come while the before hook runs, however slow the
    // machine: wait for the hook's process rather than a fixed time.
    g.wait(secs(5), "the before hook running", || {
        descendants(g.pid)
            .into_iter()
            .any(|p| cmdline(p) == ["/bin/sleep", "0.5"])
    });
    ctl_ok(&g, &sock, "restart", "a");
    let pid = g.pid_from_file(&pidf);
    // The pid file can appear before going says the service is running.
    g.wait(secs(5), "a running", || g.running_pid("a").is_some());
    // A failed start would count a restart.
    let s = g.svc("a");
    g.check(
        g.running_pid("a") == Some(pid) && s.as_ref().is_some_and(|s| s.restarts == 0),
        &format!(
            "a restart during the before hook starts the service once, without a failed start: {s:?}"
        ),
    );
    shut_down(&mut g, &[pid]);
}

#[test]
fn a_check_left_from_the_previous_process_does_not_spin() {
    let t = TempDir::new("hk-hspin");
    t.write_svc(
        "h.toml",
        "cmd = [\"/bin/sleep\", \"1006\"]\nstop-timeout = \"2s\"\nhealth-check = { cmd = [\"/bin/sleep\", \"10\"], interval = \"200ms\", timeout = \"3s\" }\n",
    );
    let mut g = Going::start(&t);
    let p1 = g.wait_running("h");
    // The first check is running; the service dies and comes back.
    std::thread::sleep(ms(350));
    kill(p1, SIGKILL);
    let p2 = g.wait_new_pid("h", p1);
    std::thread::sleep(ms(400));
    let c0 = cpu_ticks(g.pid);
    std::thread::sleep(secs(1));
    let used = cpu_ticks(g.pid) - c0;
    g.check(
        used < 20,
        &format!("going used {used} ticks of CPU in 1 s while waiting"),
    );
    shut_down(&mut g, &[p1, p2]);
}

#[test]
fn a_hook_that_cannot_run_is_named() {
    let t = TempDir::new("hk-noexec");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1007\"]\nstop-timeout = \"1s\"\nstop = \"/nonexistent/stopper\"\n",
    );
    let (mut g, sock) = start_ctl(&t);
    let pid = g.wait_running("a");
    ctl_ok(&g, &sock, "stop", "a");
    // Only the log names the hook (the line is the contract: going(8)
    // LOGGING).
    g.wait_log("a: cannot run stop hook: ", secs(3));
    let line = log_lines(&g, "a: cannot run stop hook: ").remove(0);
    g.check(
        line.contains("/nonexistent/stopper"),
        &format!("the reason names the hook's program: {line}"),
    );
    shut_down(&mut g, &[pid]);
}
