//! `log = PATH`: a service's stdout and stderr come through one pipe, read
//! in the loop without blocking, cut into lines with output.rs's bounded
//! [`LineBuffer`], and appended whole to PATH, which rotates at
//! `log-max-size` (PATH -> PATH.1 ... PATH.N, N = `log-keep`). A file that
//! cannot be written holds up neither the loop nor the service: its lines
//! are dropped and counted, and it is tried again once a second has passed
//! and lines come (no timer: an idle going still never wakes).

use crate::config::LogSpec;
use crate::output::LineBuffer;
use crate::part::{Cx, Handover, Notice, Part, PollSet, Started};
use crate::supervisor::Supervisor;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a file that failed is left alone before it is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Bytes read from a pipe at a time, and at most this many reads a turn,
/// so that one flooding service cannot hold the loop.
const READ_SIZE: usize = 4096;
const READS_PER_TURN: usize = 16;
/// Whole lines gathered for one write; a line is at most LINE_MAX + 1.
const BATCH: usize = 4096;
/// Marks a log pipe among the output pipes of a [`Handover`]: the state
/// file line is then `pipe NAME/log PID 0 FD`.
const HANDOVER_MARK: &str = "/log";

/// The part: every log pipe, and the files they go to.
#[derive(Default)]
pub struct LogFiles {
    pipes: Vec<LogPipe>,
    /// Slots, shared by the pipes that write to one path (a service, its
    /// hooks, what is left of its last process); freed when none does.
    files: Vec<Option<LogFile>>,
    /// A pipe closed this turn: some file may be unused.
    closed_any: bool,
}

struct LogPipe {
    name: String,
    /// The process it was made for, which an upgrade checks is adopted.
    pid: i32,
    fd: OwnedFd,
    lines: LineBuffer,
    /// Its slot in `files`: `None` for a pipe taken back after an upgrade
    /// until its first lines (the services are read after `take_back`), or
    /// for a service that no longer has a log.
    file: Option<usize>,
    closed: bool,
}

impl Part for LogFiles {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        for (index, pipe) in self.pipes.iter().enumerate() {
            set.read(pipe.fd.as_fd(), index as u32);
        }
    }

    fn ready(&mut self, token: u32, _revents: nix::poll::PollFlags, cx: &mut Cx<'_>) {
        self.drain(token as usize, cx.supervisor, cx.now);
    }

    fn before_sleep(&mut self, _cx: &mut Cx<'_>) {
        if !std::mem::take(&mut self.closed_any) {
            return;
        }
        // Only here: tokens are indexes, which must not move within a turn.
        self.pipes.retain(|pipe| !pipe.closed);
        for (index, slot) in self.files.iter_mut().enumerate() {
            if !self.pipes.iter().any(|p| p.file == Some(index))
                && let Some(file) = slot.take()
            {
                file.report_dropped();
            }
        }
    }

    fn spawned(&mut self, started: &mut Started, cx: &mut Cx<'_>) {
        let Some(fd) = started.child.log_pipe.take() else {
            return;
        };
        let file = slot_for(&mut self.files, &started.name, cx.supervisor);
        let pipe = LogPipe::new(&started.name, started.child.pid, fd, file);
        self.pipes.push(pipe);
    }

    fn notice(&mut self, notice: Notice, cx: &mut Cx<'_>) {
        if notice == Notice::Exiting {
            // The last words of the services, before going goes.
            for index in 0..self.pipes.len() {
                self.drain(index, cx.supervisor, cx.now);
            }
            for file in self.files.iter().flatten() {
                file.report_dropped();
            }
        }
    }

    fn hand_over(&mut self, handover: &mut Handover) {
        for pipe in &self.pipes {
            if fcntl(&pipe.fd, FcntlArg::F_SETFD(FdFlag::empty())).is_ok() {
                handover.pipes.push(crate::state::Pipe {
                    name: format!("{}{HANDOVER_MARK}", pipe.name),
                    pid: pipe.pid,
                    stderr: false,
                    fd: pipe.fd.as_raw_fd(),
                });
            }
        }
    }

    fn take_back(&mut self, handover: &mut Handover) {
        let mine = handover
            .pipes
            .extract_if(.., |p| p.name.ends_with(HANDOVER_MARK));
        for pipe in mine {
            // SAFETY: the old going left this pipe open for its heir (the
            // takeover part checked it is one), and nothing else in this
            // process owns it: the output part takes only the others.
            let fd = unsafe { OwnedFd::from_raw_fd(pipe.fd) };
            let _ = fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
            let name = pipe.name.strip_suffix(HANDOVER_MARK).unwrap_or_default();
            self.pipes.push(LogPipe::new(name, pipe.pid, fd, None));
        }
    }
}

