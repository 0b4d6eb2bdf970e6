//! going's own death and upgrade: a going started after another died on the
//! same directory takes over the services still running (never a second
//! copy), and SIGUSR2 execs a new going that keeps every child.

mod common;
use common::*;
use std::fs;

/// Processes (all of this machine's) running exactly `argv`.
fn running_exactly(argv: &[&str]) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if alive(pid) && cmdline(pid) == argv {
            found.push(pid);
        }
    }
    found
}

fn sleeping(n: u32) -> Vec<i32> {
    running_exactly(&["/bin/sleep", &n.to_string()])
}

/// SIGKILL, then wait for the process to be gone (not reaped by us: going
/// runs under the test harness, which reaps it in wait_exit).
fn kill_going(g: &mut Going) {
    g.signal(SIGKILL);
    let died = g.wait_exit(secs(5)).is_some();
    g.check(died, "going did not die of SIGKILL");
}

/// The inode of the Unix socket listening at `path` (/proc/net/unix): a
/// going that executed itself again binds its control socket anew.
fn listening_inode(path: &Path) -> Option<u64> {
    let path = path.display().to_string();
    fs::read_to_string("/proc/net/unix")
        .ok()?
        .lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // Flags 00010000: __SO_ACCEPTCON, a listening socket.
            (w.len() == 8 && w[3] == "00010000" && w[7] == path)
                .then(|| w[6].parse().ok())
                .flatten()
        })
}

/// Waits until going says `name` runs the process `pid` (as going sees it):
/// a process kept, not a second copy started.
fn wait_kept(g: &Going, name: &str, pid: i32) {
    g.wait_svc(name, &format!("running, pid {pid}"), secs(5), |s| {
        s.state == "running" && s.pid == Some(pid)
    });
}

/// Waits until the state file names `pid`.
fn wait_recorded(t: &TempDir, g: &Going, pid: i32) {
    let path = t.join("going.state");
    g.wait(secs(5), &format!("pid {pid} in {}", path.display()), || {
        fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(2) == Some(&pid.to_string()))
    });
}

#[test]
fn a_going_killed_and_started_again_adopts_and_never_duplicates() {
    let t = TempDir::new("adopt");
    t.write_svc("a.toml", &sleep_service(7101, ""));
    t.write_svc("b.toml", &sleep_service(7102, "instances = 2"));
    let mut g1 = Going::start(&t);
    let a = g1.wait_running("a");
    let b0 = g1.wait_running("b@0");
    let b1 = g1.wait_running("b@1");
    wait_recorded(&t, &g1, b1);
    wait_recorded(&t, &g1, a);
    kill_going(&mut g1);
    let g2 = Going::start(&t);
    for (name, pid) in [("a", a), ("b@0", b0), ("b@1", b1)] {
        wait_kept(&g2, name, pid);
    }
    // the line is the contract: going(8) CRASHES AND UPGRADES
    g2.check(
        g2.log_has(&format!(" a: adopted, pid {a}, running for ")),
        "no line \"a: adopted, pid N, running for DURATION\"",
    );
    g2.check(
        sleeping(7101) == vec![a] && sleeping(7102).len() == 2,
        &format!(
            "one copy of each: a {:?}, b {:?}",
            sleeping(7101),
            sleeping(7102)
        ),
    );
    // Status shows the adopted process, running.
    let out = run_going(&["status", "-s", &t.s("going.sock"), "a"]);
    let text = String::from_utf8_lossy(&out.stdout);
    g2.check(
        out.status.success() && text.contains("running") && text.contains(&a.to_string()),
        &format!("status of the adopted a: {text}"),
    );
    // Not going's child, yet its death is seen (pidfd) and it is restarted.
    kill(a, SIGKILL);
    let a2 = g2.wait_new_pid("a", a);
    let s = g2.svc("a");
    g2.check(
        s.as_ref().and_then(|s| s.last_exit.as_deref()) == Some("unknown"),
        &format!("the adopted a's end, in status: {s:?}"),
    );
    // the line is the contract: going(8) CRASHES AND UPGRADES
    g2.check(
        g2.log_has(" a: ended (status unknown: adopted, not going's child) after "),
        "no line \"a: ended (status unknown: ...) after DURATION\"",
    );
    g2.check(
        sleeping(7101) == vec![a2],
        &format!("after the restart: {:?}", sleeping(7101)),
    );
    // An orderly stop stops the adopted ones too, and removes the state.
    drop(g2);
    g1.check(
        sleeping(7102).is_empty() && !t.join("going.state").exists(),
        &format!("after the stop: b {:?}", sleeping(7102)),
    );
}

