//! Surviving going's own death: the state file kept current for a next
//! going (`state.rs` is its format), the adoption of what an earlier going
//! left running (watched through pidfds, since such a process is not
//! going's child), and the upgrade that execs a new going in place.

use crate::config;
use crate::part::{Cx, Handover, Notice, Part, PollSet, Started};
use crate::procfs;
use crate::service::{Event, Exit, Memory, Service, State};
use crate::state;
use crate::supervisor::{Adoption, Supervisor};
use crate::util::Fnv;
use crate::util::signal_group;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

#[derive(Default)]
pub struct Takeover {
    /// The service directory, to tell a removed file from a broken one.
    dir: PathBuf,
    /// Where the services are recorded for the next going.
    path: PathBuf,
    /// going's own arguments, for the exec of an upgrade.
    argv: Vec<std::ffi::OsString>,
    /// Signature of the pids and states last recorded.
    recorded: u64,
    /// Sorted by pid.
    recorded_procs: Vec<Recorded>,
    /// Services' processes started since the last state write: their
    /// command line is the one going exec'd, which /proc may not show yet
    /// (the exec can still be loading the program when clone returns), and
    /// a read of /proc/PID/stat would wait for that exec.
    fresh_spawns: Vec<FreshSpawn>,
    /// The last write failed, and said so.
    failed: bool,
    adopted: Vec<AdoptedWatch>,
    /// When the first going of this directory started, in boot clock
    /// ticks: carried across upgrades and adoptions.
    since: u64,
}

/// What the state file last said of one process, by pid: reused so that
/// a write reads /proc only for processes new since the last one.
struct Recorded {
    pid: i32,
    start_time: u64,
    /// The exec was confirmed when this was read.
    exec_done: bool,
    cmdline: u64,
}

/// A service's process started since the last state write.
struct FreshSpawn {
    pid: i32,
    /// When known from the clock at the clone (spawn.rs), without /proc.
    start_time: Option<u64>,
}

/// A process taken over from an earlier going that is not going's child:
/// its pidfd turns readable when it ends.
struct AdoptedWatch {
    pid: i32,
    fd: OwnedFd,
    done: bool,
}

impl Takeover {
    pub fn new(dir: PathBuf, path: PathBuf, argv: Vec<std::ffi::OsString>) -> Takeover {
        Takeover {
            dir,
            path,
            argv,
            since: procfs::start_time(std::process::id() as i32).unwrap_or(0),
            ..Takeover::default()
        }
    }

    /// Adopts what the state file says an earlier going left running: each
    /// process that is alive with its recorded start time and command line.
    /// What the other parts take back is returned.
    pub fn take_over(&mut self, supervisor: &mut Supervisor) -> Handover {
        let read = state::read(&self.path).inspect_err(|why| log::warn!("{why}"));
        let Ok(Some(saved)) = read else {
            return self.begin_file();
        };
        let me = std::process::id() as i32;
        let mut adoptions = Vec::new();
        let mut records = saved.services;
        // Starts announced but not recorded: the going before died between
        // a clone and its next write, and the clone may run.
        let started = |pid| Some((pid, procfs::start_time(pid)?));
        let last = saved.spawning.len().checked_sub(1);
        for (i, spawning) in saved.spawning.iter().enumerate() {
            let own = (Some(i) == last).then(|| procfs::cmdline(me)).flatten();
            let found = state::find_spawned(spawning, own.as_deref());
            let Some((pid, start_time)) = found.and_then(started) else {
                continue;
            };
            let memory = saved.memories.iter().find(|(n, _)| *n == spawning.name);
            records.push(state::Record {
                name: spawning.name.clone(),
                pid,
                start_time,
                fingerprint: spawning.fingerprint,
                restarts: memory.map_or(0, |(_, m)| m.restarts),
                cmdline: procfs::cmdline(pid).map_or(0, |c| Fnv::hash(&c)),
            });
        }
        if let Some(since) = saved.since {
            self.since = since;
            crate::status::set_going_since(since);
        }
        for record in records {
            if !state::still_running(&record) {
                continue;
            }
            // After an upgrade they are still going's children; after a
            // crash they belong to init, and only a pidfd tells their end.
            if procfs::parent(record.pid) != Some(me) {
                let Some(fd) = state::pidfd(record.pid) else {
                    let why = nix::errno::Errno::last().desc();
                    log::warn!(target: &record.name, "cannot watch pid {}: {why}; starting anew", record.pid);
                    continue;
                };
                let (pid, done) = (record.pid, false);
                self.adopted.push(AdoptedWatch { pid, fd, done });
            }
            adoptions.push(Adoption {
                age: procfs::age(record.start_time).unwrap_or_default(),
                name: record.name,
                pid: record.pid,
                restarts: record.restarts,
                fingerprint: record.fingerprint,
            });
        }
        // The same pid: this going is the exec of an upgrade, and the
        // pipes the state names are still open.
        let mut pipes = saved.pipes;
        pipes.retain(|pipe| {
            saved.writer == me && adoptions.iter().any(|a| a.pid == pipe.pid) && is_fifo(pipe.fd)
        });
        supervisor.take_over(adoptions, saved.down);
        supervisor.remember(saved.memories);
        let main = saved.main;
        Handover { main, pipes }
    }