impl LogPipe {
    fn new(name: &str, pid: i32, fd: OwnedFd, file: Option<usize>) -> LogPipe {
        LogPipe {
            name: name.to_string(),
            pid,
            fd,
            lines: LineBuffer::default(),
            file,
            closed: false,
        }
    }
}

/// The slot of the file `name`'s definition logs to, taken or made.
fn slot_for(
    files: &mut Vec<Option<LogFile>>,
    name: &str,
    supervisor: &Supervisor,
) -> Option<usize> {
    let log = supervisor.get(name)?.spec.log()?;
    let mut slots = files.iter_mut().enumerate();
    if let Some((index, Some(file))) =
        slots.find(|(_, s)| s.as_ref().is_some_and(|f| f.spec.path == log.path))
    {
        // The newest definition's limits.
        (file.spec.max_size, file.spec.keep) = (log.max_size, log.keep);
        return Some(index);
    }
    let file = Some(LogFile::new(name, log.clone()));
    if let Some((free, slot)) = files.iter_mut().enumerate().find(|(_, s)| s.is_none()) {
        *slot = file;
        return Some(free);
    }
    files.push(file);
    Some(files.len() - 1)
}

impl LogFiles {
    /// Reads what the pipe `index` holds (a bounded amount) and appends
    /// its whole lines; at end of file the unterminated rest is the last
    /// line.
    fn drain(&mut self, index: usize, supervisor: &Supervisor, now: Instant) {
        let Some(pipe) = self.pipes.get_mut(index).filter(|p| !p.closed) else {
            return;
        };
        if pipe.file.is_none() {
            pipe.file = slot_for(&mut self.files, &pipe.name, supervisor);
        }
        let mut file = pipe
            .file
            .and_then(|slot| self.files.get_mut(slot)?.as_mut());
        let mut batch = Batch {
            bytes: [0; BATCH],
            len: 0,
        };
        let mut buffer = [0u8; READ_SIZE];
        // A read that ended with a newline left no partial line (a turn
        // with nothing to read leaves the buffer as it was).
        let mut clean = false;
        let mut emit = |line: &[u8]| {
            if let Some(file) = file.as_deref_mut() {
                file.append(&mut batch, line, now);
            }
        };
        for _ in 0..READS_PER_TURN {
            match nix::unistd::read(pipe.fd.as_fd(), &mut buffer) {
                Ok(0) => pipe.closed = true,
                Ok(n) => {
                    let bytes = buffer.get(..n).unwrap_or_default();
                    clean = bytes.last() == Some(&b'\n');
                    pipe.lines.push(bytes, &mut emit);
                    continue;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {}
                // A pipe that cannot be read is as good as closed.
                Err(_) => pipe.closed = true,
            }
            break;
        }
        if pipe.closed {
            pipe.lines.finish(&mut emit);
            self.closed_any = true;
        } else if clean {
            // No heap kept for a service between its lines.
            pipe.lines = LineBuffer::default();
        }
        if let Some(file) = file {
            file.flush(&mut batch, now);
        }
    }
}

/// Whole lines waiting to be written together, each ending in its newline.
struct Batch {
    bytes: [u8; BATCH],
    len: usize,
}

/// The lines in whole lines' bytes.
fn lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// One log file, as going writes it.
struct LogFile {
    /// The service, for going's own log.
    name: String,
    spec: LogSpec,
    /// Open while it takes lines; closed when it failed.
    fd: Option<OwnedFd>,
    /// Its size as going counts it (checked before each rotation).
    size: u64,
    /// Lines lost since it last took some.
    dropped: u64,
    /// While it fails: when it may be tried again.
    retry_at: Option<Instant>,
}

impl LogFile {
    fn new(name: &str, spec: LogSpec) -> LogFile {
        LogFile {
            name: name.to_string(),
            spec,
            fd: None,
            size: 0,
            dropped: 0,
            retry_at: None,
        }
    }

    /// Adds one line to the batch, writing out and rotating first when
    /// the line would take the file past its size.
    fn append(&mut self, batch: &mut Batch, line: &[u8], now: Instant) {
        let record = line.len() + 1;
        if self.open(now) {
            let pending = self.size + batch.len as u64;
            let full = pending > 0 && pending + record as u64 > self.spec.max_size;
            if full || batch.len + record > BATCH {
                self.flush(batch, now);
                if full {
                    self.rotate_if_full(record as u64, now);
                }
            }
        }
        if self.fd.is_none() {
            self.dropped += 1;
            return;
        }
        let end = batch.len + line.len();
        if let Some(room) = batch.bytes.get_mut(batch.len..=end) {
            let (text, newline) = room.split_at_mut(line.len());
            text.copy_from_slice(line);
            newline.fill(b'\n');
            batch.len = end + 1;
        }
    }

