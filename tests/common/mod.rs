//! Shared helpers for the black-box integration tests of `going`.
//!
//! Everything here uses std only. Each test gets its own temporary directory
//! and its own `going` process; the `Going` guard makes sure that neither
//! going nor any process it started survives the test, whatever happens.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_going");

/// `BIN` as other users (nobody) can run it: a checkout in a private
/// directory (a `mktemp -d` clone, mode 0700) hides target/ from them, so
/// a copy in the world-readable `dir`.
pub fn bin_for_others(dir: &Path) -> String {
    let copy = dir.join("going-for-others");
    fs::copy(BIN, &copy).expect("copy going");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod going");
    copy.display().to_string()
}

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;
pub const SIGTERM: i32 = 15;
pub const SIGCONT: i32 = 18;

unsafe extern "C" {
    // std links libc anyway; declaring the calls we need avoids a crate.
    #[link_name = "kill"]
    fn c_kill(pid: i32, sig: i32) -> i32;
    #[link_name = "syscall"]
    fn c_syscall(n: i64, ...) -> i64;
}

#[cfg(target_arch = "x86_64")]
const SYS_RT_SIGACTION: i64 = 13;
#[cfg(target_arch = "aarch64")]
const SYS_RT_SIGACTION: i64 = 134;

/// Set SIG_IGN for `sig` with the raw system call: libc's sigaction refuses
/// the signals it reserves for itself (32, 33, 34), the kernel does not.
/// Only for use in a freshly forked child (pre_exec).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn raw_ignore(sig: i32) -> bool {
    // struct kernel_sigaction { handler, flags, restorer, mask }
    let act: [u64; 4] = [1 /* SIG_IGN */, 0, 0, 0];
    // SAFETY: rt_sigaction reads `act` only; no old action is requested.
    unsafe {
        c_syscall(
            SYS_RT_SIGACTION,
            sig as i64,
            act.as_ptr(),
            std::ptr::null::<u64>(),
            8usize,
        ) == 0
    }
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn raw_ignore(_sig: i32) -> bool {
    false
}

/// kill(2). `pid` may be negative (a process group). Returns true on success.
pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { c_kill(pid, sig) == 0 }
}

/// Whether the tests run as root (read from /proc/self/status, Uid: line).
pub fn is_root() -> bool {
    status_field(std::process::id() as i32, "Uid")
        .map(|v| v.split_whitespace().nth(1) == Some("0"))
        .unwrap_or(false)
}

/// Skip the calling test (return early) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("SKIPPED: this test needs root");
            return;
        }
    };
}

/// Whether a program is found in PATH.
pub fn have(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Poll `cond` every 10 ms until it holds or `timeout` passes. Returns
/// whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(ms(10));
    }
}

/// Like `wait_until`, but the closure returns a value when ready.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(ms(10));
    }
}