    /// A state file with nothing in it yet, for the first starts to be
    /// appended to before the first full write.
    fn begin_file(&mut self) -> Handover {
        let me = std::process::id() as i32;
        if let Err(why) = state::write(&self.path, |out| state::write_header(out, me)) {
            self.failed_to_write(why);
        }
        Handover::default()
    }

    /// Says once (until a full write succeeds) that the file is not kept.
    fn failed_to_write(&mut self, why: String) {
        if !self.failed {
            log::warn!("{why}; a going restarted after a crash may start services twice");
            self.failed = true;
        }
    }

    /// Adds a line to the file, as one write.
    fn append(&mut self, line: &[u8]) {
        if let Err(err) = state::append(&self.path, line) {
            let why = crate::util::describe_io(&err);
            self.failed_to_write(format!("cannot write {}: {why}", self.path.display()));
        }
    }

    /// Adopted processes no service took: their file is gone (stopped, as
    /// a removed file stops its service) or does not parse (left alone).
    pub fn stop_unclaimed(&mut self, cx: &mut Cx<'_>) {
        for orphan in cx.supervisor.unclaimed() {
            self.adopted.retain(|watch| watch.pid != orphan.pid);
            let base = crate::service::base_name(&orphan.name);
            if matches!(config::load(&self.dir, base), config::Loaded::Broken { .. }) {
                log::warn!(target: &orphan.name, "pid {} left running unsupervised: its file does not parse", orphan.pid);
                continue;
            }
            log::info!(target: &orphan.name, "no longer defined, sending TERM to pid {}", orphan.pid);
            signal_group(orphan.pid, libc::SIGTERM);
        }
    }