#[test]
fn a_file_changed_or_removed_while_going_was_dead_takes_effect() {
    let t = TempDir::new("adoptchg");
    t.write_svc("a.toml", &sleep_service(7111, ""));
    t.write_svc("b.toml", &sleep_service(7112, ""));
    t.write_svc("c.toml", &sleep_service(7113, ""));
    let mut g1 = Going::start(&t);
    let a = g1.wait_running("a");
    let b = g1.wait_running("b");
    let c = g1.wait_running("c");
    for pid in [a, b, c] {
        wait_recorded(&t, &g1, pid);
    }
    kill_going(&mut g1);
    t.write_svc("a.toml", &sleep_service(7114, ""));
    t.remove_svc("b.toml");
    let g2 = Going::start(&t);
    wait_kept(&g2, "c", c);
    g2.wait_gone(a, secs(5));
    g2.wait_gone(b, secs(5));
    let a2 = g2.wait_for(secs(5), "the new a", || sleeping(7114).first().copied());
    g2.check(
        alive(a2) && alive(c) && sleeping(7111).is_empty(),
        "a runs its new definition and c is untouched",
    );
    let inner = g2.wait_running("a");
    g2.check(
        inner == a2,
        &format!("status shows a as pid {inner}, not {a2}"),
    );
    g2.check(g2.svc("b").is_none(), "status still shows b");
    // the lines are the contract: going(8) CRASHES AND UPGRADES
    for line in [
        " a: definition changed while going was not running, restarting".to_string(),
        format!(" b: no longer defined, sending TERM to pid {b}"),
    ] {
        g2.check(g2.log_has(&line), &format!("no line {line:?}"));
    }
}

#[test]
fn a_service_that_execs_on_after_its_start_is_still_adopted() {
    let t = TempDir::new("adoptexec");
    // Recorded as `sh -c ...`; a moment later it is /bin/sleep.
    t.write_svc(
        "a.toml",
        "cmd = \"sleep 0.3; exec /bin/sleep 7241\"\nshell = true\n",
    );
    let mut g1 = Going::start(&t);
    let a = g1.wait_running("a");
    wait_recorded(&t, &g1, a);
    g1.wait(secs(5), "the exec of sleep", || sleeping(7241) == vec![a]);
    kill_going(&mut g1);
    let g2 = Going::start(&t);
    wait_kept(&g2, "a", a);
    std::thread::sleep(ms(300));
    g2.check(sleeping(7241) == vec![a], "a second copy of a was started");
}

