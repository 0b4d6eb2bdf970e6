//! What going leaves in its runtime directory so that the next going on
//! the same directory takes over instead of starting every service twice:
//! the one init respawns after going died, or the one going itself execs on
//! SIGUSR2.
//!
//! The state file sits beside the control socket (`going.sock` ->
//! `going.state`) and is replaced whole (a temp file renamed over it), so
//! a reader sees the old or the new state, never half of one. A process is
//! taken over only when it is alive with the recorded start time and
//! command line: a pid reused by a stranger is never mistaken for a
//! service. Formatting and parsing are pure; the /proc readers are the
//! only system calls besides the file's own.

use crate::procfs;
use crate::service::Memory;
use crate::util::{Fnv, describe_io};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &str = "going-state 1";

/// One service process as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub pid: i32,
    /// Clock ticks after boot, /proc/PID/stat field 22.
    pub start_time: u64,
    /// The definition it was started from (see [`fingerprint`]).
    pub fingerprint: u64,
    pub restarts: u32,
    /// FNV-1a of /proc/PID/cmdline as it was when recorded.
    pub cmdline: u64,
}

/// An output pipe kept open across the exec of an upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipe {
    pub name: String,
    pub pid: i32,
    pub stderr: bool,
    pub fd: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The going that wrote it: the same pid as the reader's means an exec
    /// (upgrade), whose pipes are still open.
    pub writer: i32,
    pub services: Vec<Record>,
    /// Services stopped with `going stop`.
    pub down: Vec<String>,
    /// The main command of `going -- CMD`: pid and start time.
    pub main: Option<(i32, u64)>,
    pub pipes: Vec<Pipe>,
    /// Counts, backoffs and flapping of services, by name.
    pub memories: Vec<(String, Memory)>,
    /// Starts under way when the file was last written: a process cloned
    /// for each may run though no `svc` line names it yet.
    pub spawning: Vec<Spawning>,
    /// When the first going of this directory started (boot clock ticks).
    pub since: Option<u64>,
}

/// A start announced before its clone: the service, the fingerprint of
/// its definition, and the boot clock tick before the clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spawning {
    pub name: String,
    pub fingerprint: u64,
    pub tick: u64,
}

/// The state file that goes with a control socket path.
pub fn path_for(socket: &Path) -> PathBuf {
    socket.with_extension("state")
}

/// The lines of a state file, written as the loop walks its services
/// (no copy of the whole state is built).
pub fn write_header(out: &mut dyn Write, writer: i32) -> std::io::Result<()> {
    writeln!(out, "{MAGIC} {writer}")
}

pub fn write_main(out: &mut dyn Write, pid: i32, start: u64) -> std::io::Result<()> {
    writeln!(out, "main {pid} {start}")
}

pub fn write_down(out: &mut dyn Write, name: &str) -> std::io::Result<()> {
    writeln!(out, "down {name}")
}

pub fn write_since(out: &mut dyn Write, tick: u64) -> std::io::Result<()> {
    writeln!(out, "since {tick}")
}

/// `mem NAME RESTARTS SHORT_RUNS BACKOFF_MS|- FLAP_MS,...|-`
pub fn write_memory(out: &mut dyn Write, name: &str, memory: &Memory) -> std::io::Result<()> {
    let backoff = memory.backoff_ms.map_or("-".into(), |ms| ms.to_string());
    let flaps: Vec<String> = memory.flaps_ms.iter().map(u64::to_string).collect();
    let flaps = Some(flaps.join(",")).filter(|f| !f.is_empty());
    let flaps = flaps.unwrap_or_else(|| "-".to_string());
    let (restarts, short) = (memory.restarts, memory.short_runs);
    writeln!(out, "mem {name} {restarts} {short} {backoff} {flaps}")
}