    /// Writes what a next going needs to take over, service by service.
    fn write_state(
        &self,
        out: &mut dyn std::io::Write,
        supervisor: &Supervisor,
        main: Option<(i32, u64)>,
        known: &[Recorded],
    ) -> std::io::Result<Vec<Recorded>> {
        let now = std::time::Instant::now();
        state::write_header(out, std::process::id() as i32)?;
        state::write_since(out, self.since)?;
        if let Some((pid, start)) = main {
            state::write_main(out, pid, start)?;
        }
        let mut recorded = Vec::new();
        for s in supervisor.services() {
            if s.is_admin_down() {
                state::write_down(out, s.name())?;
            }
            let memory = s.memory(now);
            if memory != Memory::default() {
                state::write_memory(out, s.name(), &memory)?;
            }
            if !s.is_active() {
                continue;
            }
            let Some(pid) = s.pid() else { continue };
            let exec_done = s.state() != State::Starting;
            let cached = known
                .binary_search_by_key(&pid, |r| r.pid)
                .ok()
                .and_then(|at| known.get(at))
                .filter(|r| r.exec_done || !exec_done);
            let (start_time, cmdline) = match cached {
                Some(r) => (r.start_time, r.cmdline),
                None => {
                    let fresh = self.fresh_spawns.iter().find(|f| f.pid == pid);
                    let known = fresh.and_then(|f| f.start_time);
                    let Some(start_time) = known.or_else(|| procfs::start_time(pid)) else {
                        continue;
                    };
                    // What going exec'd, for a process it started: /proc
                    // may still show going's own command line, or none.
                    // An adopted one has had its exec long ago.
                    let cmdline = if exec_done && fresh.is_none() {
                        Fnv::hash(&procfs::cmdline(pid).unwrap_or_default())
                    } else {
                        argv_hash(&s.spec.argv)
                    };
                    (start_time, cmdline)
                }
            };
            let record = record_of(s, pid, start_time, cmdline);
            record.write_to(out)?;
            recorded.push(Recorded {
                pid,
                start_time,
                exec_done,
                cmdline,
            });
        }
        crate::util::sort_by_key(&mut recorded, |r| r.pid);
        Ok(recorded)
    }

    /// Rewrites the state file when a pid or state changed.
    fn record(&mut self, supervisor: &Supervisor, main_pid: Option<i32>) {
        let mut signature = Fnv::default();
        for s in supervisor.services() {
            signature = signature
                .feed(s.name().as_bytes())
                .feed(&s.pid().unwrap_or(0).to_le_bytes())
                .feed(s.state().name().as_bytes())
                .feed(&s.restarts().to_le_bytes())
                .feed(&[u8::from(s.is_admin_down())]);
        }
        let signature = signature.feed(&main_pid.unwrap_or(0).to_le_bytes()).0;
        if signature == self.recorded {
            return;
        }
        self.recorded = signature;
        let main = main_pid.and_then(|pid| Some((pid, procfs::start_time(pid)?)));
        let known = std::mem::take(&mut self.recorded_procs);
        let mut fresh = Vec::new();
        let written = state::write(&self.path, |out| {
            fresh = self.write_state(out, supervisor, main, &known)?;
            Ok(())
        });
        self.recorded_procs = fresh;
        // Recorded now, or read from /proc next time (its exec long done).
        self.fresh_spawns.clear();
        match written {
            Ok(()) => self.failed = false,
            Err(why) => self.failed_to_write(why),
        }
    }

    /// SIGUSR2 or `going upgrade`: execs going's binary (the new one,
    /// after a package upgrade) with the same arguments. The services stay
    /// going's children; the new going takes them over from the state
    /// file. A failed exec leaves this going as it was.
    pub fn upgrade(&mut self, supervisor: &Supervisor, handover: Handover) {
        let failure = self.exec_self(supervisor, &handover);
        log::error!("upgrade failed: {failure}; going carries on");
        for pipe in &handover.pipes {
            // SAFETY: the output part owns these descriptors and lent them
            // for the exec; they are only marked close-on-exec again.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(pipe.fd) };
            let flags = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC);
            let _ = nix::fcntl::fcntl(fd, flags);
        }
        self.recorded = 0; // the file names pipes that are closed again
    }

    /// Records everything and execs; returns only on failure, with why.
    fn exec_self(&mut self, supervisor: &Supervisor, handover: &Handover) -> String {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let exe = match std::fs::read_link("/proc/self/exe") {
            Ok(exe) => exe.into_os_string().into_vec(),
            Err(err) => return format!("/proc/self/exe: {}", crate::util::describe_io(&err)),
        };
        // A replaced binary shows as "PATH (deleted)": the new one is at PATH.
        let exe = exe.strip_suffix(b" (deleted)").unwrap_or(&exe).to_vec();
        let shown = String::from_utf8_lossy(&exe).into_owned();
        let written = state::write(&self.path, |out| {
            self.write_state(out, supervisor, handover.main, &[])?;
            handover
                .pipes
                .iter()
                .try_for_each(|pipe| pipe.write_to(out))
        });
        if let Err(why) = written {
            return why;
        }
        let args: Option<Vec<std::ffi::CString>> = std::iter::once(exe)
            .chain(self.argv.iter().map(|a| a.as_bytes().to_vec()))
            .map(|a| std::ffi::CString::new(a).ok())
            .collect();
        let Some(args) = args else {
            return "an argument holds a NUL byte".to_string();
        };
        let Some(path) = args.first() else {
            return "no program".to_string();
        };
        log::info!("SIGUSR2, executing {shown}");
        let errno = nix::unistd::execv(path, &args).map_or_else(|e| e, |never| match never {});
        format!("cannot execute {shown}: {}", errno.desc())
    }
}