#[test]
fn a_stranger_with_a_recorded_pid_is_left_alone() {
    let t = TempDir::new("adoptstranger");
    t.write_svc("a.toml", &sleep_service(7121, ""));
    // A live process the state file claims, with the wrong start time.
    let mut stranger = std::process::Command::new("/bin/sleep")
        .arg("7122")
        .spawn()
        .expect("spawn sleep");
    let pid = stranger.id() as i32;
    // FNV-1a of its command line, as going records it.
    let cmd = b"/bin/sleep\x007122\x00"
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let cmd = format!("{cmd:016x}");
    fs::write(
        t.join("going.state"),
        format!("going-state 1 1\nsvc a {pid} 1 0 0 {cmd}\n"),
    )
    .expect("write state");
    let g = Going::start(&t);
    let a = g.wait_running("a");
    let s = g.svc("a");
    g.check(
        a != pid && alive(pid) && s.as_ref().and_then(|s| s.pid) == Some(a),
        &format!("a stranger was adopted instead of starting a: {s:?}"),
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}

#[test]
fn an_administrative_stop_outlives_going() {
    let t = TempDir::new("adoptdown");
    t.write_svc("a.toml", &sleep_service(7131, ""));
    t.write_svc("b.toml", &sleep_service(7132, ""));
    let mut g1 = Going::start(&t);
    let a = g1.wait_running("a");
    let b = g1.wait_running("b");
    let out = run_going(&["stop", "-s", &t.s("going.sock"), "a"]);
    g1.check(out.status.success(), "going stop a");
    g1.wait_gone(a, secs(5));
    wait_recorded(&t, &g1, b);
    g1.wait(secs(5), "a recorded as down", || {
        fs::read_to_string(t.join("going.state"))
            .unwrap_or_default()
            .contains("down a\n")
    });
    kill_going(&mut g1);
    let g2 = Going::start(&t);
    wait_kept(&g2, "b", b);
    g2.sync(&t);
    std::thread::sleep(ms(300));
    let s = g2.svc("a");
    g2.check(
        sleeping(7131).is_empty()
            && s.as_ref().is_some_and(|s| {
                s.state == "stopped" && s.admin_down && s.pid.is_none() && s.last_exit.is_none()
            }),
        &format!("a was started although it had been stopped with going stop: {s:?}"),
    );
}

#[test]
fn sigusr2_execs_a_new_going_that_keeps_its_children() {
    let t = TempDir::new("upgrade");
    t.write_svc("a.toml", &sleep_service(7141, ""));
    // Output through going, so the pipe must survive the exec.
    t.write_svc(
        "talk.toml",
        "cmd = \"i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done\"\nshell = true\nstdout = \"syslog\"\n",
    );
    let g = Going::start(&t);
    let a = g.wait_running("a");
    // The service's output lines are the contract: going(8) LOGGING.
    g.wait_log(": tick 3\n", secs(5));
    let sock = t.join("going.sock");
    let bound = listening_inode(&sock);
    g.check(bound.is_some(), "no listening control socket");
    g.signal(SIGUSR2);
    g.wait(secs(5), "the new going's control socket", || {
        listening_inode(&sock).is_some_and(|i| Some(i) != bound)
    });
    wait_kept(&g, "a", a);
    g.check(
        alive(g.pid) && stat(a).map(|s| s.ppid) == Some(g.pid),
        "after the exec, a is still going's child",
    );
    // the line is the contract: going(8) LOGGING
    g.wait_log_count("going 1.0.0 started", 2, secs(5));
    // The output pipe came across: the ticks go on being logged (the
    // lines are the contract: going(8) LOGGING).
    let ticks = g.log_count(": tick ");
    g.wait_log_count(": tick ", ticks + 3, secs(5));
    // Its child: the exit status is known again.
    kill(a, SIGKILL);
    g.wait_svc("a", "last exit signal KILL", secs(5), |s| {
        s.last_exit.as_deref() == Some("signal KILL")
    });
    g.wait_new_pid("a", a);
    let out = run_going(&["status", "-s", &t.s("going.sock")]);
    g.check(out.status.success(), "status after the upgrade");
}

#[test]
fn a_failed_upgrade_leaves_going_running() {
    let t = TempDir::new("upgradefail");
    t.write_svc("a.toml", &sleep_service(7151, ""));
    let copy = t.join("going-copy");
    let g = Going::start_with(
        &t,
        Opts {
            pre: format!(
                "cp \"$0\" '{}' && exec '{}' \"$@\";",
                copy.display(),
                copy.display()
            ),
            ..Opts::default()
        },
    );
    let a = g.wait_running("a");
    // The binary is gone: the exec must fail, and going carry on.
    fs::remove_file(&copy).expect("remove the copy");
    g.signal(SIGUSR2);
    // Only the log says the exec was tried: the line is the contract:
    // going(8) CRASHES AND UPGRADES.
    g.wait_log("upgrade failed: cannot execute ", secs(5));
    let out = run_going(&["status", "-s", &t.s("going.sock"), "a"]);
    g.check(
        out.status.success() && alive(a) && alive(g.pid),
        "going and a after a failed upgrade",
    );
    // A new binary at the same path: the upgrade goes through.
    fs::copy(BIN, &copy).expect("copy going");
    let exe = |p: i32| fs::read_link(format!("/proc/{p}/exe")).ok();
    g.check(
        exe(g.pid).is_some_and(|e| e.display().to_string().ends_with(" (deleted)")),
        &format!("going's binary before the upgrade: {:?}", exe(g.pid)),
    );
    g.signal(SIGUSR2);
    g.wait(secs(5), "going to run the new binary", || {
        exe(g.pid).as_deref() == Some(copy.as_path())
    });
    wait_kept(&g, "a", a);
    kill(a, SIGKILL);
    g.wait_new_pid("a", a);
}

#[test]
fn pid1_survives_an_upgrade() {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new("upgradepid1");
    t.write_svc("a.toml", &sleep_service(7161, ""));
    let g = Going::start_pid1(&t);
    g.wait_running("a");
    let outer = g.wait_for(secs(5), "a in the namespace", || {
        sleeping(7161).first().copied()
    });
    let inner = g.svc("a").and_then(|s| s.pid).unwrap_or(0);
    let sock = t.join("going.sock");
    let bound = listening_inode(&sock);
    g.check(bound.is_some(), "no listening control socket");
    g.signal(SIGUSR2);
    g.wait(secs(5), "the new going's control socket", || {
        listening_inode(&sock).is_some_and(|i| Some(i) != bound)
    });
    wait_kept(&g, "a", inner);
    std::thread::sleep(ms(200));
    g.check(
        alive(g.pid) && alive(outer) && sleeping(7161) == vec![outer],
        "the namespace and its service survived the upgrade of PID 1",
    );
}

/// going under an init that respawns it: busybox init with `::respawn:`
/// (and a shell loop, as sysvinit's `respawn` does it), PID 1 of a
/// namespace, in a chroot. SIGKILL of going leaves exactly one copy.
fn respawned_going_keeps_one_copy(init: &str) {
    if !can_unshare() {
        return;
    }
    let t = TempDir::new(&format!("respawn{init}"));
    let root = t.join("root");
    if busybox_chroot(&root).is_none() {
        eprintln!("SKIPPED: /bin/busybox is not installed");
        return;
    }
    for dir in ["etc/going.d", "proc", "run", "dev"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    copy_with_libraries(Path::new(BIN), &root, "bin/going");
    fs::write(
        root.join("etc/going.d/a.toml"),
        "cmd = [\"/bin/busybox\", \"sleep\", \"7171\"]\n",
    )
    .expect("write a.toml");
    fs::write(root.join("etc/going.d/b"), "cmd=/bin/busybox sleep 7172\n").expect("write b");
    let going = "/bin/going -l stderr -s /run/going.sock -d /etc/going.d";
    let mount = "/bin/busybox mount -t proc proc /proc";
    let null = "/bin/busybox mknod -m 666 /dev/null c 1 3";
    let pid1 = match init {
        "busybox" => {
            fs::write(
                root.join("etc/inittab"),
                format!("::sysinit:{mount}\n::sysinit:{null}\n::respawn:{going}\n"),
            )
            .expect("write inittab");
            vec!["/bin/busybox", "init"]
        }
        _ => {
            fs::write(
                root.join("respawn.sh"),
                format!("{mount}\n{null}\nwhile :; do {going}; /bin/busybox sleep 0.2; done\n"),
            )
            .expect("write respawn.sh");
            vec!["/bin/busybox", "sh", "/respawn.sh"]
        }
    };
    let log = fs::File::create(t.join("init.log")).expect("log");
    let child = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--mount", "chroot"])
        .arg(&root)
        .args(&pid1)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn init");
    let host = child.id() as i32;
    // However the test ends, the namespace ends: its init, and with it
    // everything in it, is killed (unshare alone dying would not do).
    struct Namespace(std::process::Child);
    impl Drop for Namespace {
        fn drop(&mut self) {
            let host = self.0.id() as i32;
            for p in descendants(host) {
                kill(p, SIGKILL);
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _namespace = Namespace(child);
    let find = |argv: &[&str]| -> Vec<i32> {
        descendants(host)
            .into_iter()
            .filter(|&p| alive(p) && cmdline(p) == argv)
            .collect()
    };
    let going_argv: Vec<&str> = going.split(' ').collect();
    let a_argv = ["/bin/busybox", "sleep", "7171"];
    let b_argv = ["/bin/busybox", "sleep", "7172"];
    let report = || fs::read_to_string(t.join("init.log")).unwrap_or_default();
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + secs(10);
        while !f() {
            if std::time::Instant::now() > deadline {
                panic!("{init}: timed out waiting for {what}\n{}", report());
            }
            std::thread::sleep(ms(20));
        }
    };
    wait("going and both services", &|| {
        find(&going_argv).len() == 1 && find(&a_argv).len() == 1 && find(&b_argv).len() == 1
    });
    let (a, b) = (find(&a_argv), find(&b_argv));
    for round in 0..3 {
        let old = find(&going_argv);
        // Recorded before the kill.
        wait("the state file", &|| {
            fs::read_to_string(root.join("run/going.state"))
                .is_ok_and(|s| s.lines().filter(|l| l.starts_with("svc ")).count() == 2)
        });
        for &p in &old {
            kill(p, SIGKILL);
        }
        wait("a new going", &|| {
            let now = find(&going_argv);
            now.len() == 1 && now != old
        });
        std::thread::sleep(ms(1500));
        let (a_now, b_now) = (find(&a_argv), find(&b_argv));
        if a_now != a || b_now != b {
            panic!(
                "{init}, round {round}: a {a:?} -> {a_now:?}, b {b:?} -> {b_now:?}\n{}",
                report()
            );
        }
    }
}

#[test]
fn busybox_init_respawning_going_keeps_one_copy() {
    respawned_going_keeps_one_copy("busybox");
}

#[test]
fn sysvinit_style_respawn_keeps_one_copy() {
    respawned_going_keeps_one_copy("loop");
}

use std::path::Path;

/// Copies a binary into a chroot with the libraries ldd names.
fn copy_with_libraries(bin: &Path, root: &Path, to: &str) {
    let dst = root.join(to);
    fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
    fs::copy(bin, &dst).expect("copy binary");
    let out = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .expect("ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            let lib = root.join(p.trim_start_matches('/'));
            fs::create_dir_all(lib.parent().expect("parent")).expect("mkdir");
            fs::copy(p, &lib).expect("copy library");
        }
    }
}

/// Every descriptor going opens itself is close-on-exec, so none can leak
/// into a service, a hook, or the going an upgrade execs.
#[test]
fn all_of_goings_own_descriptors_are_close_on_exec() {
    let t = TempDir::new("cloexec");
    t.write_svc(
        "talk.toml",
        "cmd = \"while :; do echo hi; sleep 1; done\"\nshell = true\nstdout = \"syslog\"\nstderr = \"syslog\"\n",
    );
    t.write_svc("n.toml", &sleep_service(7231, "ready = \"notify\""));
    let g = Going::start(&t);
    g.wait_running("talk");
    // A control client that stays connected while the descriptors are read.
    let _client = std::os::unix::net::UnixStream::connect(t.join("going.sock")).expect("connect");
    std::thread::sleep(ms(200));
    let fds = fds(g.pid);
    g.check(fds.len() >= 8, &format!("going's descriptors: {fds:?}"));
    for (fd, target) in fds.into_iter().filter(|(fd, _)| *fd > 2) {
        let flags = fd_flags(g.pid, fd).unwrap_or(0);
        g.check(
            flags & 0o2000000 != 0,
            &format!("fd {fd} ({target}) is not close-on-exec: flags {flags:o}"),
        );
    }
}

/// FNV-1a, as going hashes a command line for its state file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Field 22 of /proc/PID/stat: the start time, in clock ticks since boot.
fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The state file records the command line each process runs, also for
/// processes started while their exec is still loading the program (a
/// restart returns to going before /proc shows the new command line), and
/// the start time /proc gives, which going takes from the clock when it
/// can instead of reading /proc.
#[test]
fn recorded_command_lines_are_the_ones_running() {
    const N: u32 = 60;
    let t = TempDir::new("cmdhash");
    for i in 0..N {
        t.write_svc(&format!("s{i}.toml"), &sleep_service(7300 + i, ""));
    }
    let g = Going::start(&t);
    let first: Vec<i32> = (0..N).map(|i| g.wait_running(&format!("s{i}"))).collect();
    for &pid in &first {
        kill(pid, SIGKILL);
    }
    let path = t.join("going.state");
    // Every service recorded again, with a new pid.
    let lines = g.wait_for(secs(10), "all restarts recorded", || {
        let text = fs::read_to_string(&path).ok()?;
        let svc: Vec<Vec<String>> = text
            .lines()
            .filter(|l| l.starts_with("svc "))
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect();
        let fresh = svc
            .iter()
            .filter(|w| {
                w.get(2)
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|p| !first.contains(&p))
            })
            .count();
        (fresh == N as usize).then_some(svc)
    });
    for words in lines {
        let pid: i32 = words.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
        let recorded = words.get(6).cloned().unwrap_or_default();
        let running = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        g.check(
            recorded == format!("{:016x}", fnv1a(&running)),
            &format!("pid {pid} recorded as {recorded}, runs {running:?}"),
        );
        let recorded_start = words.get(3).and_then(|s| s.parse::<u64>().ok());
        g.check(
            recorded_start.is_some() && recorded_start == proc_start_time(pid),
            &format!(
                "pid {pid} recorded as started at {recorded_start:?}, /proc says {:?}",
                proc_start_time(pid)
            ),
        );
    }
}

/// going's own `uptime_seconds`, from `going status --json`.
fn going_uptime(g: &Going) -> Option<f64> {
    match g.status_json()?.get("going")?.get("uptime_seconds")? {
        Json::Num(n) => n.parse().ok(),
        _ => None,
    }
}

/// A crash loop in a long backoff and a service stopped with `going stop`
/// go through a new going (`upgrade`: SIGUSR2 to the same process; else
/// a `kill -9` and a second going on the same directory) unchanged: the
/// backoff is waited out, not cut short, the count of restarts and
/// flapping stay, the stopped service stays down, and going's uptime goes
/// on.
fn a_new_going_keeps_backoff_counts_and_down(tag: &str, upgrade: bool) {
    let t = TempDir::new(tag);
    t.write_svc("crash.toml", "cmd = [\"/bin/false\"]\n");
    t.write_svc("idle.toml", &sleep_service(7161, ""));
    let mut g = Going::start(&t);
    let idle = g.wait_running("idle");
    let out = run_going(&["stop", "-s", &t.s("going.sock"), "idle"]);
    g.check(out.status.success(), "going stop idle");
    g.wait_gone(idle, secs(5));
    // The 8th short run in a row is followed by a backoff of 6.4 s
    // (50 ms, doubling: going.d(5) BACKOFF), reached after 6.35 s.
    let before = g.wait_svc("crash", "backoff after 8 restarts", secs(20), |s| {
        s.state == "backoff" && s.restarts >= 8
    });
    let entered = std::time::Instant::now();
    let n = before.restarts;
    g.check(before.flapping, "a crash loop is flapping");
    let up = going_uptime(&g).unwrap_or(0.0);
    g.check(up >= 6.0, &format!("going has run 6 s at least: {up}"));
    let (g, first) = if upgrade {
        g.signal(SIGUSR2);
        // The line is the contract: going(8) LOGGING.
        g.wait_log_count("going 1.0.0 started", 2, secs(5));
        (g, None)
    } else {
        g.wait(secs(5), "crash's backoff recorded", || {
            fs::read_to_string(t.join("going.state"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&format!("mem crash {n} ")))
        });
        kill_going(&mut g);
        (Going::start(&t), Some(g))
    };
    g.wait_up();
    let after = g.svc("crash");
    g.check(
        after.as_ref().is_some_and(|s| {
            s.state == "backoff" && s.restarts == n && s.flapping && s.pid.is_none()
        }),
        &format!("crash in backoff, {n} restarts, flapping after the new going: {after:?}"),
    );
    let idle_now = g.svc("idle");
    g.check(
        idle_now
            .as_ref()
            .is_some_and(|s| s.admin_down && s.state == "stopped" && s.pid.is_none())
            && sleeping(7161).is_empty(),
        &format!("idle stays down: {idle_now:?}"),
    );
    let up_after = going_uptime(&g).unwrap_or(0.0);
    g.check(
        up_after >= up,
        &format!("going's uptime goes on: {up} s before, {up_after} s after"),
    );
    // Not started before the backoff's end (6.4 s after it began, which
    // was before `entered`), whatever the new going's own clock says.
    while entered.elapsed() < ms(5000) {
        let s = g.svc("crash");
        g.check(
            s.as_ref()
                .is_some_and(|s| s.state == "backoff" && s.restarts == n),
            &format!("crash restarted before its backoff's end: {s:?}"),
        );
        std::thread::sleep(ms(100));
    }
    // And started once it has ended.
    g.wait_svc("crash", "the restart after the backoff", secs(10), |s| {
        s.restarts > n
    });
    drop(first);
}

#[test]
fn an_upgrade_keeps_backoff_counts_flapping_down_and_uptime() {
    a_new_going_keeps_backoff_counts_and_down("upgradekeeps", true);
}

#[test]
fn an_adoption_keeps_backoff_counts_flapping_down_and_uptime() {
    a_new_going_keeps_backoff_counts_and_down("adoptkeeps", false);
}
