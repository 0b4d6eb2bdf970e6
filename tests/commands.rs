//! `going signal`, `pid`, `wait`, `start -w`, `restart -w` and the exit
//! status of `going status NAME`, on real processes: each command's exit
//! codes, waits that end only at readiness (the service touches a file
//! right before it says it is ready: a wait that returns before that file
//! exists returned early), and waits that fail on a service that ended for
//! good.

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

/// A TOML service running `script` with /bin/sh, plus `extra` lines.
fn sh(script: &str, extra: &str) -> String {
    format!(
        "cmd = {}\nstop-timeout = \"2s\"\n{extra}\n",
        qa(&["/bin/sh", "-c", script])
    )
}

/// A service that gets ready (ready-fd 3) after `delay` seconds, touching
/// `stamp` right before it says so.
fn slow_ready(stamp: &Path, delay: &str) -> String {
    let script = format!(
        "sleep {delay}; touch {}; echo >&3; exec sleep 1000",
        stamp.display()
    );
    sh(&script, "ready-fd = 3\nstart-timeout = \"20s\"")
}

/// `going ARGS... -s SOCK`, bounded in time.
fn ctl(g: &Going, args: &[&str]) -> Output {
    let sock = g.sock.clone().expect("a socket path");
    let sock = sock.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-s", &sock]);
    run_going(&all)
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn signal_reaches_the_service_process_only() {
    let t = TempDir::new("cmd-signal");
    let got = t.join("leader.hup");
    let child_got = t.join("child.hup");
    // The leader traps HUP; a child in its process group traps it too, and
    // must not get it: the signal is for the service's process.
    let script = format!(
        "( trap 'echo hup >> {c}' HUP; while :; do sleep 0.1; done ) & \
         trap 'echo hup >> {l}' HUP; trap 'echo usr1 >> {l}' USR1; \
         while :; do sleep 0.1; done",
        c = child_got.display(),
        l = got.display()
    );
    t.write_svc("trap.toml", &sh(&script, ""));
    t.write_svc("off.toml", &sleep_service(1001, "enabled = false"));
    let g = Going::start(&t);
    let pid = g.wait_running("trap");
    // The traps are set once the child exists.
    g.wait(secs(5), "the trapping child", || !children(pid).is_empty());
    std::thread::sleep(ms(200));

    let out = ctl(&g, &["signal", "HUP", "trap"]);
    assert_eq!(code(&out), 0, "signal HUP: {}", stderr(&out));
    g.wait(secs(5), "the service to see HUP", || {
        std::fs::read_to_string(&got).is_ok_and(|s| s.contains("hup"))
    });
    // One at a time: a signal still pending would absorb the next.
    for (n, spelling) in ["SIGUSR1", "usr1", "10"].into_iter().enumerate() {
        assert_eq!(
            code(&ctl(&g, &["signal", spelling, "trap"])),
            0,
            "{spelling}"
        );
        g.wait(secs(5), &format!("USR1 as {spelling}"), || {
            std::fs::read_to_string(&got).is_ok_and(|s| s.matches("usr1").count() == n + 1)
        });
    }
    std::thread::sleep(ms(300));
    g.check(!child_got.exists(), "the signal reached the process group");
    assert_eq!(g.running_pid("trap"), Some(pid), "the service survived");

    // A bad signal is a usage error; nothing is sent.
    for bad in [
        &["signal", "HANGUP", "trap"][..],
        &["signal", "0", "trap"],
        &["signal", "HUP"],
    ] {
        let out = ctl(&g, bad);
        assert_eq!(code(&out), 2, "{bad:?}: {}", stderr(&out));
    }
    // Unknown: exit 1, nothing sent to the others either.
    let out = ctl(&g, &["signal", "USR1", "trap", "nope"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("unknown service or group: nope"),
        "{}",
        stderr(&out)
    );
    // Not running: exit 1 with a line naming it; the others get it.
    let out = ctl(&g, &["signal", "HUP", "off", "trap"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("going: off is not running"),
        "{}",
        stderr(&out)
    );
    g.wait(secs(5), "the second HUP", || {
        std::fs::read_to_string(&got).is_ok_and(|s| s.matches("hup").count() == 2)
    });
}

#[test]
fn pid_prints_what_status_shows() {
    let t = TempDir::new("cmd-pid");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    t.write_svc("b.toml", &sleep_service(1002, "groups = \"both\""));
    t.write_svc("off.toml", &sleep_service(1003, "enabled = false"));
    let g = Going::start(&t);
    g.wait_running("a");
    g.wait_running("b");
    let a = g.svc("a").and_then(|s| s.pid).expect("a's pid");
    let b = g.svc("b").and_then(|s| s.pid).expect("b's pid");

    let out = ctl(&g, &["pid", "b", "a"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{b}\n{a}\n"), "in the order named");
    let out = ctl(&g, &["pid", "both", "b"]);
    assert_eq!(stdout(&out), format!("{b}\n"), "a group, each once");

    // One not running: the others printed, exit 1, a line naming it.
    let out = ctl(&g, &["pid", "a", "off"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), format!("{a}\n"));
    assert_eq!(stderr(&out), "going: off is not running\n");
    let out = ctl(&g, &["pid", "a", "nope"]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("unknown service or group: nope"));
    assert_eq!(code(&ctl(&g, &["pid"])), 2);
}

#[test]
fn wait_returns_only_after_readiness() {
    let t = TempDir::new("cmd-wait");
    let stamp = t.join("db.ready");
    t.write_svc("db.toml", &slow_ready(&stamp, "1"));
    let g = Going::start(&t);
    g.wait_up();
    let begun = Instant::now();
    let out = ctl(&g, &["wait", "-t", "8s", "db"]);
    let took = begun.elapsed();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    g.check(stamp.exists(), "wait returned before the service was ready");
    eprintln!("wait returned after {took:?} (ready after 1 s)");
    assert!(took >= ms(700), "returned after only {took:?}");
    assert!(took < secs(5), "returned late, after {took:?}");
    let db = g.svc("db").expect("db");
    assert!(db.state == "running" && db.ready, "{db:?}");
    // Already ready: at once.
    let begun = Instant::now();
    assert_eq!(code(&ctl(&g, &["wait", "db"])), 0);
    assert!(begun.elapsed() < secs(2));
}

#[test]
fn wait_fails_on_a_service_that_ended_for_good() {
    let t = TempDir::new("cmd-wait-fail");
    t.write_svc("job.toml", &sh("sleep 0.5; exit 1", "restart = \"never\""));
    t.write_svc("once.toml", &sh("sleep 0.3; exit 0", "restart = \"never\""));
    t.write_svc("off.toml", &sleep_service(1001, "enabled = false"));
    // Never says it is ready.
    t.write_svc(
        "mute.toml",
        &sh("exec sleep 1000", "ready-fd = 3\nstart-timeout = \"60s\""),
    );
    let g = Going::start(&t);
    g.wait_up();

    let begun = Instant::now();
    let out = ctl(&g, &["wait", "-t", "8s", "job"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "going: job: exited with status 1, not restarted\n"
    );
    assert!(
        begun.elapsed() < secs(4),
        "not as soon as it ended: {:?}",
        begun.elapsed()
    );
    // A one-shot that exited 0 is done.
    assert_eq!(code(&ctl(&g, &["wait", "-t", "8s", "once"])), 0);

    let out = ctl(&g, &["wait", "-t", "2s", "off"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("off: disabled"), "{}", stderr(&out));

    // The end of -t: which service, and why.
    let begun = Instant::now();
    let out = ctl(&g, &["wait", "-t", "1s", "mute", "once"]);
    let took = begun.elapsed();
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "going: mute: not ready within 1.0s (running, not ready)\n"
    );
    assert!(took >= ms(900) && took < secs(4), "{took:?}");

    // Stopped by command while waited for.
    let mut waiting = spawn_ctl(&g, &["wait", "-t", "8s", "mute"]);
    std::thread::sleep(ms(300));
    assert_eq!(code(&ctl(&g, &["stop", "mute"])), 0);
    let out = finish(&mut waiting);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("mute: stopped by going stop"),
        "{}",
        stderr(&out)
    );

    assert_eq!(code(&ctl(&g, &["wait", "nope"])), 1);
    assert_eq!(code(&ctl(&g, &["wait"])), 2);
    assert_eq!(code(&ctl(&g, &["wait", "-w", "job"])), 2);
}

/// `going ARGS... -s SOCK` in the background.
fn spawn_ctl(g: &Going, args: &[&str]) -> Child {
    let sock = g.sock.clone().expect("a socket path");
    Command::new(BIN)
        .args(args)
        .arg("-s")
        .arg(sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn going client")
}

/// The output of a background client, killed if it takes over 10 s.
fn finish(child: &mut Child) -> Output {
    let done = wait_until(secs(10), || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = child.kill();
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    if let Some(s) = child.stdout.as_mut() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(s) = child.stderr.as_mut() {
        let _ = s.read_to_end(&mut stderr);
    }
    let status = child.wait().expect("wait client");
    assert!(done, "the client did not end within 10 s");
    Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn start_w_waits_for_readiness_or_failure() {
    let t = TempDir::new("cmd-start-w");
    let stamp = t.join("db.ready");
    t.write_svc("db.toml", &slow_ready(&stamp, "1"));
    // Ends before it is ready.
    t.write_svc("crash.toml", &sh("sleep 0.2; exit 3", "ready-fd = 3"));
    let g = Going::start(&t);
    g.wait_running("db");
    assert_eq!(code(&ctl(&g, &["stop", "db", "crash"])), 0);
    g.wait_state("db", "stopped", secs(5));
    g.wait_state("crash", "stopped", secs(5));
    std::fs::remove_file(&stamp).ok();

    let begun = Instant::now();
    let out = ctl(&g, &["start", "-w", "-t", "8s", "db"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    g.check(
        stamp.exists(),
        "start -w returned before the service was ready",
    );
    assert!(begun.elapsed() >= ms(700), "{:?}", begun.elapsed());
    // Already running and ready: at once.
    assert_eq!(code(&ctl(&g, &["start", "-w", "db"])), 0);

    // Its start fails (the process ends before it is ready).
    let out = ctl(&g, &["start", "-w", "-t", "8s", "crash"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "going: crash: failed to start: exited with status 3\n"
    );
    // Without -w, -t still bounds only the exchange.
    assert_eq!(code(&ctl(&g, &["stop", "-t", "2s", "crash"])), 0);
}

#[test]
fn restart_w_returns_with_the_new_process_ready() {
    let t = TempDir::new("cmd-restart-w");
    let stamp = t.join("db.ready");
    t.write_svc("db.toml", &slow_ready(&stamp, "0.5"));
    let g = Going::start(&t);
    g.wait_svc("db", "ready", secs(5), |s| s.ready);
    let old = g.svc("db").and_then(|s| s.pid).expect("db's pid");
    std::fs::remove_file(&stamp).expect("remove stamp");

    let out = ctl(&g, &["restart", "-w", "-t", "8s", "db"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    g.check(
        stamp.exists(),
        "restart -w returned before the new run was ready",
    );
    let db = g.svc("db").expect("db");
    assert!(db.ready && db.state == "running", "{db:?}");
    let new = db.pid.expect("a pid");
    assert_ne!(new, old, "restart -w returned with the old process");
    let out = ctl(&g, &["pid", "db"]);
    assert_eq!(stdout(&out), format!("{new}\n"));
}

#[test]
fn status_name_passes_only_when_ready() {
    let t = TempDir::new("cmd-status-ready");
    let stamp = t.join("db.ready");
    t.write_svc("db.toml", &slow_ready(&stamp, "1.5"));
    let g = Going::start(&t);
    g.wait_svc("db", "running, not ready", secs(5), |s| {
        s.state == "running" && !s.ready
    });
    assert_eq!(code(&ctl(&g, &["status", "db"])), 1, "running, not ready");
    assert_eq!(code(&ctl(&g, &["status"])), 0, "no names");
    g.wait_svc("db", "ready", secs(5), |s| s.ready);
    assert_eq!(code(&ctl(&g, &["status", "db"])), 0);
    assert_eq!(code(&ctl(&g, &["status", "db", "nope"])), 1);
}

/// How many of `pids` hold a connected socket (a client talking to going).
fn sockets_of(pids: &[i32]) -> usize {
    pids.iter()
        .filter(|&&pid| {
            fds(pid)
                .iter()
                .any(|(_, target)| target.starts_with("socket:"))
        })
        .count()
}

#[test]
fn waiting_clients_that_give_up_free_their_place() {
    let t = TempDir::new("cmd-wait-hangup");
    t.write_svc(
        "mute.toml",
        &sh("exec sleep 1000", "ready-fd = 3\nstart-timeout = \"60s\""),
    );
    let g = Going::start(&t);
    g.wait_running("mute");
    // 32 held waits take every place (control socket limit).
    let mut clients: Vec<Child> = (0..32)
        .map(|_| spawn_ctl(&g, &["wait", "-t", "8s", "mute"]))
        .collect();
    // Every client connected and held (a dropped one exits at once), before
    // a probe that could itself take the last place.
    let held = wait_until(secs(5), || {
        let pids: Vec<i32> = clients.iter().map(|c| c.id() as i32).collect();
        sockets_of(&pids) == 32
    });
    assert!(held, "the 32 waiting clients did not all connect");
    assert!(
        clients.iter_mut().all(|c| matches!(c.try_wait(), Ok(None))),
        "a waiting client was turned away before the places were full"
    );
    let full = wait_until(secs(5), || code(&ctl(&g, &["status", "-t", "1s"])) == 1);
    assert!(full, "32 waits did not take every place");
    for c in &mut clients {
        let _ = c.kill();
    }
    for c in &mut clients {
        let _ = c.wait();
    }
    let began = Instant::now();
    let freed = wait_until(secs(3), || code(&ctl(&g, &["status", "-t", "1s"])) == 0);
    assert!(freed, "places not freed after the clients hung up");
    eprintln!("freed within {:?}", began.elapsed());
}

#[test]
fn a_wait_outlasts_the_usual_client_deadline_and_a_half_close() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let t = TempDir::new("cmd-wait-raw");
    t.write_svc(
        "mute.toml",
        &sh("exec sleep 1000", "ready-fd = 3\nstart-timeout = \"60s\""),
    );
    let g = Going::start(&t);
    g.wait_running("mute");
    let sock = g.sock.clone().expect("a socket path");
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream.set_read_timeout(Some(secs(15))).expect("timeout");
    let begun = Instant::now();
    // As `socat` or `nc -N` do: the request, then the end of what is sent.
    stream.write_all(b"wait -t 6s mute\n").expect("send");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let took = begun.elapsed();
    assert_eq!(
        answer,
        "1\ngoing: mute: not ready within 6.0s (running, not ready)\n"
    );
    assert!(
        took >= ms(5900) && took < secs(9),
        "answered after {took:?}"
    );
}