impl Part for Takeover {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        for (index, watch) in self.adopted.iter().enumerate() {
            set.read(watch.fd.as_fd(), index as u32);
        }
    }

    /// An adopted process that is not going's child has ended.
    fn ready(&mut self, token: u32, _revents: nix::poll::PollFlags, cx: &mut Cx<'_>) {
        let Some(watch) = self.adopted.get_mut(token as usize) else {
            return;
        };
        watch.done = true;
        let pid = watch.pid;
        let Some(name) = cx.supervisor.by_pid(pid).map(str::to_string) else {
            return;
        };
        let (status, exec_error) = (Exit::Unknown, None);
        cx.event(&name, Event::Exited { status, exec_error });
        let work = cx.supervisor.awaiting_group();
        cx.out.work.extend(work);
    }

    fn before_sleep(&mut self, cx: &mut Cx<'_>) {
        self.adopted.retain(|watch| !watch.done);
        self.record(cx.supervisor, cx.main_pid);
    }

    /// A start is on record before its clone, so that a going killed
    /// while the clone runs leaves its successor a trace of it.
    fn spawning(&mut self, name: &str, cx: &mut Cx<'_>) {
        let Some(service) = cx.supervisor.get(name) else {
            return;
        };
        let spawning = state::Spawning {
            name: name.to_string(),
            fingerprint: service.fingerprint(),
            tick: procfs::boot_tick().unwrap_or(0),
        };
        self.append(spawning.line().as_bytes());
    }

    fn spawned(&mut self, started: &mut Started, cx: &mut Cx<'_>) {
        if started.hook {
            return;
        }
        let (pid, start_time) = (started.child.pid, started.child.start_time);
        self.fresh_spawns.push(FreshSpawn { pid, start_time });
        let Some(service) = cx.supervisor.get(&started.name) else {
            return;
        };
        let Some(start_time) = start_time.or_else(|| procfs::start_time(pid)) else {
            return;
        };
        let record = record_of(service, pid, start_time, argv_hash(&service.spec.argv));
        let mut line = Vec::new();
        if record.write_to(&mut line).is_ok() {
            self.append(&line);
        }
    }

    fn notice(&mut self, notice: Notice, _cx: &mut Cx<'_>) {
        if notice == Notice::Exiting {
            // Nothing is left running for a next going to take over.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What the state file says of a service's process.
fn record_of(s: &Service, pid: i32, start_time: u64, cmdline: u64) -> state::Record {
    state::Record {
        name: s.name().to_string(),
        pid,
        start_time,
        fingerprint: s.fingerprint(),
        restarts: s.restarts(),
        cmdline,
    }
}

/// The hash of /proc/PID/cmdline once `argv` is exec'd.
fn argv_hash(argv: &[String]) -> u64 {
    let feed = |hash: Fnv, arg: &String| hash.feed(arg.as_bytes()).feed(b"\0");
    argv.iter().fold(Fnv::default(), feed).0
}

/// A number the state file named, which may be any descriptor or none:
/// nix's fstat wants a descriptor known to be open, so libc's is used.
fn is_fifo(fd: i32) -> bool {
    // SAFETY: fstat into a zeroed struct; the result is checked.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFIFO
    }
}
