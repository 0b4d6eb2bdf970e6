//! `leftovers`: what a service's process leaves in its process group when
//! it ends on its own is stopped before the service starts again (for a
//! `pid-file` daemon, what is left in the daemon's group); `leftovers =
//! "keep"` leaves it alone.

mod common;
use common::*;
use std::path::Path;

const PYTHON: &str = "/usr/bin/python3";

/// An nginx stand-in. The command binds the port (and fails if it cannot,
/// as nginx does), then forks a master, optionally in a session of its own
/// (nginx's daemon()), and exits 0; the master writes its pid file and
/// forks a worker in its group; both hold the listening socket. Mode 2 is
/// Debian's nginx: the command writes the master's pid file itself, before
/// the master's setsid().
const NGINX: &str = r#"
import os, socket, sys, time
port, pid_file, worker_file, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
own_session = mode != "0"
def write_pid(pid):
    with open(pid_file + ".tmp", "w") as f:
        f.write("%d\n" % pid)
    os.rename(pid_file + ".tmp", pid_file)
s = socket.socket()
try:
    s.bind(("127.0.0.1", port))
except OSError as e:
    sys.stderr.write("bind() failed: %s\n" % e)
    sys.exit(1)
s.listen(8)
child = os.fork()
if child > 0:
    if mode == "2":
        write_pid(child)
    os._exit(0)
if mode == "2":
    time.sleep(0.1)
if own_session:
    os.setsid()
