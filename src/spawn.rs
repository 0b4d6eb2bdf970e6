//! The only place that forks and execs. Everything the child needs is
//! prepared before the fork (names resolved, strings built, files opened),
//! so the child only makes system calls; that is what lets it run in
//! going's own memory, `clone(CLONE_VM | CLONE_VFORK)` as posix_spawn does,
//! instead of a copy. going waits until the child has exec'd or given up,
//! so the outcome is known when [`spawn`] returns: a child that fails
//! leaves (step, errno) in the plan it shares with going, then exits 127.
//!
//! Hand-made, not std's `Command`: the vfork clone took a respawn from
//! 1.74 to 1.03 ms (BENCH.md), needs no pipe to learn the exec's outcome,
//! and `Command` has no place for setgroups-then-setgid-then-setuid,
//! chroot, nice or the signal dispositions going resets.

use crate::config::{Id, Output, Readiness, ServiceSpec};
use crate::util::describe_io;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What every spawn shares, set up once at start-up.
pub struct Context {
    /// Opened once, so a service's stdin never depends on a later open.
    pub dev_null: OwnedFd,
    /// The descriptor limit going was started with, given back to services.
    pub nofile: libc::rlimit,
    pub is_root: bool,
    /// Descriptors going inherited and keeps for the main command; every
    /// service's child closes them.
    pub inherited: Vec<RawFd>,
    /// `NOTIFY_SOCKET` for services with `notify = true`.
    pub notify_socket: Option<String>,
    /// `USER` and `HOME` of going's own user, for services without `user`:
    /// looked up once, as each lookup takes a 16 kB buffer.
    pub own_user: (String, String),
    /// Signals going's parent left ignored (bit `n - 1` for signal `n`):
    /// an ignored disposition survives exec, so each child resets these,
    /// and only these, to the default.
    pub ignored_signals: u64,
}

/// `USER` and `HOME` of going's own user (uid and `/` when unnamed).
pub fn own_user() -> (String, String) {
    match User::from_uid(Uid::effective()) {
        Ok(Some(me)) => (me.name, me.dir.to_string_lossy().into_owned()),
        _ => (Uid::effective().to_string(), "/".into()),
    }
}

/// A forked service process.
#[derive(Default)]
pub struct Child {
    pub pid: i32,
    /// Read ends of `stdout`/`stderr = "syslog"` pipes.
    pub stdout_pipe: Option<OwnedFd>,
    pub stderr_pipe: Option<OwnedFd>,
    /// Read end of the `log` pipe, the child's stdout and stderr both.
    pub log_pipe: Option<OwnedFd>,
    /// Read end of the `ready-fd` pipe.
    pub ready_pipe: Option<OwnedFd>,
    /// (step, errno) of the child that could not exec, which then exits
    /// 127; `None` when it runs the program.
    pub exec_failure: Option<(u32, i32)>,
    /// Its start time as /proc/PID/stat gives it, when known without
    /// reading /proc (see [`fork`]).
    pub start_time: Option<u64>,
}

/// The steps of the child, in the order it takes them.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Step {
    Session = 1,
    Stdio,
    Nice,
    Chroot,
    Groups,
    SetGid,
    SetUid,
    Chdir,
    Exec,
}

/// Who the service runs as, resolved from its definition.
struct Identity {
    uid: Option<Uid>,
    gid: Option<Gid>,
    groups: Option<Vec<Gid>>,
    home: String,
    user: String,
}

fn resolve_user(id: &Id) -> Result<User, String> {
    let by_number = |uid| User::from_uid(Uid::from_raw(uid)).map(|u| u.or(Some(anonymous(uid))));
    let found = match id {
        Id::Name(name) => match User::from_name(name) {
            Ok(Some(user)) => Ok(Some(user)),
            _ if name.bytes().all(|b| b.is_ascii_digit()) => {
                name.parse().map_or(Ok(None), by_number)
            }
            other => other,
        },
        Id::Number(uid) => by_number(*uid),
    };
    found
        .map_err(|errno| format!("cannot look up user {}: {}", show_id(id), errno.desc()))?
        .ok_or_else(|| format!("unknown user {}", show_id(id)))
}