// ---------------------------------------------------------------- temp dirs

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique temporary directory, removed (recursively) on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = fs::canonicalize(std::env::temp_dir()).unwrap_or_else(|_| PathBuf::from("/tmp"));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = base.join(format!(
            "going-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        // Services running as other users (nobody) must be able to reach it.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }

    /// The service directory used by `Going::start`.
    pub fn svc(&self) -> PathBuf {
        self.path.join("svc")
    }

    /// Write a service file into the service directory (plain write: create,
    /// write, close).
    pub fn write_svc(&self, name: &str, content: &str) -> PathBuf {
        let dir = self.svc();
        fs::create_dir_all(&dir).expect("create service dir");
        let p = dir.join(name);
        fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Replace a service file atomically: write a dotfile, rename it over.
    pub fn replace_svc(&self, name: &str, content: &str) -> PathBuf {
        let dir = self.svc();
        fs::create_dir_all(&dir).expect("create service dir");
        let tmp = dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, content).expect("write temp file");
        let p = dir.join(name);
        fs::rename(&tmp, &p).expect("rename over");
        p
    }

    pub fn remove_svc(&self, name: &str) {
        let p = self.svc().join(name);
        fs::remove_file(&p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
    }

    /// A path inside the temp dir, as a string (for service files).
    pub fn s(&self, p: &str) -> String {
        self.join(p).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A TOML basic string literal for `s`.
pub fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings.
pub fn qa(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

/// A TOML service that writes its pid (the service's own pid: `exec`
/// keeps it) into `pidfile` and then sleeps, plus `extra` lines.
pub fn pid_service(pidfile: &Path, extra: &str) -> String {
    let script = format!("echo $$ > {}; exec sleep 1000", pidfile.display());
    format!(
        "cmd = {}\nstop-timeout = \"2s\"\n{extra}\n",
        qa(&["/bin/sh", "-c", &script])
    )
}

/// A plain long sleeper; `tag` makes its command line unique (sleep N).
pub fn sleep_service(n: u32, extra: &str) -> String {
    format!("cmd = [\"/bin/sleep\", \"{n}\"]\nstop-timeout = \"2s\"\n{extra}\n")
}

// ---------------------------------------------------------------- /proc

#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub nice: i64,
    pub starttime: u64,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    let rest: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field k is rest[k - 3].
    let f = |k: usize| rest.get(k - 3).copied();
    Some(Stat {
        pid,
        state: f(3)?.chars().next()?,
        ppid: f(4)?.parse().ok()?,
        pgrp: f(5)?.parse().ok()?,
        session: f(6)?.parse().ok()?,
        nice: f(19)?.parse().ok()?,
        starttime: f(22)?.parse().ok()?,
    })
}

pub fn status(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The value of one field of /proc/PID/status ("Umask", "SigBlk", ...), trimmed.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let st = status(pid)?;
    for line in st.lines() {
        if let Some((k, v)) = line.split_once(':')
            && k == field
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

pub fn cmdline(pid: i32) -> Vec<String> {
    split_nul(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
}

pub fn environ(pid: i32) -> Vec<String> {
    split_nul(&fs::read(format!("/proc/{pid}/environ")).unwrap_or_default())
}

fn split_nul(b: &[u8]) -> Vec<String> {
    b.split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

pub fn cwd(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

pub fn root(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/root")).ok()
}

/// Open descriptors of a process: (fd, link target), sorted by fd.
pub fn fds(pid: i32) -> Vec<(i32, String)> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() {
                let t = fs::read_link(e.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                v.push((n, t));
            }
        }
    }
    v.sort();
    v
}

/// The `flags:` of /proc/PID/fdinfo/FD (octal).
pub fn fd_flags(pid: i32, fd: i32) -> Option<u32> {
    let s = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix("flags:") {
            return u32::from_str_radix(v.trim(), 8).ok();
        }
    }
    None
}

/// Direct children of a (single-threaded) process, zombies included.
pub fn children(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    v
}

/// All descendants (depth first), zombies included.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack = children(pid);
    while let Some(p) = stack.pop() {
        out.push(p);
        stack.extend(children(p));
    }
    out
}

/// The process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some(s) if s.state != 'Z' && s.state != 'X')
}

/// Wait up to `timeout` for a file to contain a pid; returns it.
pub fn read_pid_file(path: &Path, timeout: Duration) -> Option<i32> {
    wait_for(timeout, || {
        let s = fs::read_to_string(path).ok()?;
        if !s.ends_with('\n') {
            return None;
        }
        s.trim().parse::<i32>().ok()
    })
}

/// The NSpid: line of a process (outermost first).
pub fn nspid(pid: i32) -> Vec<i32> {
    status_field(pid, "NSpid")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Supplementary groups (Groups: line).
pub fn groups(pid: i32) -> Vec<u32> {
    let mut v: Vec<u32> = status_field(pid, "Groups")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// (uid, gid) of a user from /etc/passwd, plus its home directory.
pub fn passwd_entry(user: &str) -> Option<(u32, u32, String)> {
    let s = fs::read_to_string("/etc/passwd").ok()?;
    for line in s.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 7 && f[0] == user {
            return Some((f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string()));
        }
    }
    None
}

/// Name of the user with this uid.
pub fn user_name(uid: u32) -> Option<String> {
    let s = fs::read_to_string("/etc/passwd").ok()?;
    s.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
    })
}

/// gid of a group from /etc/group.
pub fn group_gid(group: &str) -> Option<u32> {
    let s = fs::read_to_string("/etc/group").ok()?;
    s.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[0] == group)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// gids of the groups in /etc/group that list `user` as a member.
pub fn member_groups(user: &str) -> Vec<u32> {
    let s = fs::read_to_string("/etc/group").unwrap_or_default();
    let mut v: Vec<u32> = s
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == user) {
                f[2].parse().ok()
            } else {
                None
            }
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

// ---------------------------------------------------------------- going

/// Options for starting going.
#[derive(Default, Clone)]
pub struct Opts {
    /// Shell statements run before going is exec'd (e.g. `umask 033;`).
    pub pre: String,
    /// A command prefix for the exec (e.g. `nice -n 3`).
    pub exec_prefix: String,
    /// Extra environment variables for going.
    pub env: Vec<(String, String)>,
    /// Do not create the service directory.
    pub no_dir: bool,
    /// Run as PID 1 of a new PID namespace (unshare).
    pub pid1: bool,
    /// Service directory, when not `TempDir::svc()`.
    pub dir: Option<PathBuf>,
    /// Signals going starts with ignored (SIG_IGN, set with the raw system
    /// call so that libc-reserved ones work too).
    pub ignore: Vec<i32>,
    /// Let going derive its control socket path (in /run) instead of
    /// passing `-s` with one in the test's directory.
    pub default_socket: bool,
}

/// One running going. Drop stops it and everything it started.
pub struct Going {
    /// The process we spawned: going itself, or `unshare` in PID 1 mode.
    pub child: Child,
    /// going's pid, as seen from the tests (outer namespace).
    pub pid: i32,
    pub dir: PathBuf,
    pub log_path: PathBuf,
    pub pid1: bool,
    /// The control socket `status_json` asks (None: derived from `dir`).
    pub sock: Option<PathBuf>,
    stdin: Option<ChildStdin>,
    exit: Option<ExitStatus>,
}

impl Going {
    /// `going -l stderr -d TMP/svc`, creating TMP/svc.
    pub fn start(t: &TempDir) -> Going {
        Going::start_with(t, Opts::default())
    }

    /// going as PID 1 of a new PID namespace.
    pub fn start_pid1(t: &TempDir) -> Going {
        Going::start_with(
            t,
            Opts {
                pid1: true,
                ..Opts::default()
            },
        )
    }

    pub fn start_with(t: &TempDir, o: Opts) -> Going {
        let dir = o.dir.clone().unwrap_or_else(|| t.svc());
        if !o.no_dir {
            fs::create_dir_all(&dir).expect("create service dir");
        }
        let log_path = t.join(format!(
            "going-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let log = fs::File::create(&log_path).expect("create log file");
        let out = fs::File::create(t.join("going.stdout")).expect("create stdout file");
        let dir_s = dir.display().to_string();
        // A socket in the test's own directory: nothing is left in /run.
        let sock_s = t.join("going.sock").display().to_string();
        let sock_args: Vec<&str> = if o.default_socket {
            vec![]
        } else {
            vec!["-s", &sock_s]
        };
        let mut cmd = if o.pid1 {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", BIN]);
            c.args(&sock_args).args(["-l", "stderr", "-d", &dir_s]);
            c
        } else if !o.pre.is_empty() || !o.exec_prefix.is_empty() {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("{} exec {} \"$0\" \"$@\"", o.pre, o.exec_prefix))
                .arg(BIN)
                .args(&sock_args)
                .args(["-l", "stderr", "-d", &dir_s]);
            c
        } else {
            let mut c = Command::new(BIN);
            c.args(&sock_args).args(["-l", "stderr", "-d", &dir_s]);
            c
        };
        // A marker that must never reach a service's environment.
        cmd.env("GOING_TEST_LEAK", "leaked");
        for (k, v) in &o.env {
            cmd.env(k, v);
        }
        // stdin is a pipe so that "fd 0 is /dev/null" in a service means going
        // did it, not that it inherited /dev/null.
        cmd.stdin(Stdio::piped()).stdout(out).stderr(log);
        if !o.ignore.is_empty() {
            use std::os::unix::process::CommandExt;
            let sigs = o.ignore.clone();
            // SAFETY: the closure only makes system calls.
            unsafe {
                cmd.pre_exec(move || {
                    for &s in &sigs {
                        if !raw_ignore(s) {
                            return Err(std::io::Error::other("rt_sigaction"));
                        }
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn going");
        let stdin = child.stdin.take();
        let spawned = child.id() as i32;
        let mut g = Going {
            child,
            pid: spawned,
            dir,
            log_path,
            pid1: o.pid1,
            sock: (!o.default_socket).then(|| {
                // A `-s 'PATH'` that `pre` appends wins over ours.
                o.pre
                    .split_once("-s '")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map_or_else(|| t.join("going.sock"), |(path, _)| PathBuf::from(path))
            }),
            stdin,
            exit: None,
        };
        if o.pid1 {
            // going is the child of unshare and PID 1 in its namespace.
            let found = wait_for(secs(5), || {
                children(spawned).into_iter().find(|&c| {
                    nspid(c).last() == Some(&1)
                        && cmdline(c).first().map(|a| a.ends_with("going")) == Some(true)
                })
            });
            match found {
                Some(p) => g.pid = p,
                None => g.fail("going did not appear as PID 1 under unshare"),
            }
        }
        g
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Panic with `msg` and the log.
    pub fn fail(&self, msg: &str) -> ! {
        panic!(
            "{msg}\n----- going log ({}) -----\n{}-----",
            self.log_path.display(),
            self.log()
        );
    }

    /// Assert with the log in the message.
    pub fn check(&self, cond: bool, msg: &str) {
        if !cond {
            self.fail(msg);
        }
    }

    /// Wait for `cond`, failing the test with `what` and the log on timeout.
    pub fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        if !wait_until(timeout, cond) {
            self.fail(&format!("timed out after {timeout:?} waiting for: {what}"));
        }
    }

    pub fn wait_for<T>(&self, timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
        match wait_for(timeout, f) {
            Some(v) => v,
            None => self.fail(&format!("timed out after {timeout:?} waiting for: {what}")),
        }
    }

    pub fn log_count(&self, pat: &str) -> usize {
        self.log().matches(pat).count()
    }

    pub fn log_has(&self, pat: &str) -> bool {
        self.log().contains(pat)
    }

    /// Wait until the log contains `pat`.
    pub fn wait_log(&self, pat: &str, timeout: Duration) {
        self.wait(timeout, &format!("log line containing {pat:?}"), || {
            self.log_has(pat)
        });
    }

    /// Wait until the log contains `pat` at least `n` times.
    pub fn wait_log_count(&self, pat: &str, n: usize, timeout: Duration) {
        self.wait(
            timeout,
            &format!("{n} log lines containing {pat:?}"),
            || self.log_count(pat) >= n,
        );
    }

    /// Wait for the "started" line.
    pub fn wait_started(&self) {
        self.wait_log("going: going 1.0.0 started, pid ", secs(5));
    }

    /// Map a pid as seen inside going's PID namespace to ours.
    pub fn outer(&self, inner: i32) -> Option<i32> {
        if !self.pid1 {
            return Some(inner);
        }
        descendants(self.pid)
            .into_iter()
            .chain(std::iter::once(self.pid))
            .find(|&p| nspid(p).last() == Some(&inner) && nspid(p).len() >= 2)
    }

    /// `going status --json`, parsed; None when going does not answer
    /// (not up yet, or gone).
    pub fn status_json(&self) -> Option<Json> {
        let at = match &self.sock {
            Some(sock) => ["-s".to_string(), sock.display().to_string()],
            None => ["-d".to_string(), self.dir.display().to_string()],
        };
        let child = Command::new(BIN)
            .args(["status", "--json", &at[0], &at[1]])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // Read as it comes (thousands of services do not fit in a pipe),
        // and give up on a going that does not answer.
        let pid = child.id() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = rx.recv_timeout(secs(10)).ok().and_then(Result::ok);
        if out.is_none() {
            kill(pid, SIGKILL);
        }
        let _ = reader.join();
        let out = out.filter(|o| o.status.success())?;
        parse_json(&String::from_utf8_lossy(&out.stdout))
    }

    /// Every service `going status --json` shows.
    pub fn services(&self) -> Vec<Svc> {
        self.status_json()
            .as_ref()
            .and_then(|j| j.get("services"))
            .map(|s| match s {
                Json::Arr(v) => v.iter().filter_map(Svc::from_json).collect(),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    }

    /// One service as `going status --json` shows it.
    pub fn svc(&self, name: &str) -> Option<Svc> {
        self.services().into_iter().find(|s| s.name == name)
    }

    /// Wait until going answers `going status`: it has read its
    /// directory and runs its loop.
    pub fn wait_up(&self) {
        self.wait(secs(5), "going status to answer", || {
            self.status_json().is_some()
        });
    }

    /// Wait until the status of `name` satisfies `cond`; returns it.
    pub fn wait_svc(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Svc) -> bool,
    ) -> Svc {
        let mut last = None;
        match wait_for(timeout, || {
            last = self.svc(name);
            last.clone().filter(|s| cond(s))
        }) {
            Some(s) => s,
            None => self.fail(&format!(
                "timed out after {timeout:?} waiting for {name}: {what}; last status: {last:?}"
            )),
        }
    }

    /// Wait until going says `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Svc {
        self.wait_svc(name, &format!("state {state}"), timeout, |s| {
            s.state == state
        })
    }

    /// Wait until `name` waits out the backoff after at least `n` short
    /// runs in a row (from 50 ms, doubling: n = 6 waits 1.6 s).
    pub fn wait_backoff(&self, name: &str, n: u32) -> Svc {
        self.wait_svc(
            name,
            &format!("backoff after {n} restarts"),
            secs(10),
            |s| s.state == "backoff" && s.restarts >= n,
        )
    }

    /// The (outer) pid of `name` when going says it is running and it is
    /// a live child of going.
    /// Its exec done, too: /proc shows no command line while the kernel
    /// is still loading the program, which can outlast the clone.
    pub fn running_pid(&self, name: &str) -> Option<i32> {
        let s = self.svc(name)?;
        let p = self.outer(s.pid.filter(|_| s.state == "running")?)?;
        (alive(p) && stat(p)?.ppid == self.pid && !cmdline(p).is_empty()).then_some(p)
    }

    /// Wait for `name` to be running and return its pid.
    pub fn wait_running(&self, name: &str) -> i32 {
        self.wait_for(secs(5), &format!("{name}: running"), || {
            self.running_pid(name)
        })
    }

    /// Wait until `name` runs with a pid other than `old`.
    pub fn wait_new_pid(&self, name: &str, old: i32) -> i32 {
        self.wait_for(
            secs(5),
            &format!("{name} restarted (old pid {old})"),
            || self.running_pid(name).filter(|&p| p != old),
        )
    }

    /// Read a pid file written by a service (`echo $$ > FILE`), mapped to
    /// our namespace, and check it is a live child of going.
    pub fn pid_from_file(&self, path: &Path) -> i32 {
        self.wait_for(secs(5), &format!("pid file {}", path.display()), || {
            let inner = read_pid_file(path, ms(0))?;
            let p = self.outer(inner)?;
            (alive(p) && stat(p)?.ppid == self.pid).then_some(p)
        })
    }

    /// Like pid_from_file, but waits for a pid different from `old`.
    pub fn new_pid_from_file(&self, path: &Path, old: i32) -> i32 {
        self.wait_for(
            secs(5),
            &format!("new pid in {} (old {old})", path.display()),
            || {
                let inner = read_pid_file(path, ms(0))?;
                let p = self.outer(inner)?;
                (p != old && alive(p) && stat(p)?.ppid == self.pid).then_some(p)
            },
        )
    }

    /// Wait until a process is gone (reaped, or at least not alive).
    pub fn wait_gone(&self, pid: i32, timeout: Duration) {
        self.wait(timeout, &format!("pid {pid} to be gone"), || !alive(pid));
    }

    /// Add a service and wait for it to run: after this returns, going has
    /// handled every directory event that happened before the call.
    pub fn sync(&self, t: &TempDir) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("sync{n}");
        t.write_svc(&format!("{name}.toml"), &sleep_service(1000 + n as u32, ""));
        self.wait_running(&name);
    }

    /// Whether going (the process we spawned) is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(st)) => {
                self.exit = Some(st);
                false
            }
            _ => true,
        }
    }

    /// Wait for the spawned process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.exit {
            return Some(st);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st);
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(ms(10));
        }
    }

    /// Send a signal to going.
    pub fn signal(&self, sig: i32) {
        self.check(
            kill(self.pid, sig),
            &format!("kill({}, {sig}) failed", self.pid),
        );
    }

    /// Send `sig` and wait (up to `timeout`) for going to exit; returns
    /// the exit status (unshare's, which is going's, in PID 1 mode).
    pub fn stop_with(&mut self, sig: i32, timeout: Duration) -> ExitStatus {
        self.signal(sig);
        match self.wait_exit(timeout) {
            Some(st) => st,
            None => self.fail(&format!(
                "going did not exit within {timeout:?} after signal {sig}"
            )),
        }
    }

    /// Write to going's stdin (kept open as a pipe).
    pub fn stdin_write(&mut self, b: &[u8]) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(b);
        }
    }
}