impl Spawning {
    /// `spawning NAME FP TICK`, appended before the clone.
    pub fn line(&self) -> String {
        let (name, fingerprint, tick) = (&self.name, self.fingerprint, self.tick);
        format!("spawning {name} {fingerprint:016x} {tick}\n")
    }
}

impl Record {
    /// `svc NAME PID START FP RESTARTS CMDLINE`, the two hashes as 16 hex
    /// digits. Written digit by digit: the state file is rewritten at every
    /// start and stop, with a line per service, and std's formatting of
    /// padded hex was most of that work.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        // The name plus at most 82 bytes: no growing on the way.
        let mut line = Vec::with_capacity(self.name.len() + 96);
        line.extend_from_slice(b"svc ");
        line.extend_from_slice(self.name.as_bytes());
        decimal(&mut line, u64::try_from(self.pid).unwrap_or(0));
        decimal(&mut line, self.start_time);
        hex16(&mut line, self.fingerprint);
        decimal(&mut line, u64::from(self.restarts));
        hex16(&mut line, self.cmdline);
        line.push(b'\n');
        out.write_all(&line)
    }
}

/// A space, then `value` in decimal.
fn decimal(line: &mut Vec<u8>, mut value: u64) {
    line.push(b' ');
    let start = line.len();
    loop {
        line.push(b'0' + (value % 10) as u8);
        value /= 10;
        if value == 0 {
            break;
        }
    }
    line.get_mut(start..).unwrap_or_default().reverse();
}

/// A space, then `value` as 16 lowercase hex digits.
fn hex16(line: &mut Vec<u8>, value: u64) {
    line.push(b' ');
    line.extend(
        (0..16)
            .rev()
            .map(|at| match ((value >> (at * 4)) & 0xf) as u8 {
                nibble @ 0..=9 => b'0' + nibble,
                nibble => b'a' + nibble - 10,
            }),
    );
}

impl Pipe {
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let stderr = u8::from(self.stderr);
        writeln!(out, "pipe {} {} {stderr} {}", self.name, self.pid, self.fd)
    }
}

impl Saved {
    /// Lines it does not understand are skipped: a newer going's state
    /// loses only what this one cannot use.
    pub fn parse(text: &str) -> Option<Saved> {
        let mut lines = text.lines();
        let writer = lines.next()?.strip_prefix(MAGIC)?.trim().parse().ok()?;
        let mut saved = Saved {
            writer,
            ..Saved::default()
        };
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["main", pid, start] => {
                    saved.main = pid.parse().ok().zip(start.parse().ok()).or(saved.main);
                }
                ["svc", name, pid, start, fp, restarts, cmdline] => {
                    let record = (|| {
                        Some(Record {
                            name: (*name).to_string(),
                            pid: pid.parse().ok().filter(|&p: &i32| p > 1)?,
                            start_time: start.parse().ok()?,
                            fingerprint: u64::from_str_radix(fp, 16).ok()?,
                            restarts: restarts.parse().ok()?,
                            cmdline: u64::from_str_radix(cmdline, 16).ok()?,
                        })
                    })();
                    if let Some(record) = record {
                        // A later line (a start appended to the file) wins.
                        saved.services.retain(|r| r.name != record.name);
                        saved.spawning.retain(|s| s.name != record.name);
                        saved.services.push(record);
                    }
                }
                ["down", name] => saved.down.push((*name).to_string()),
                ["since", tick] => saved.since = tick.parse().ok(),
                ["mem", name, restarts, short, backoff, flaps] => {
                    let memory = (|| {
                        let memory = Memory {
                            restarts: restarts.parse().ok()?,
                            short_runs: short.parse().ok()?,
                            backoff_ms: (*backoff != "-").then(|| backoff.parse().ok()).flatten(),
                            flaps_ms: flaps.split(',').filter_map(|f| f.parse().ok()).collect(),
                        };
                        Some(((*name).to_string(), memory))
                    })();
                    saved.memories.extend(memory);
                }
                ["spawning", name, fp, tick] => {
                    if let (Ok(fingerprint), Ok(tick)) = (u64::from_str_radix(fp, 16), tick.parse())
                    {
                        let name = (*name).to_string();
                        saved.spawning.retain(|s| s.name != name);
                        saved.spawning.push(Spawning {
                            name,
                            fingerprint,
                            tick,
                        });
                    }
                }
                ["pipe", name, pid, stderr, fd] => {
                    if let (Ok(pid), Ok(fd)) = (pid.parse(), fd.parse()) {
                        saved.pipes.push(Pipe {
                            name: (*name).to_string(),
                            pid,
                            stderr: *stderr == "1",
                            fd,
                        });
                    }
                }
                _ => {}
            }
        }
        Some(saved)
    }
}

