//! What going reads of other processes in /proc: one parser of
//! /proc/PID/stat for every field going uses, the command line, and
//! whether a process group still has a live member.

use nix::unistd::SysconfVar;
use std::time::Duration;

/// The fields of /proc/PID/stat that going uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `Z`...
    pub state: u8,
    pub parent: i32,
    pub group: i32,
    pub session: i32,
    /// Fields 14 and 15, in clock ticks.
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// Field 22: clock ticks after boot.
    pub start_time: u64,
    /// Field 24, in pages.
    pub rss_pages: u64,
}

impl Stat {
    /// Parses a stat line; the command name (field 2) may hold spaces,
    /// parentheses and bytes that are not UTF-8, so fields are counted
    /// from its last `)`.
    pub fn parse(line: &[u8]) -> Option<Stat> {
        let after = line.get(line.iter().rposition(|&b| b == b')')? + 1..)?;
        let mut fields = std::str::from_utf8(after).ok()?.split_ascii_whitespace();
        // `field(n)` takes field n, counting on from the last one taken.
        let mut at = 3;
        let mut field = |n: usize| -> Option<&str> {
            let skip = n.checked_sub(at)?;
            at = n + 1;
            fields.nth(skip)
        };
        let state = *field(3)?.as_bytes().first()?;
        Some(Stat {
            state,
            parent: field(4)?.parse().ok()?,
            group: field(5)?.parse().ok()?,
            session: field(6)?.parse().ok()?,
            user_ticks: field(14)?.parse().ok()?,
            system_ticks: field(15)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
            rss_pages: field(24)?.parse().ok()?,
        })
    }

    pub fn is_zombie(&self) -> bool {
        self.state == b'Z'
    }
}

/// /proc/PID/stat, in one read into a stack buffer: the line is well under
/// 1 kB (a name of at most 64 bytes, 50 numbers).
pub fn stat(pid: i32) -> Option<Stat> {
    use std::io::Read;
    let mut buffer = [0u8; 1024];
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let n = file.read(&mut buffer).ok()?;
    Stat::parse(buffer.get(..n)?)
}

/// Start time of a live process; `None` once it is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).filter(|s| !s.is_zombie()).map(|s| s.start_time)
}

/// The parent of a live process.
pub fn parent(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.parent)
}

/// The session a process leads or belongs to.
pub fn session(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.session)
}

pub fn cmdline(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline")).ok()
}

/// True while any live process of the group `group` exists.
pub fn group_alive(group: i32) -> bool {
    use nix::sys::signal::killpg;
    match killpg(nix::unistd::Pid::from_raw(group), None) {
        Err(nix::errno::Errno::ESRCH) => return false,
        Err(_) => return true,
        Ok(()) => {}
    }
    // kill counts zombies, and those of an adopted service are another
    // parent's to reap (maybe never): only a live member keeps a stop going.
    processes().is_none_or(|mut all| all.any(|(_, s)| !s.is_zombie() && s.group == group))
}

/// Every process in /proc, with its stat.
fn processes() -> Option<impl Iterator<Item = (i32, Stat)>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let pids = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
    Some(pids.filter_map(|pid| Some((pid, stat(pid)?))))
}

/// Every live (not zombie) descendant of `root`, by one scan of the parent
/// of each process in /proc (/proc/PID/task/TID/children needs a kernel
/// option that is often off). Parents come before their children.
pub fn descendants(root: i32) -> Vec<i32> {
    let all: Vec<(i32, Stat)> = processes().into_iter().flatten().collect();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while !parents.is_empty() {
        let children: Vec<i32> = all
            .iter()
            .filter(|(pid, s)| parents.contains(&s.parent) && !found.contains(pid))
            .map(|&(pid, _)| pid)
            .collect();
        found.extend(children.iter().copied());
        parents = children;
    }
    found.retain(|&pid| all.iter().any(|(p, s)| *p == pid && !s.is_zombie()));
    found
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Clock ticks a second (USER_HZ, 100 almost everywhere): the unit of the
/// times in /proc/PID/stat.
pub fn ticks_per_second() -> u64 {
    sysconf(SysconfVar::CLK_TCK).unwrap_or(100)
}

/// Nanoseconds since boot by CLOCK_BOOTTIME, the clock that /proc/PID/stat
/// start times count in (time namespaces shift both alike).
fn boot_nanos() -> Option<u64> {
    use nix::time::{ClockId, clock_gettime};
    let now = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    u64::try_from(now.tv_sec())
        .ok()?
        .checked_mul(NANOS_PER_SECOND)?
        .checked_add(u64::try_from(now.tv_nsec()).ok()?)
}

/// The clock tick since boot that a process started now would show as its
/// start time. `None` where a tick is not a whole number of nanoseconds,
/// for which the kernel rounds differently.
pub fn boot_tick() -> Option<u64> {
    let ticks = ticks_per_second();
    if !NANOS_PER_SECOND.is_multiple_of(ticks) {
        return None;
    }
    Some(boot_nanos()? / (NANOS_PER_SECOND / ticks))
}

/// How long ago a process started, from its start time.
pub fn age(start_time: u64) -> Option<Duration> {
    let started = start_time.checked_mul(NANOS_PER_SECOND)? / ticks_per_second();
    Some(Duration::from_nanos(boot_nanos()?.saturating_sub(started)))
}

/// The size of a page, in kB.
pub fn page_kb() -> u64 {
    sysconf(SysconfVar::PAGE_SIZE).unwrap_or(4096) / 1024
}

/// A positive value of sysconf(3).
fn sysconf(var: SysconfVar) -> Option<u64> {
    let value = nix::unistd::sysconf(var).ok().flatten()?;
    u64::try_from(value).ok().filter(|&value| value > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_from_the_last_parenthesis() {
        let line = b"42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000000 250 18446744073709551615";
        let stat = Stat::parse(line).expect("parses");
        assert_eq!(stat.state, b'S');
        assert_eq!((stat.parent, stat.group, stat.session), (1, 42, 42));
        assert_eq!((stat.user_ticks, stat.system_ticks), (7, 3));
        assert_eq!(stat.start_time, 12345);
        assert_eq!(stat.rss_pages, 250);
    }

    #[test]
    fn a_short_or_nameless_line_is_none() {
        assert_eq!(Stat::parse(b"42 S 1 2 3"), None);
        assert_eq!(Stat::parse(b"42 (x) S 1 2"), None);
    }

    #[test]
    fn going_reads_itself() {
        let me = std::process::id() as i32;
        let stat = stat(me).expect("own stat");
        assert_eq!(stat.parent, nix::unistd::getppid().as_raw());
        assert_eq!(start_time(me), Some(stat.start_time));
        assert!(group_alive(nix::unistd::getpgrp().as_raw()));
    }

    #[test]
    fn descendants_are_found_to_the_great_grandchild() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sh -c 'sleep 5 & wait' & wait"])
            .spawn()
            .expect("spawn sh");
        let sh = child.id() as i32;
        let mut found = Vec::new();
        for _ in 0..200 {
            found = descendants(sh);
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let parents: Vec<Option<i32>> = found.iter().map(|&pid| parent(pid)).collect();
        for pid in found.iter().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.wait();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(parents, [Some(sh), Some(found[0])]);
    }
}