/// A numeric uid with no passwd entry: runs with that uid, HOME=/.
fn anonymous(uid: u32) -> User {
    User {
        name: uid.to_string(),
        passwd: CString::default(),
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(uid),
        gecos: CString::default(),
        dir: "/".into(),
        shell: "/bin/sh".into(),
    }
}

pub fn resolve_group(id: &Id) -> Result<Gid, String> {
    let found = match id {
        Id::Name(name) => match Group::from_name(name) {
            Ok(Some(group)) => Ok(Some(group.gid)),
            _ if name.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(name.parse().ok().map(Gid::from_raw))
            }
            other => other.map(|_| None),
        },
        Id::Number(gid) => Ok(Some(Gid::from_raw(*gid))),
    };
    found
        .map_err(|errno| format!("cannot look up group {}: {}", show_id(id), errno.desc()))?
        .ok_or_else(|| format!("unknown group {}", show_id(id)))
}

/// Checks that a user exists, for `going check`.
pub fn check_user(id: &Id) -> Result<(), String> {
    resolve_user(id).map(|_| ())
}

fn show_id(id: &Id) -> String {
    match id {
        Id::Name(name) => format!("{name:?}"),
        Id::Number(n) => n.to_string(),
    }
}

fn identity(spec: &ServiceSpec, context: &Context) -> Result<Identity, String> {
    let is_root = context.is_root;
    let group = spec.group.as_ref().map(resolve_group).transpose()?;
    match &spec.user {
        Some(id) => {
            let user = resolve_user(id)?;
            let gid = group.unwrap_or(user.gid);
            let list = || -> Result<Vec<Gid>, String> {
                let name = CString::new(user.name.clone()).map_err(|_| "bad user name")?;
                let why = |e: Errno| format!("cannot list groups of {:?}: {}", user.name, e.desc());
                nix::unistd::getgrouplist(&name, gid).map_err(why)
            };
            let groups = is_root.then(list).transpose()?;
            Ok(Identity {
                uid: Some(user.uid),
                gid: Some(gid),
                groups,
                home: user.dir.to_string_lossy().into_owned(),
                user: user.name,
            })
        }
        None => Ok(Identity {
            uid: None,
            gid: group,
            groups: group.filter(|_| is_root).map(|gid| vec![gid]),
            home: context.own_user.1.clone(),
            user: context.own_user.0.clone(),
        }),
    }
}

fn c_string(text: &str, what: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("{what} contains a NUL byte"))
}

/// The fresh environment of a service.
pub fn environment(spec: &ServiceSpec, home: &str, user: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home.into()),
        ("USER".into(), user.into()),
        ("GOING_SERVICE".into(), spec.name.clone()),
    ];
    if let Some((_, instance)) = spec.name.split_once('@') {
        env.push(("GOING_INSTANCE".into(), instance.into()));
    }
    for (key, value) in &spec.env {
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    env
}

/// Where to look for the program: as written if it has a slash, else in
/// each directory of the service's PATH.
fn candidates(program: &str, path: &str) -> Result<Vec<CString>, String> {
    if program.contains('/') {
        return Ok(vec![c_string(program, "program")?]);
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
        .map(|candidate| c_string(&candidate, "program"))
        .collect()
}

/// The null-terminated array of pointers that exec takes.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    let pointers = strings.iter().map(|s| s.as_ptr());
    pointers.chain([std::ptr::null()]).collect()
}

/// The descriptor a service's output goes to, and for `"syslog"` the read
/// end of its pipe, which going keeps.
type Opened = (Option<OwnedFd>, Option<OwnedFd>);

