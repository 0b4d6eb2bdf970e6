//! Service output read through pipes (`stdout`/`stderr = "syslog"`): cut
//! into lines with a bounded buffer and logged under the service's name
//! and pid. A line longer than the buffer is logged in pieces; memory
//! never grows with what a service writes. The pipes of services and of
//! their hooks are one part of the loop; an upgrade hands them over.

use crate::part::{Cx, Handover, Notice, Part, PollSet, Started};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// The output part: every pipe being read.
#[derive(Default)]
pub struct Outputs {
    pipes: Vec<OutputPipe>,
}

impl Part for Outputs {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        for (index, pipe) in self.pipes.iter().enumerate() {
            set.read(pipe.fd.as_fd(), index as u32);
        }
    }

    fn ready(&mut self, token: u32, _revents: nix::poll::PollFlags, _cx: &mut Cx<'_>) {
        if let Some(pipe) = self.pipes.get_mut(token as usize) {
            pipe.drain();
        }
    }

    fn before_sleep(&mut self, _cx: &mut Cx<'_>) {
        // Only here: tokens are indexes, which must not move within a turn.
        self.pipes.retain(|pipe| !pipe.closed);
    }

    fn spawned(&mut self, started: &mut Started, _cx: &mut Cx<'_>) {
        let (child, name) = (&mut started.child, &started.name);
        for (fd, is_stderr) in [
            (child.stdout_pipe.take(), false),
            (child.stderr_pipe.take(), true),
        ] {
            if let Some(fd) = fd {
                self.pipes
                    .push(OutputPipe::new(name, child.pid, is_stderr, fd));
            }
        }
    }

    fn notice(&mut self, notice: Notice, _cx: &mut Cx<'_>) {
        if notice == Notice::Exiting {
            // The last words of the services, before going goes.
            for pipe in &mut self.pipes {
                pipe.drain();
            }
        }
    }

    fn hand_over(&mut self, handover: &mut Handover) {
        for pipe in &self.pipes {
            if fcntl(&pipe.fd, FcntlArg::F_SETFD(FdFlag::empty())).is_ok() {
                handover.pipes.push(crate::state::Pipe {
                    name: pipe.name.clone(),
                    pid: pipe.pid,
                    stderr: pipe.stderr,
                    fd: pipe.fd.as_raw_fd(),
                });
            }
        }
    }

    fn take_back(&mut self, handover: &mut Handover) {
        for pipe in handover.pipes.drain(..) {
            // SAFETY: the old going left this pipe open for its heir (the
            // takeover part checked it is one), and nothing else in this
            // process owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(pipe.fd) };
            let _ = fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
            self.pipes
                .push(OutputPipe::new(&pipe.name, pipe.pid, pipe.stderr, fd));
        }
    }
}

/// The longest line logged in one piece.
pub const LINE_MAX: usize = 1024;

/// Bytes in, whole lines out. Pure.
#[derive(Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Calls `line` for every complete line (without its newline) and
    /// every `LINE_MAX` piece of an overlong one.
    pub fn push(&mut self, mut bytes: &[u8], line: &mut impl FnMut(&[u8])) {
        while let Some(&first) = bytes.first() {
            // A full piece waits for the next byte: a newline ends it as a
            // line; anything else makes it a piece of a longer line.
            if self.partial.len() >= LINE_MAX {
                line(&self.partial);
                self.partial.clear();
                if first == b'\n' {
                    bytes = bytes.get(1..).unwrap_or_default();
                    continue;
                }
            }
            let room = LINE_MAX - self.partial.len();
            let window = bytes.get(..room.min(bytes.len())).unwrap_or_default();
            let newline = window.iter().position(|&b| b == b'\n');
            let taken = newline.unwrap_or(window.len());
            self.partial
                .extend_from_slice(window.get(..taken).unwrap_or_default());
            bytes = bytes
                .get(newline.map_or(taken, |end| end + 1)..)
                .unwrap_or_default();
            if newline.is_some() {
                line(&self.partial);
                self.partial.clear();
            }
        }
    }

    /// The unterminated rest, at end of file.
    pub fn finish(&mut self, line: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            line(&self.partial);
            self.partial = Vec::new();
        }
    }
}

/// One pipe of one process of a service.
pub struct OutputPipe {
    name: String,
    pid: i32,
    stderr: bool,
    fd: OwnedFd,
    lines: LineBuffer,
    pub closed: bool,
}

impl OutputPipe {
    pub fn new(name: &str, pid: i32, stderr: bool, fd: OwnedFd) -> OutputPipe {
        OutputPipe {
            name: name.to_string(),
            pid,
            stderr,
            fd,
            lines: LineBuffer::default(),
            closed: false,
        }
    }

    /// Reads and logs whatever is there; at end of file, marks it closed.
    pub fn drain(&mut self) {
        let mut buffer = [0u8; 4096];
        let (name, pid) = (self.name.as_str(), self.pid);
        let level = if self.stderr {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        let mut emit = |line: &[u8]| {
            let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            log::log!(target: name, level, "pid {pid}: {text}");
        };
        loop {
            match nix::unistd::read(self.fd.as_fd(), &mut buffer) {
                Ok(0) => break,
                Ok(n) => self
                    .lines
                    .push(buffer.get(..n).unwrap_or_default(), &mut emit),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => break,
            }
        }
        // End of file, or a pipe that cannot be read: what is left is the
        // last line.
        self.lines.finish(&mut emit);
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut buffer = LineBuffer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            buffer.push(chunk, &mut |l: &[u8]| out.push(l.to_vec()));
        }
        buffer.finish(&mut |l: &[u8]| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_are_cut_at_newlines_across_reads() {
        assert_eq!(
            lines(&[b"a\nb", b"c\n", b"\nd"]),
            [b"a".to_vec(), b"bc".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn overlong_lines_come_in_pieces_and_memory_stays_bounded() {
        let long = vec![b'x'; LINE_MAX * 3 + 10];
        let mut buffer = LineBuffer::default();
        let mut sizes = Vec::new();
        for chunk in long.chunks(700) {
            buffer.push(chunk, &mut |l: &[u8]| sizes.push(l.len()));
            assert!(buffer.partial.capacity() <= LINE_MAX * 2);
        }
        buffer.push(b"\n", &mut |l: &[u8]| sizes.push(l.len()));
        assert_eq!(sizes, [LINE_MAX, LINE_MAX, LINE_MAX, 10]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_one_record() {
        let mut exact = vec![b'x'; LINE_MAX];
        exact.push(b'\n');
        assert_eq!(
            lines(&[&exact, b"after\n"])
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [LINE_MAX, 5]
        );
        let (head, tail) = exact.split_at(LINE_MAX);
        assert_eq!(
            lines(&[head, tail, b"y"])
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [LINE_MAX, 1]
        );
    }
}