/// True when `record` still describes a live process: same start time,
/// and the recorded command line, or, when the process has since exec'd
/// another program (a shell running its last command), still the leader
/// of the session going gave it.
pub fn still_running(record: &Record) -> bool {
    procfs::start_time(record.pid) == Some(record.start_time)
        && (procfs::cmdline(record.pid).map(|c| Fnv::hash(&c)) == Some(record.cmdline)
            || procfs::session(record.pid) == Some(record.pid))
}

/// Reads the state file, if there is one that going may trust: a regular
/// file owned by going's user and writable by no one else.
pub fn read(path: &Path) -> Result<Option<Saved>, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("{}: {}", path.display(), describe_io(&err))),
    };
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: not a regular file of uid {euid} writable only by it, ignored",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("{}: {}", path.display(), describe_io(&err)))?;
    Saved::parse(&text)
        .map(Some)
        .ok_or_else(|| format!("{}: not a going state file, ignored", path.display()))
}

/// Replaces the state file with what `fill` writes: a temp file beside it,
/// renamed over it.
pub fn write(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = path.with_extension("state.tmp");
    let describe =
        |err: std::io::Error| format!("cannot write {}: {}", path.display(), describe_io(&err));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&temp)
        .map_err(describe)?;
    let mut out = StackBuffer {
        file,
        buf: [0; 1024],
        len: 0,
    };
    let written = fill(&mut out).and_then(|()| out.flush());
    drop(out);
    if let Err(err) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(describe(err));
    }
    Ok(())
}

/// Buffered writes through a buffer on the stack: a heap buffer the size
/// of a page would be mapped and unmapped by musl's allocator on every
/// write, and count against going's peak.
struct StackBuffer {
    file: std::fs::File,
    buf: [u8; 1024],
    len: usize,
}

impl Write for StackBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.len + bytes.len() > self.buf.len() {
            self.flush()?;
        }
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
                Ok(bytes.len())
            }
            None => self.file.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let pending = self.buf.get(..self.len).unwrap_or_default();
        self.file.write_all(pending)?;
        self.len = 0;
        Ok(())
    }
}

/// Adds `line` to the end of the state file, as one write: a start is on
/// record the moment it is made, not only at the next rewrite.
pub fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(line)
}

/// kthreadd, the parent of every kernel thread (whose command line is empty).
const KERNEL_THREADS: i32 = 2;

/// A process that may be the clone of an announced start nothing recorded
/// after it: a session leader started since, whose environment names the
/// service. Only a going killed between a clone and its next write leaves
/// one. Until its exec, the clone shares the dead going's memory, so it
/// shows that going's command line and neither the service's environment
/// nor, yet, its own session (and, in the midst of the exec, no command
/// line at all): `in_flight` is that command line, given for the last
/// announced start only (the one a kill can have cut short).
pub fn find_spawned(spawning: &Spawning, in_flight: Option<&[u8]>) -> Option<i32> {
    let wanted = format!("\0GOING_SERVICE={}\0", spawning.name);
    let me = std::process::id() as i32;
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| {
            let Some(st) = procfs::stat(pid) else {
                return false;
            };
            if st.is_zombie() || st.start_time < spawning.tick || pid == me {
                return false;
            }
            let named = || {
                std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                    let env = [b"\0", env.as_slice()].concat();
                    env.windows(wanted.len()).any(|w| w == wanted.as_bytes())
                })
            };
            let cut_short = |own: &[u8]| {
                let line = procfs::cmdline(pid).unwrap_or_default();
                line == own || line.is_empty() && st.parent != KERNEL_THREADS
            };
            (st.session == pid && named()) || in_flight.is_some_and(cut_short)
        })
}