fn open_output(output: &Output, dev_null: &OwnedFd) -> Result<Opened, String> {
    let fd = match output {
        Output::Inherit => None,
        Output::Syslog => {
            let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                .map_err(|errno| format!("pipe: {}", errno.desc()))?;
            let _ = fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            return Ok((Some(write_end), Some(read_end)));
        }
        Output::Null => Some(
            dev_null
                .try_clone()
                .map_err(|err| format!("dup /dev/null: {}", describe_io(&err)))?,
        ),
        Output::File(path) => {
            // Checked first, so that a NUL byte is reported as for the others.
            c_string(&path.to_string_lossy(), "path")?;
            // O_NONBLOCK: opening a FIFO with no reader fails instead of
            // blocking the loop; it is cleared again below.
            let file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o644)
                .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
                .open(path)
                .map_err(|err| {
                    let shown = path.display().to_string();
                    format!("open {shown:?}: {}", describe_io(&err))
                })?;
            let _ = fcntl(&file, FcntlArg::F_SETFL(OFlag::O_APPEND));
            Some(file.into())
        }
    };
    Ok((fd, None))
}

/// Forks and starts the service; [`Child::exec_failure`] says whether it
/// runs.
pub fn spawn(spec: &ServiceSpec, context: &Context) -> Result<Child, String> {
    let who = identity(spec, context)?;
    let mut env = environment(spec, &who.home, &who.user);
    if spec.extras().readiness == Some(Readiness::Notify)
        && let Some(socket) = &context.notify_socket
    {
        env.push(("NOTIFY_SOCKET".into(), socket.clone()));
    }
    let path = env.iter().find(|(k, _)| k == "PATH");
    let path = path.map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let program = spec.argv.first().ok_or("empty command")?;
    let candidates = candidates(program, path)?;
    let argv = spec.argv.iter().map(|a| c_string(a, "cmd"));
    let argv = argv.collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| c_string(&format!("{k}={v}"), "env"))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = c_string(&spec.dir.to_string_lossy(), "dir")?;
    let chroot = spec.chroot.as_ref().map(|p| p.to_string_lossy());
    let chroot = chroot.map(|p| c_string(&p, "chroot")).transpose()?;
    let dev_null = &context.dev_null;
    let (stdout, stdout_pipe) = open_output(&spec.stdout, dev_null)?;
    let (stderr, stderr_pipe) = open_output(&spec.stderr, dev_null)?;
    // `log`: one pipe for both, so that going sees the lines in the order
    // they were written (the configuration leaves stdout and stderr alone).
    let (log_write, log_read) = match spec.log() {
        Some(_) => open_output(&Output::Syslog, dev_null)?,
        None => (None, None),
    };
    let log_fd = log_write.as_ref().map(AsRawFd::as_raw_fd);
    let output = |fd: &Option<OwnedFd>, to| {
        let fd = log_fd.or(fd.as_ref().map(AsRawFd::as_raw_fd));
        fd.map(|fd| (fd, to))
    };
    let (ready_write, ready_read) = match spec.extras().readiness {
        Some(Readiness::Fd(target)) => {
            let (child_end, going_end) = open_output(&Output::Syslog, dev_null)?;
            (child_end.zip(Some(target)), going_end)
        }
        _ => (None, None),
    };
    let groups: Option<Vec<_>> = who.groups.map(|g| g.into_iter().map(Gid::as_raw).collect());

    let plan = ChildPlan {
        close: &context.inherited,
        redirects: [
            Some((dev_null.as_raw_fd(), 0)),
            output(&stdout, 1),
            output(&stderr, 2),
            ready_write.as_ref().map(|(fd, to)| (fd.as_raw_fd(), *to)),
        ],
        nofile: context.nofile,
        ignored_signals: context.ignored_signals,
        nice: spec.nice,
        umask: spec.umask,
        chroot: chroot.as_ref().map(|c| c.as_ptr()),
        groups: groups.as_deref(),
        gid: who.gid.map(Gid::as_raw),
        uid: who.uid.map(Uid::as_raw),
        is_root: context.is_root,
        dir: Some(dir.as_ptr()),
        candidates: &candidates,
        argv: pointers(&argv),
        envp: pointers(&envp),
        ..ChildPlan::default()
    };
    let mut child = fork(&plan)?;
    // The write ends were the child's to keep; ours close here.
    drop((stdout, stderr, ready_write, log_write));
    child.stdout_pipe = stdout_pipe;
    child.stderr_pipe = stderr_pipe;
    child.log_pipe = log_read;
    child.ready_pipe = ready_read;
    Ok(child)
}

