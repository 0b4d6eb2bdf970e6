//! `going logs`, once going has said where the log is: the last lines of
//! the file, and with `-f` what comes after, across rotations. This is the
//! client's own work, not the loop's: here a short sleep is fine.

use crate::util::describe_io;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

/// How often `-f` looks for more.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Prints the last `lines` lines of `path`; with `follow`, then what is
/// appended to it, and to the new file after each rotation, until killed.
pub fn run(path: &Path, lines: usize, follow: bool) -> i32 {
    let fail = |e: std::io::Error| {
        eprintln!("going: {}: {}", path.display(), describe_io(&e));
        1
    };
    let mut out = std::io::stdout().lock();
    let opened = File::open(path).and_then(|file| {
        let start = start_of_last_lines(&file, lines)?;
        Reader::new(file, start)
    });
    let mut reader = match opened {
        Ok(reader) => Some(reader),
        // Not created yet: with -f, wait for it.
        Err(e) if follow && e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return fail(e),
    };
    loop {
        if let Some(reader) = &mut reader
            && let Err(e) = reader.copy_to(&mut out)
        {
            return fail(e);
        }
        if !follow {
            return 0;
        }
        std::thread::sleep(FOLLOW_EVERY);
        if reader.as_ref().is_none_or(|r| r.rotated(path)) {
            // What went into the old file before it was renamed, then the
            // new one from its start.
            if let Some(old) = &mut reader
                && let Err(e) = old.copy_to(&mut out)
            {
                return fail(e);
            }
            // None between the rename and the new file: looked for again.
            reader = File::open(path).and_then(|f| Reader::new(f, 0)).ok();
        }
    }
}

/// An open log file and how far it has been printed.
struct Reader {
    file: File,
    at: u64,
    identity: (u64, u64),
}

impl Reader {
    fn new(file: File, at: u64) -> std::io::Result<Reader> {
        let meta = file.metadata()?;
        let identity = (meta.dev(), meta.ino());
        Ok(Reader { file, at, identity })
    }

    /// Prints from where it was to the end; a file that shrank (emptied
    /// by `log-keep = 0`) is printed from its start.
    fn copy_to(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.file.metadata()?.len() < self.at {
            self.at = 0;
        }
        let mut buffer = [0u8; 8192];
        loop {
            let n = self.file.read_at(&mut buffer, self.at)?;
            if n == 0 {
                return out.flush();
            }
            out.write_all(buffer.get(..n).unwrap_or_default())?;
            self.at += n as u64;
        }
    }

    /// True when `path` is no longer this file (or none at all).
    fn rotated(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|meta| (meta.dev(), meta.ino()) != self.identity)
    }
}

/// Where the last `lines` lines of `file` begin: after the newline that
/// comes `lines + 1` from the end, the file's own last newline ending the
/// last line rather than starting one.
fn start_of_last_lines(file: &File, lines: usize) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if lines == 0 {
        return Ok(len);
    }
    let mut buffer = [0u8; 8192];
    let mut end = len;
    let mut seen = 0;
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = buffer.get_mut(..(end - start) as usize).unwrap_or_default();
        file.read_exact_at(chunk, start)?;
        for (offset, _) in chunk.iter().enumerate().rev().filter(|(_, b)| **b == b'\n') {
            let at = start + offset as u64;
            if at + 1 == len {
                continue;
            }
            seen += 1;
            if seen == lines {
                return Ok(at + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(text: &[u8], lines: usize) -> Vec<u8> {
        let path = std::env::temp_dir().join(format!(
            "going-tail-{}-{}-{lines}",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).expect("write");
        let file = File::open(&path).expect("open");
        let start = start_of_last_lines(&file, lines).expect("read") as usize;
        let _ = std::fs::remove_file(&path);
        text[start..].to_vec()
    }

    #[test]
    fn the_last_lines_are_found_from_the_end() {
        assert_eq!(last(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last(b"a\nb\nc\n", 3), b"a\nb\nc\n");
        assert_eq!(last(b"a\nb\nc\n", 10), b"a\nb\nc\n");
        assert_eq!(last(b"a\nb\nc", 1), b"c");
        assert_eq!(last(b"a\nb\n", 0), b"");
        assert_eq!(last(b"", 5), b"");
        let many: Vec<u8> = (0..5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        assert_eq!(last(&many, 2), b"line 4998\nline 4999\n");
    }
}