    /// True when the file is open, opening it if it is time to try.
    fn open(&mut self, now: Instant) -> bool {
        if self.fd.is_none() && self.retry_at.is_none_or(|at| now >= at) {
            match open_log(&self.spec.path) {
                Ok((fd, size)) => (self.fd, self.size) = (Some(fd), size),
                Err(why) => self.fail(&why, now),
            }
        }
        self.fd.is_some()
    }

    /// Writes the batch out whole. Lines it could not write are dropped,
    /// and a line cut by a full disk is taken off again: no line is ever
    /// split.
    fn flush(&mut self, batch: &mut Batch, now: Instant) {
        let len = std::mem::take(&mut batch.len);
        let bytes = batch.bytes.get(..len).unwrap_or_default();
        if bytes.is_empty() {
            return;
        }
        let Some(fd) = &self.fd else {
            self.dropped += lines(bytes);
            return;
        };
        let mut done = 0;
        let failed = loop {
            let Some(rest) = bytes.get(done..).filter(|rest| !rest.is_empty()) else {
                break None;
            };
            match nix::unistd::write(fd, rest) {
                Ok(0) => break Some(Errno::ENOSPC),
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(errno) => break Some(errno),
            }
        };
        let Some(errno) = failed else {
            self.size += done as u64;
            if self.retry_at.take().is_some() {
                self.report_dropped();
                self.dropped = 0;
            }
            return;
        };
        let written = bytes.get(..done).unwrap_or_default();
        let whole = written
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        if whole < done
            && let Ok(stat) = nix::sys::stat::fstat(fd)
        {
            let cut = stat.st_size - (done - whole) as i64;
            let _ = nix::unistd::ftruncate(fd, cut.max(0));
        }
        self.size += whole as u64;
        self.dropped += lines(bytes.get(whole..).unwrap_or_default());
        self.fail(errno.desc(), now);
    }

    /// Rotates when the file is really too full for `record` more bytes
    /// (going's count is checked: the file may have been cut by hand).
    fn rotate_if_full(&mut self, record: u64, now: Instant) {
        let Some(fd) = &self.fd else {
            return;
        };
        if let Ok(stat) = nix::sys::stat::fstat(fd) {
            self.size = u64::try_from(stat.st_size).unwrap_or(0);
        }
        if self.size == 0 || self.size + record <= self.spec.max_size {
            return;
        }
        match self.rotate() {
            Ok(()) => _ = self.open(now),
            Err(why) => self.fail(&why, now),
        }
    }

    /// PATH.N-1 -> PATH.N ... PATH -> PATH.1, then a new PATH (opened by
    /// the caller); with `log-keep = 0`, PATH is emptied instead.
    fn rotate(&mut self) -> Result<(), String> {
        if self.spec.keep == 0 {
            if let Some(fd) = &self.fd {
                nix::unistd::ftruncate(fd, 0)
                    .map_err(|e| format!("cannot empty it: {}", e.desc()))?;
            }
            self.size = 0;
            return Ok(());
        }
        for n in (1..=self.spec.keep).rev() {
            let to = numbered(&self.spec.path, n);
            if let Err(e) = std::fs::rename(numbered(&self.spec.path, n - 1), &to)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                let why = crate::util::describe_io(&e);
                return Err(format!("cannot rename it to {}: {why}", to.display()));
            }
        }
        self.fd = None;
        self.size = 0;
        Ok(())
    }

    /// Closes the file and drops its lines for [`RETRY`]; said once a
    /// failure, not once a line.
    fn fail(&mut self, why: &str, now: Instant) {
        if self.retry_at.is_none() {
            log::warn!(
                target: &self.name,
                "cannot write {}: {why}; dropping its lines until it can",
                self.spec.path.display()
            );
        }
        self.fd = None;
        self.retry_at = Some(now + RETRY);
    }

    fn report_dropped(&self) {
        if self.dropped > 0 {
            let (path, count) = (self.spec.path.display(), self.dropped);
            let plural = if count == 1 { "" } else { "s" };
            log::warn!(target: &self.name, "{path}: dropped {count} line{plural}");
        }
    }
}

/// `PATH.N`, and PATH itself for 0.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    if n > 0 {
        name.push(format!(".{n}"));
    }
    PathBuf::from(name)
}