/// The child's stack while it runs in going's memory: it only makes system
/// calls, and a test measures how much of this it touches.
const CHILD_STACK: usize = 8 * 1024;

#[repr(C, align(16))]
struct ChildStack([std::mem::MaybeUninit<u8>; CHILD_STACK]);

/// Starts the child in going's memory (see the module doc); going waits
/// microseconds. A fork copies every mapping, then takes a copy-on-write
/// fault for each page either side touches first, and the new child waits
/// in the run queue while going carries on: most of a respawn's time.
fn fork(plan: &ChildPlan<'_>) -> Result<Child, String> {
    #[cfg(not(test))]
    let mut stack = ChildStack([std::mem::MaybeUninit::uninit(); CHILD_STACK]);
    #[cfg(test)]
    let mut stack = ChildStack([std::mem::MaybeUninit::new(tests::STACK_FILL); CHILD_STACK]);
    let top = stack.0.as_mut_ptr_range().end.cast::<libc::c_void>();
    let arg = std::ptr::from_ref(plan).cast_mut().cast::<libc::c_void>();
    // The kernel stamps the child's start time, in clock ticks since boot,
    // inside clone; when the tick is the same either side of the call it
    // is that tick, and going need not read /proc/PID/stat while the exec
    // is still loading the program (the read then waits for it).
    let tick_before = crate::procfs::boot_tick();
    // SAFETY: going is single-threaded and waits (CLONE_VFORK) while the
    // child runs on `stack`, which outlives it; the child only reads `plan`
    // and makes system calls, then execs or exits, never returning here.
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    // Before boot_tick, whose sysconf clears errno.
    let clone_errno = Errno::last();
    let tick_after = crate::procfs::boot_tick();
    if pid < 0 {
        return Err(format!("fork: {}", clone_errno.desc()));
    }
    // SAFETY: setpgid/tcsetpgrp repeat the child's own calls so that
    // neither order races.
    unsafe {
        if let Session::ForegroundGroup { tty } = plan.session {
            libc::setpgid(pid, pid);
            if tty {
                libc::tcsetpgrp(0, pid);
            }
        }
    }
    #[cfg(test)]
    tests::note_stack_use(&stack.0);
    let failure = plan.failure.load(Ordering::Relaxed);
    Ok(Child {
        pid,
        exec_failure: (failure != 0).then_some(((failure >> 32) as u32, failure as u32 as i32)),
        start_time: tick_before.filter(|&tick| tick_after == Some(tick)),
        ..Child::default()
    })
}

extern "C" fn child_main(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `fork` passes a `ChildPlan` that lives until the child execs.
    let plan = unsafe { &*plan.cast::<ChildPlan<'_>>() };
    plan.run()
}

/// Starts the main command: going's own environment, stdio and working
/// directory, its own process group in the foreground of the terminal.
pub fn spawn_main(argv: &[std::ffi::OsString], context: &Context) -> Result<Child, String> {
    use std::os::unix::ffi::OsStrExt;
    let argv = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| "the command contains a NUL byte"))
        .collect::<Result<Vec<_>, _>>()?;
    let program = argv.first().ok_or("empty command")?.to_string_lossy();
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    let candidates = candidates(&program, &path)?;
    let envp = std::env::vars_os()
        .map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "the environment contains a NUL byte")?;
    let tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let plan = ChildPlan {
        session: Session::ForegroundGroup { tty },
        nofile: context.nofile,
        ignored_signals: context.ignored_signals,
        candidates: &candidates,
        argv: pointers(&argv),
        envp: pointers(&envp),
        ..ChildPlan::default()
    };
    fork(&plan)
}

/// How the child detaches from going.
#[derive(Clone, Copy, Default)]
enum Session {
    /// A service: a new session and process group of its own.
    #[default]
    New,
    /// The main command: its own process group in going's session, given
    /// the terminal's foreground when stdin is one.
    ForegroundGroup { tty: bool },
}