if os.fork() == 0:
    with open(worker_file + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(worker_file + ".tmp", worker_file)
    while True:
        time.sleep(1000)
if mode != "2":
    write_pid(os.getpid())
while True:
    time.sleep(1000)
"#;

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

/// The inodes of the sockets listening on 127.0.0.1:`port`.
fn listening(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
        .filter_map(|f| f.get(9).map(|inode| inode.to_string()))
        .collect()
}

/// `pid` holds one of the sockets `inodes`.
fn holds(pid: i32, inodes: &[String]) -> bool {
    fds(pid)
        .iter()
        .any(|(_, target)| inodes.iter().any(|i| *target == format!("socket:[{i}]")))
}

/// The pid in `path` once it differs from `old` and names a live process.
fn new_pid(g: &Going, path: &Path, old: Option<i32>) -> i32 {
    g.wait_for(
        secs(10),
        &format!("a new pid in {}", path.display()),
        || read_pid_file(path, ms(0)).filter(|&p| Some(p) != old && alive(p)),
    )
}

fn killed_daemon_recovers(mode: &str) {
    let t = TempDir::new(&format!("leftovers-nginx-{mode}"));
    let port = free_port();
    let (pid_file, worker_file) = (t.join("nginx.pid"), t.join("worker.pid"));
    let script = t.join("nginx.py");
    std::fs::write(&script, NGINX).expect("write the stand-in");
    let (port_s, session) = (port.to_string(), mode);
    let argv = [
        PYTHON,
        &t.s("nginx.py"),
        &port_s,
        &t.s("nginx.pid"),
        &t.s("worker.pid"),
        session,
    ];
    t.write_svc(
        "nginx.toml",
        &format!(
            "cmd = {}\npid-file = \"{}\"\nstop-timeout = \"2s\"\n",
            qa(&argv),
            pid_file.display()
        ),
    );
    let g = Going::start(&t);
    let master = new_pid(&g, &pid_file, None);
    let worker = new_pid(&g, &worker_file, None);
    g.wait_svc("nginx", "running as its master", secs(10), |s| {
        s.state == "running" && s.pid == Some(master)
    });
    g.check(
        holds(worker, &listening(port)),
        "the worker holds the listening socket",
    );
    kill(master, SIGKILL);
    // No hand on it: a new master runs, and going says so.
    let master2 = new_pid(&g, &pid_file, Some(master));
    let svc = g.wait_svc("nginx", "running as the new master", secs(10), |s| {
        s.state == "running" && s.pid == Some(master2)
    });
    g.check(
        svc.last_exit.as_deref() == Some("signal KILL"),
        "ended by KILL",
    );
    g.wait(secs(5), "the old worker gone", || stat(worker).is_none());
    let worker2 = new_pid(&g, &worker_file, Some(worker));
    let inodes = listening(port);
    g.check(!inodes.is_empty(), "the port is listened on");
    g.check(
        holds(master2, &inodes) && holds(worker2, &inodes),
        "the new master and its worker hold the port",
    );
    // It stays up: not a restart loop that status calls running.
    std::thread::sleep(ms(500));
    let later = g.svc("nginx");
    g.check(
        later.as_ref().is_some_and(|s| {
            s.state == "running" && s.pid == Some(master2) && s.restarts == svc.restarts
        }),
        &format!("still running as {master2}, got {later:?}"),
    );
}

#[test]
fn a_killed_daemon_in_its_commands_group_recovers() {
    killed_daemon_recovers("0");
}

#[test]
fn a_killed_daemon_with_a_session_of_its_own_recovers() {
    killed_daemon_recovers("1");
}

/// Debian's nginx: the pid file names the master before it leads a group.
#[test]
fn a_killed_daemon_named_before_its_setsid_recovers() {
    killed_daemon_recovers("2");
}

/// The processes under going running `sleep SECS`.
fn sleeps(g: &Going, secs: &str) -> Vec<i32> {
    descendants(g.pid)
        .into_iter()
        .filter(|&p| cmdline(p) == ["sleep", secs] && stat(p).is_some_and(|s| s.state != 'Z'))
        .collect()
}

/// A service that starts a `sleep SECS` in its group, writes its pid to
/// `sleeps`, and ends after a moment.
fn leaving_a_sleep(t: &TempDir, secs: &str, extra: &str) {
    let script = format!(
        "sleep {secs} & echo $! >> {}; sleep 0.2; exit 1",
        t.s("sleeps")
    );
    t.write_svc(
        "a.toml",
        &format!("cmd = {}\n{extra}", qa(&["/bin/sh", "-c", &script])),
    );
}

#[test]
fn leftovers_never_pile_up() {
    let t = TempDir::new("leftovers-pileup");
    leaving_a_sleep(&t, "4711", "");
    let g = Going::start(&t);
    let started = |t: &TempDir| {
        std::fs::read_to_string(t.join("sleeps"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let mut most = 0;
    g.wait(secs(15), "four restarts", || {
        most = most.max(sleeps(&g, "4711").len());
        most > 1 || started(&t) >= 5
    });
    g.check(most == 1, &format!("{most} leftover sleeps alive at once"));
    let svc = g.svc("a");
    g.check(
        svc.is_some_and(|s| s.restarts >= 4),
        "restarted after each exit",
    );
}

#[test]
fn kept_leftovers_survive_the_restart() {
    let t = TempDir::new("leftovers-keep");
    leaving_a_sleep(&t, "4712", "leftovers = \"keep\"\n");
    let g = Going::start(&t);
    // Two exits later, both sleeps still run.
    g.wait(secs(10), "two sleeps alive at once", || {
        sleeps(&g, "4712").len() >= 2
    });
    g.check(
        g.svc("a").is_some_and(|s| s.restarts >= 1),
        "restarted meanwhile",
    );
}

#[test]
fn a_leftover_that_ignores_the_stop_signal_is_killed_after_stop_timeout() {
    let t = TempDir::new("leftovers-kill");
    // SIG_IGN survives fork and exec: the sleep ignores TERM too.
    let script = format!(
        "trap '' TERM; sleep 4713 & echo $! > {}; sleep 0.2; exit 0",
        t.s("sleep.pid")
    );
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nrestart = \"on-failure\"\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    let g = Going::start(&t);
    let leftover = g.wait_for(secs(5), "the sleep", || {
        read_pid_file(&t.join("sleep.pid"), ms(0))
    });
    g.wait_svc("a", "stopping what it left", secs(5), |s| {
        s.state == "stopping" && s.last_exit.as_deref() == Some("exit 0")
    });
    let since = std::time::Instant::now();
    g.check(alive(leftover), "the sleep outlived its TERM");
    g.wait(secs(5), "the sleep killed", || stat(leftover).is_none());
    let took = since.elapsed();
    g.check(
        took >= ms(500),
        &format!("killed after {took:?}, before the stop timeout"),
    );
    // Only then does its end for good show.
    g.wait_state("a", "exited", secs(2));
}