/// Opens PATH to append, as going's user, created 0640 (less what the
/// umask takes); only a regular file will do: a FIFO or a device could
/// block the loop. O_NONBLOCK makes the open itself of a FIFO without a
/// reader fail instead of wait.
fn open_log(path: &Path) -> Result<(OwnedFd, u64), String> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::{Mode, SFlag};
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY;
    let fd = nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o640))
        .map_err(|e| e.desc().to_string())?;
    let stat = nix::sys::stat::fstat(&fd).map_err(|e| e.desc().to_string())?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err("not a regular file".into());
    }
    Ok((fd, u64::try_from(stat.st_size).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("going-logfiles-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn log_file(path: &Path, max_size: u64, keep: u32) -> LogFile {
        let path = path.to_path_buf();
        LogFile::new(
            "x",
            LogSpec {
                path,
                max_size,
                keep,
            },
        )
    }

    fn write_lines(file: &mut LogFile, lines: &[Vec<u8>], now: Instant) {
        let mut batch = Batch {
            bytes: [0; BATCH],
            len: 0,
        };
        for line in lines {
            file.append(&mut batch, line, now);
        }
        file.flush(&mut batch, now);
    }

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_default()
    }

    #[test]
    fn files_rotate_on_whole_lines_and_keep_so_many() {
        let dir = Dir::new("rotate");
        let path = dir.0.join("x.log");
        let mut file = log_file(&path, 100, 2);
        let lines: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("line {i} {}", "y".repeat(i % 13)).into_bytes())
            .collect();
        let now = Instant::now();
        for chunk in lines.chunks(7) {
            write_lines(&mut file, chunk, now);
        }
        let mut seen = Vec::new();
        for name in [numbered(&path, 2), numbered(&path, 1), path.clone()] {
            let text = read(&name);
            assert!(
                text.len() <= 100,
                "{} is {} bytes",
                name.display(),
                text.len()
            );
            assert!(text.ends_with(b"\n"));
            seen.extend(
                text.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
        assert!(!numbered(&path, 3).exists());
        // What is kept is the end of what was written, every line whole.
        assert_eq!(seen, lines[lines.len() - seen.len()..]);
        assert_eq!(file.dropped, 0);
    }

    #[test]
    fn keeping_none_empties_the_file() {
        let dir = Dir::new("keep0");
        let path = dir.0.join("x.log");
        let mut file = log_file(&path, 10, 0);
        write_lines(
            &mut file,
            &[b"12345".to_vec(), b"6789".to_vec()],
            Instant::now(),
        );
        assert_eq!(read(&path), b"6789\n");
        write_lines(&mut file, &[b"abcdef".to_vec()], Instant::now());
        assert_eq!(read(&path), b"abcdef\n");
        assert!(!numbered(&path, 1).exists());
    }

    #[test]
    fn a_line_longer_than_the_size_has_a_file_to_itself() {
        let dir = Dir::new("long");
        let path = dir.0.join("x.log");
        let mut file = log_file(&path, 4, 1);
        write_lines(
            &mut file,
            &[b"a".to_vec(), b"long line".to_vec(), b"b".to_vec()],
            Instant::now(),
        );
        assert_eq!(read(&numbered(&path, 1)), b"long line\n");
        assert_eq!(read(&path), b"b\n");
    }

    #[test]
    fn a_file_that_cannot_be_opened_drops_and_counts() {
        let dir = Dir::new("missing");
        let path = dir.0.join("no/such/dir/x.log");
        let mut file = log_file(&path, 1000, 1);
        let now = Instant::now();
        write_lines(&mut file, &[b"a".to_vec(), b"b".to_vec()], now);
        assert_eq!(file.dropped, 2);
        assert!(file.retry_at.is_some());
        // Not tried again before its time, then taken up once it works.
        std::fs::create_dir_all(dir.0.join("no/such/dir")).expect("mkdir");
        write_lines(&mut file, &[b"c".to_vec()], now);
        assert_eq!(file.dropped, 3);
        write_lines(&mut file, &[b"d".to_vec()], now + RETRY);
        assert_eq!(read(&path), b"d\n");
        assert_eq!((file.dropped, file.retry_at), (0, None));
    }

    #[test]
    fn a_line_in_pieces_across_turns_stays_whole() {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let dir = Dir::new("pieces");
        let path = dir.0.join("x.log");
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("nonblocking");
        let mut part = LogFiles::default();
        part.files.push(Some(log_file(&path, 1000, 1)));
        part.pipes.push(LogPipe::new("x", 1, read_end, Some(0)));
        let supervisor = Supervisor::default();
        let now = Instant::now();
        for piece in [&b"one\ntw"[..], b"", b"o\nthr", b"ee"] {
            if !piece.is_empty() {
                nix::unistd::write(&write_end, piece).expect("write");
            }
            part.drain(0, &supervisor, now);
        }
        assert_eq!(read(&path), b"one\ntwo\n");
        drop(write_end);
        part.drain(0, &supervisor, now);
        assert!(part.pipes[0].closed && part.closed_any);
        assert_eq!(read(&path), b"one\ntwo\nthree\n");
    }

    #[test]
    fn only_regular_files_are_logs() {
        assert_eq!(
            open_log(Path::new("/dev/null")).err(),
            Some("not a regular file".to_string())
        );
    }
}