/// Everything the child does between fork and exec, as raw values (the
/// default skips every optional step).
#[derive(Default)]
struct ChildPlan<'a> {
    session: Session,
    close: &'a [RawFd],
    /// Written by a child that cannot exec: step in the high half, errno in
    /// the low; 0 while it has not failed. Shared, as the child runs in
    /// going's memory.
    failure: AtomicU64,
    /// (descriptor, number it goes to): stdin, stdout, stderr, then the
    /// `ready-fd` one.
    redirects: [Option<(RawFd, RawFd)>; 4],
    nofile: libc::rlimit,
    ignored_signals: u64,
    nice: Option<i32>,
    umask: Option<u32>,
    chroot: Option<*const libc::c_char>,
    groups: Option<&'a [libc::gid_t]>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
    is_root: bool,
    dir: Option<*const libc::c_char>,
    candidates: &'a [CString],
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl ChildPlan<'_> {
    /// Someone lowered going's own hard limit below the one to restore
    /// (`prlimit --pid`): the service gets what can still be given, the
    /// wanted limits capped at the current hard one, and starts anyway.
    /// Lowering never fails, so nothing here is fatal.
    fn limit_descriptors(&self) {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let soft = self.nofile.rlim_cur.min(hard);
            let max = self.nofile.rlim_max.min(hard);
            let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, max);
        }
    }

    /// Runs in the child; never returns.
    fn run(&self) -> ! {
        // SAFETY: plain system calls on values prepared before the fork.
        unsafe {
            let detached = match self.session {
                Session::New => libc::setsid() >= 0,
                Session::ForegroundGroup { tty } => {
                    // SIGTTOU is still blocked here, so this cannot stop us.
                    libc::setpgid(0, 0) == 0 && (!tty || libc::tcsetpgrp(0, libc::getpid()) == 0)
                }
            };
            if !detached {
                self.fail(Step::Session);
            }
            reset_signal_dispositions(self.ignored_signals);
            for &fd in self.close {
                libc::close(fd);
            }
            for &(fd, target) in self.redirects.iter().flatten() {
                self.redirect(fd, target);
            }
            if libc::setrlimit(libc::RLIMIT_NOFILE, &self.nofile) != 0 {
                self.limit_descriptors();
            }
            if let Some(nice) = self.nice
                && libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0
            {
                self.fail(Step::Nice);
            }
            if let Some(mask) = self.umask {
                libc::umask(mask as libc::mode_t);
            }
            if let Some(root) = self.chroot
                && (libc::chroot(root) != 0 || libc::chdir(c"/".as_ptr()) != 0)
            {
                self.fail(Step::Chroot);
            }
            if let Some(groups) = self.groups.filter(|_| self.is_root)
                && libc::setgroups(groups.len(), groups.as_ptr()) != 0
            {
                self.fail(Step::Groups);
            }
            if let Some(gid) = self
                .gid
                .filter(|&gid| gid != libc::getegid() || self.is_root)
                && libc::setgid(gid) != 0
            {
                self.fail(Step::SetGid);
            }
            if let Some(uid) = self
                .uid
                .filter(|&uid| uid != libc::geteuid() || self.is_root)
                && libc::setuid(uid) != 0
            {
                self.fail(Step::SetUid);
            }
            if let Some(dir) = self.dir
                && libc::chdir(dir) != 0
            {
                self.fail(Step::Chdir);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // As execvp does: try every candidate, stop at an error other
            // than "not there", and report EACCES over ENOENT.
            let mut saw_eacces = false;
            for candidate in self.candidates {
                libc::execve(candidate.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
                match *libc::__errno_location() {
                    libc::EACCES => saw_eacces = true,
                    libc::ENOENT | libc::ENOTDIR => {}
                    _ => break,
                }
            }
            if saw_eacces {
                *libc::__errno_location() = libc::EACCES;
            }
            self.fail(Step::Exec)
        }
    }

    /// Puts `fd` on `target`; a descriptor already in place keeps its
    /// place but loses close-on-exec.
    unsafe fn redirect(&self, fd: RawFd, target: RawFd) {
        // SAFETY: dup2/fcntl on descriptors that exist in the child.
        unsafe {
            let done = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if done < 0 {
                self.fail(Step::Stdio);
            }
        }
    }

    fn fail(&self, step: Step) -> ! {
        // SAFETY: errno is read, then the child exits without running
        // anything of going's.
        unsafe {
            let errno = *libc::__errno_location();
            self.failure.store(
                (step as u64) << 32 | u64::from(errno as u32),
                Ordering::Relaxed,
            );
            libc::_exit(127)
        }
    }
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout); all zero
/// is `SIG_DFL`.
#[derive(Default)]
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The raw system call, because libc refuses the signals it reserves (32
/// to 34), which an ignored disposition inherited from going's parent
/// would otherwise keep.
fn rt_sigaction(
    signal: i32,
    new: Option<&KernelSigaction>,
    old: Option<&mut KernelSigaction>,
) -> bool {
    let new = new.map_or(std::ptr::null(), std::ptr::from_ref);
    let old = old.map_or(std::ptr::null_mut(), std::ptr::from_mut);
    let size = std::mem::size_of::<u64>();
    // SAFETY: each pointer is null or to one struct of the size passed.
    unsafe { libc::syscall(libc::SYS_rt_sigaction, signal, new, old, size) == 0 }
}

/// Sets the signals in `ignored` back to their default action.
fn reset_signal_dispositions(ignored: u64) {
    let default = KernelSigaction::default();
    for signal in (1..=64).filter(|signal| ignored & (1 << (signal - 1)) != 0) {
        rt_sigaction(signal, Some(&default), None);
    }
}

/// The signals whose disposition is "ignore", as a mask for
/// [`Context::ignored_signals`]. going installs no handler of its own (it
/// reads signals from a signalfd), and handlers do not survive exec anyway.
pub fn ignored_signals() -> u64 {
    let mut ignored = 0u64;
    for signal in (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP) {
        let mut current = KernelSigaction::default();
        if rt_sigaction(signal, None, Some(&mut current)) && current.handler == libc::SIG_IGN {
            ignored |= 1 << (signal - 1);
        }
    }
    ignored
}

pub fn describe_main_failure(step: u32, errno: i32, program: &str) -> String {
    let why = Errno::from_raw(errno).desc();
    if step == Step::Exec as u32 {
        format!("cannot run {program:?}: {why}")
    } else {
        format!("cannot start {program:?}: {why}")
    }
}

pub fn describe_failure(step: u32, errno: i32, spec: &ServiceSpec) -> String {
    let why = Errno::from_raw(errno).desc();
    let quoted = |path: &std::path::Path| format!("{:?}", path.display().to_string());
    let what = match step {
        s if s == Step::Session as u32 => "setsid".to_string(),
        s if s == Step::Stdio as u32 => "redirect stdio".to_string(),
        s if s == Step::Nice as u32 => format!("nice {}", spec.nice.unwrap_or(0)),
        s if s == Step::Chroot as u32 => format!(
            "chroot {}",
            spec.chroot.as_deref().map(quoted).unwrap_or_default()
        ),
        s if s == Step::Groups as u32 => "setgroups".to_string(),
        s if s == Step::SetGid as u32 => "setgid".to_string(),
        s if s == Step::SetUid as u32 => "setuid".to_string(),
        s if s == Step::Chdir as u32 => format!("chdir {}", quoted(&spec.dir)),
        _ => format!("exec {:?}", spec.argv.first().map_or("", String::as_str)),
    };
    format!("{what}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) const STACK_FILL: u8 = 0xa5;
    static DEEPEST_CHILD_STACK: AtomicUsize = AtomicUsize::new(0);

    /// Records how far down the child wrote into its stack.
    pub(super) fn note_stack_use(stack: &[MaybeUninit<u8>]) {
        // SAFETY: in tests the whole stack is initialised before the clone.
        let untouched = stack
            .iter()
            .take_while(|b| unsafe { b.assume_init() } == STACK_FILL)
            .count();
        DEEPEST_CHILD_STACK.fetch_max(stack.len() - untouched, Ordering::Relaxed);
    }

    fn test_context() -> Context {
        // SAFETY: open of a constant path; owned below.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        let mut nofile = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a local struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) };
        Context {
            // SAFETY: fd was just opened.
            dev_null: unsafe { OwnedFd::from_raw_fd(fd) },
            nofile,
            is_root: false,
            inherited: Vec::new(),
            notify_socket: None,
            own_user: ("u".into(), "/".into()),
            ignored_signals: u64::MAX,
        }
    }

    fn wait_exit(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    /// The child runs on a stack inside going's own frame; this checks the
    /// deepest path (every PATH candidate failing, then the report) keeps
    /// well inside it, and that both outcomes still arrive.
    #[test]
    fn the_cloned_child_stays_inside_its_stack() {
        let context = test_context();
        let dir = std::env::temp_dir();
        let mut missing = ServiceSpec::new("m", vec!["no-such-program-here".into()]);
        missing.env = vec![("PATH".into(), "/nope:/bin:/usr/bin:/also/nope".into())];
        missing.dir = dir.clone();
        let child = spawn(&missing, &context).expect("spawned");
        assert_eq!(wait_exit(child.pid), 127 << 8);
        let (step, errno) = child.exec_failure.expect("the exec failed");
        assert_eq!(
            describe_failure(step, errno, &missing),
            "exec \"no-such-program-here\": No such file or directory"
        );
        let mut ok = ServiceSpec::new("t", vec!["/bin/true".into()]);
        ok.dir = dir;
        let child = spawn(&ok, &context).expect("spawned");
        assert_eq!(child.exec_failure, None);
        assert_eq!(wait_exit(child.pid), 0);
        let deepest = DEEPEST_CHILD_STACK.load(Ordering::Relaxed);
        assert!(deepest > 0, "the child ran on its stack");
        assert!(
            deepest < CHILD_STACK / 4,
            "the child used {deepest} of {CHILD_STACK} bytes"
        );
    }

    #[test]
    fn the_environment_is_fresh_and_the_file_wins() {
        let mut spec = ServiceSpec::new("web", vec!["x".into()]);
        spec.env = vec![("PATH".into(), "/opt/bin".into()), ("A".into(), "1".into())];
        let env = environment(&spec, "/home/u", "u");
        assert_eq!(
            env,
            [
                ("PATH".to_string(), "/opt/bin".to_string()),
                ("HOME".into(), "/home/u".into()),
                ("USER".into(), "u".into()),
                ("GOING_SERVICE".into(), "web".into()),
                ("A".into(), "1".into()),
            ]
        );
    }

    #[test]
    fn programs_are_searched_in_path_unless_they_have_a_slash() {
        let candidates = |program, path| {
            let found = candidates(program, path).unwrap().into_iter();
            found.map(|c| c.into_string().unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(candidates("/bin/sh", "/a:/b"), ["/bin/sh"]);
        assert_eq!(candidates("./run", "/a"), ["./run"]);
        assert_eq!(
            candidates("sleep", "/a:/b/::/c"),
            ["/a/sleep", "/b/sleep", "./sleep", "/c/sleep"]
        );
    }

    #[test]
    fn failures_name_the_step_and_the_reason() {
        let mut spec = ServiceSpec::new("web", vec!["nope".into()]);
        spec.dir = "/srv".into();
        assert_eq!(
            describe_failure(Step::Exec as u32, libc::ENOENT, &spec),
            "exec \"nope\": No such file or directory"
        );
        assert_eq!(
            describe_failure(Step::Chdir as u32, libc::ENOENT, &spec),
            "chdir \"/srv\": No such file or directory"
        );
        assert_eq!(
            describe_failure(Step::SetUid as u32, libc::EPERM, &spec),
            "setuid: Operation not permitted"
        );
    }
}