impl Drop for Going {
    fn drop(&mut self) {
        if self.exit.is_none() {
            // Everything going started, recorded before it can be reparented.
            let procs: Vec<Stat> = descendants(self.pid).into_iter().filter_map(stat).collect();
            if self.pid1 {
                // Killing PID 1 ends the whole namespace.
                kill(self.pid, SIGKILL);
            } else {
                kill(self.pid, SIGTERM);
            }
            if self.wait_exit(secs(10)).is_none() {
                kill(self.pid, SIGKILL);
                kill(self.child.id() as i32, SIGKILL);
                let _ = self.wait_exit(secs(5));
            }
            kill_survivors(&procs, self.pid);
        }
        if !self.pid1 {
            self.kill_logged_orphans();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Going {
    /// Safety net for a going that died before the test ended: its services
    /// were reparented away, out of reach of `descendants`. Kill every
    /// process the log says going started that is still alive, is a going
    /// service (GOING_SERVICE in its environment) and is an orphan.
    fn kill_logged_orphans(&self) {
        let log = self.log();
        for line in log.lines() {
            let Some(i) = line.find(": starting, pid ") else {
                continue;
            };
            let Ok(pid) = line[i + ": starting, pid ".len()..].trim().parse::<i32>() else {
                continue;
            };
            let Some(st) = stat(pid) else { continue };
            if st.state == 'Z' || (st.ppid != 1 && st.ppid != self.pid) {
                continue;
            }
            if !environ(pid).iter().any(|e| e.starts_with("GOING_SERVICE=")) {
                continue;
            }
            if st.pgrp == pid {
                kill(-pid, SIGKILL);
            }
            kill(pid, SIGKILL);
        }
    }
}

/// Run `going ARGS...` to completion (for check, -v, -h, usage errors).
pub fn run_going(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn going");
    // A stuck binary must not hang the suite.
    let pid = child.id() as i32;
    let done = wait_until(secs(10), || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        kill(pid, SIGKILL);
    }
    let out = child.wait_with_output().expect("wait going");
    assert!(done, "going {args:?} did not exit within 10 s");
    out
}

/// Build a minimal chroot at `root` with busybox (and its libraries when it
/// is dynamically linked). None when /bin/busybox is absent.
pub fn busybox_chroot(root: &Path) -> Option<()> {
    let bb = Path::new("/bin/busybox");
    if !bb.exists() {
        return None;
    }
    fs::create_dir_all(root.join("bin")).ok()?;
    fs::copy(bb, root.join("bin/busybox")).ok()?;
    // Copy the dynamic loader and libraries, if any.
    if let Ok(out) = Command::new("ldd").arg(bb).output() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in text.lines() {
            let path = if let Some((_, r)) = line.split_once("=>") {
                r.split_whitespace().next()
            } else {
                line.split_whitespace().next()
            };
            if let Some(p) = path
                && p.starts_with('/')
            {
                let src = Path::new(p);
                let dst = root.join(p.trim_start_matches('/'));
                fs::create_dir_all(dst.parent()?).ok()?;
                fs::copy(src, &dst).ok()?;
            }
        }
    }
    Some(())
}

/// Whether PID-namespace tests can run here (root, and unshare works);
/// says SKIPPED once per call when not.
pub fn can_unshare() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *OK.get_or_init(|| {
        is_root()
            && Command::new("unshare")
                .args(["--pid", "--fork", "--mount-proc", "/bin/true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    });
    if !ok {
        eprintln!("SKIPPED: PID namespace tests need root and a working unshare --pid");
    }
    ok
}

/// going with its control socket at TMP/run/ctl.sock; returns once the
/// socket accepts.
pub fn start_ctl(t: &TempDir) -> (Going, String) {
    let run = t.join("run");
    fs::create_dir_all(&run).expect("mkdir run");
    fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).expect("chmod run");
    let sock = run.join("ctl.sock").display().to_string();
    let g = Going::start_with(
        t,
        Opts {
            // A later -s wins over the one Going::start_with passes.
            pre: format!("set -- \"$@\" -s '{sock}';"),
            ..Opts::default()
        },
    );
    g.wait_up();
    (g, sock)
}

/// SIGKILLs every process of `procs` still alive (the same process: same
/// start time), and the process groups they led, except `going`'s own.
pub fn kill_survivors(procs: &[Stat], going: i32) {
    let mut groups = HashSet::new();
    for p in procs {
        if let Some(now) = stat(p.pid)
            && now.starttime == p.starttime
            && now.state != 'Z'
        {
            if p.pgrp > 1 && p.pgrp != going {
                groups.insert(p.pgrp);
            }
            kill(p.pid, SIGKILL);
        }
    }
    for g in groups {
        kill(-g, SIGKILL);
    }
}

// ---------------------------------------------------------------- status JSON

/// A JSON value, enough for the documents `going status --json` writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number, as written.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse_json(text: &str) -> Option<Json> {
    let mut p = JsonParser {
        b: text.as_bytes(),
        at: 0,
    };
    let v = p.value(0)?;
    p.ws();
    (p.at == p.b.len()).then_some(v)
}

struct JsonParser<'a> {
    b: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.b.get(self.at).is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let ok = self.b.get(self.at) == Some(&c);
        if ok {
            self.at += 1;
        }
        ok
    }

    fn word(&mut self, w: &str, v: Json) -> Option<Json> {
        let end = self.at + w.len();
        (self.b.get(self.at..end)? == w.as_bytes()).then(|| {
            self.at = end;
            v
        })
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > 32 {
            return None;
        }
        self.ws();
        match *self.b.get(self.at)? {
            b'n' => self.word("null", Json::Null),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.at += 1;
                let mut v = Vec::new();
                if self.eat(b']') {
                    return Some(Json::Arr(v));
                }
                loop {
                    v.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Json::Arr(v));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'{' => {
                self.at += 1;
                let mut v = Vec::new();
                if self.eat(b'}') {
                    return Some(Json::Obj(v));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    v.push((k, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Some(Json::Obj(v));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            _ => {
                let start = self.at;
                while self
                    .b
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.at += 1;
                }
                let n = std::str::from_utf8(self.b.get(start..self.at)?).ok()?;
                n.parse::<f64>().ok().map(|_| Json::Num(n.to_string()))
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.b.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.at)?;
            self.at += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.b.get(self.at)?;
                    self.at += 1;
                    match e {
                        b'u' => {
                            let hex =
                                std::str::from_utf8(self.b.get(self.at..self.at + 4)?).ok()?;
                            self.at += 4;
                            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// One service of `going status --json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Svc {
    pub name: String,
    pub state: String,
    /// As going sees it (the namespace pid in PID 1 mode).
    pub pid: Option<i32>,
    pub restarts: u32,
    /// `exit N`, `signal NAME` or `unknown`; None before the first exit.
    pub last_exit: Option<String>,
    pub ready: bool,
    pub admin_down: bool,
    pub flapping: bool,
}

impl Svc {
    fn from_json(j: &Json) -> Option<Svc> {
        let flag = |k: &str| j.get(k) == Some(&Json::Bool(true));
        let exit = j.get("last_exit")?;
        let last_exit = if let Some(code) = exit.get("code").and_then(Json::as_i64) {
            Some(format!("exit {code}"))
        } else if let Some(sig) = exit.get("signal").and_then(Json::as_str) {
            Some(format!("signal {sig}"))
        } else if *exit == Json::Null {
            None
        } else {
            Some("unknown".to_string())
        };
        Some(Svc {
            name: j.get("name")?.as_str()?.to_string(),
            state: j.get("state")?.as_str()?.to_string(),
            pid: j.get("pid")?.as_i64().map(|p| p as i32),
            restarts: j.get("restarts")?.as_i64()? as u32,
            last_exit,
            ready: flag("ready"),
            admin_down: flag("admin_down"),
            flapping: flag("flapping"),
        })
    }
}