/// A pidfd for a process going did not fork: readable once it has ended.
pub fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // pidfds are close-on-exec from birth.
    // SAFETY: fd was just returned by the kernel and is owned here.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{age, boot_tick, cmdline, session, start_time, ticks_per_second};

    /// The whole file, as the writers above write it.
    fn format(saved: &Saved) -> String {
        let mut out = Vec::new();
        let _ = write_header(&mut out, saved.writer);
        if let Some((pid, start)) = saved.main {
            let _ = write_main(&mut out, pid, start);
        }
        for r in &saved.services {
            let _ = r.write_to(&mut out);
        }
        for name in &saved.down {
            let _ = write_down(&mut out, name);
        }
        if let Some(since) = saved.since {
            let _ = write_since(&mut out, since);
        }
        for (name, memory) in &saved.memories {
            let _ = write_memory(&mut out, name, memory);
        }
        for spawning in &saved.spawning {
            out.extend_from_slice(spawning.line().as_bytes());
        }
        for p in &saved.pipes {
            let _ = p.write_to(&mut out);
        }
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn the_boot_tick_is_the_start_time_proc_gives() {
        let before = boot_tick().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let after = boot_tick().unwrap();
        let started = start_time(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        let started = started.unwrap();
        assert!(
            before <= started && started <= after,
            "{before} <= {started} <= {after}"
        );
        assert_eq!(ticks_per_second(), 100, "100 ticks a second here");
        let age = age(started).unwrap();
        assert!(age < std::time::Duration::from_secs(2), "{age:?}");
    }

    #[test]
    fn a_clone_cut_short_before_its_exec_is_found_by_its_command_line() {
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("4.71828")
                .spawn()
                .unwrap()
        };
        let mut before = spawn();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let announced = Spawning {
            name: "a-clone-cut-short".into(),
            fingerprint: 1,
            tick: boot_tick().unwrap(),
        };
        let mut after = spawn();
        let own = b"sleep\x004.71828\x00".as_slice();
        // The spawn returns once the exec is past its point of no return,
        // a moment before /proc shows the new command line.
        let shown = || procfs::cmdline(after.id() as i32).as_deref() == Some(own);
        for _ in 0..100 {
            if shown() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found = find_spawned(&announced, Some(own));
        let unnamed = find_spawned(&announced, None);
        for child in [&mut before, &mut after] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(found, Some(after.id() as i32), "started since, same line");
        assert_eq!(unnamed, None, "neither its environment nor a last start");
    }

    fn sample() -> Saved {
        Saved {
            writer: 42,
            services: vec![
                Record {
                    name: "web@1".into(),
                    pid: 1234,
                    start_time: 98765,
                    fingerprint: 0xdead_beef,
                    restarts: 3,
                    cmdline: Fnv::hash(b"/bin/sleep\x001000\x00"),
                },
                Record {
                    name: "db".into(),
                    pid: 77,
                    start_time: 1,
                    fingerprint: u64::MAX,
                    restarts: 0,
                    cmdline: 0,
                },
            ],
            down: vec!["cron".into()],
            main: Some((9, 10)),
            pipes: vec![Pipe {
                name: "web@1".into(),
                pid: 1234,
                stderr: true,
                fd: 7,
            }],
            memories: vec![(
                "cron".into(),
                Memory {
                    restarts: 10,
                    short_runs: 6,
                    backoff_ms: Some(29_500),
                    flaps_ms: vec![100, 2000],
                },
            )],
            spawning: vec![],
            since: Some(4242),
        }
    }

    #[test]
    fn a_start_appended_after_the_file_wins_and_settles_its_announcement() {
        let mut text = format(&sample());
        let announced = Spawning {
            name: "db".into(),
            fingerprint: 5,
            tick: 99,
        };
        let pending = Spawning {
            name: "new".into(),
            fingerprint: 6,
            tick: 100,
        };
        text.push_str(&announced.line());
        text.push_str(&pending.line());
        let started = Record {
            name: "db".into(),
            pid: 78,
            start_time: 101,
            fingerprint: 5,
            restarts: 1,
            cmdline: 3,
        };
        let mut line = Vec::new();
        started.write_to(&mut line).unwrap();
        text.push_str(std::str::from_utf8(&line).unwrap());
        let saved = Saved::parse(&text).unwrap();
        assert_eq!(saved.spawning, vec![pending], "db's start was recorded");
        let db: Vec<_> = saved.services.iter().filter(|r| r.name == "db").collect();
        assert_eq!(db, vec![&started], "the later line replaces the earlier");
    }

    #[test]
    fn state_round_trips() {
        let saved = sample();
        assert_eq!(Saved::parse(&format(&saved)), Some(saved));
    }

    #[test]
    fn a_service_line_is_exact() {
        let line = |record: Record| {
            let mut out = Vec::new();
            record.write_to(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let record = |pid, start_time, fingerprint, restarts, cmdline| Record {
            name: "web@1".into(),
            pid,
            start_time,
            fingerprint,
            restarts,
            cmdline,
        };
        assert_eq!(
            line(record(42, 1234, 0xff, 3, 0x0123_4567_89ab_cdef)),
            "svc web@1 42 1234 00000000000000ff 3 0123456789abcdef\n"
        );
        assert_eq!(
            line(record(1, 0, 0, 0, u64::MAX)),
            "svc web@1 1 0 0000000000000000 0 ffffffffffffffff\n"
        );
        assert_eq!(
            line(record(i32::MAX, u64::MAX, 1, u32::MAX, 0)),
            format!(
                "svc web@1 2147483647 18446744073709551615 0000000000000001 4294967295 0000000000000000\n"
            )
        );
    }

    #[test]
    fn junk_is_skipped_and_bad_headers_refused() {
        let text = format!(
            "{}svc broken 12 x 0 0 00\nsvc odd 12 1 0 0 xyz\nsvc init 1 1 0 0 00\nfuture line\n",
            format(&sample())
        );
        assert_eq!(Saved::parse(&text), Some(sample()));
        assert_eq!(Saved::parse(""), None);
        assert_eq!(Saved::parse("going-state 2 1\n"), None);
        assert_eq!(Saved::parse("something else\n"), None);
    }

    #[test]
    fn own_process_is_recognised_and_a_changed_one_is_not() {
        let pid = std::process::id() as i32;
        let mut record = Record {
            name: "me".into(),
            pid,
            start_time: start_time(pid).unwrap(),
            fingerprint: 0,
            restarts: 0,
            cmdline: Fnv::hash(&cmdline(pid).unwrap()),
        };
        assert!(still_running(&record));
        assert!(age(record.start_time).is_some());
        record.start_time += 1;
        assert!(!still_running(&record));
        record.start_time -= 1;
        record.cmdline ^= 1;
        // The test harness does not lead its own session.
        assert_eq!(session(pid) == Some(pid), still_running(&record));
    }

    #[test]
    fn state_file_is_replaced_whole_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("going-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("going.state");
        assert_eq!(read(&path), Ok(None));
        write(&path, |out| out.write_all(format(&sample()).as_bytes())).unwrap();
        assert_eq!(read(&path), Ok(Some(sample())));
        assert!(!dir.join("going.state.tmp").exists());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
