//! `log = PATH`, its rotation, and `going logs [-f] [-n N] NAME`.
//!
//! The oracle is the files themselves: every line a service wrote is
//! numbered and says its own length, so a line split across files, cut
//! short or lost shows. going's log is read only for `dropped N lines`,
//! which SPEC.md makes the contract.

mod common;
use common::*;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `going -s SOCK ARGS...` against this going, to completion.
fn ctl(g: &Going, args: &[&str]) -> std::process::Output {
    let sock = g.sock.clone().expect("a socket").display().to_string();
    let mut all = vec!["-s", sock.as_str()];
    all.extend_from_slice(args);
    run_going(&all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A shell command printing lines `FROM..TO` as `N LEN xxx...` (LEN x's,
/// 0 to 96), all at once through awk's buffered output.
fn numbered_lines(from: u32, to: u32) -> String {
    format!(
        "awk 'BEGIN {{ for (i = {from}; i < {to}; i++) {{ n = i % 97; s = \"\"; \
         for (j = 0; j < n; j++) s = s \"x\"; printf \"%d %d %s\\n\", i, n, s }} }}'"
    )
}

/// The numbers of the lines in `bytes`, checking each line is whole.
fn check_lines(bytes: &[u8], file: &Path) -> Vec<u32> {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "{} does not end with a whole line",
        file.display()
    );
    text(bytes)
        .lines()
        .map(|line| {
            let mut words = line.splitn(3, ' ');
            let number = words.next().and_then(|w| w.parse().ok());
            let len: Option<usize> = words.next().and_then(|w| w.parse().ok());
            let rest = words.next().unwrap_or("");
            match (number, len) {
                (Some(number), Some(len))
                    if rest.len() == len && rest.bytes().all(|b| b == b'x') =>
                {
                    number
                }
                _ => panic!("{}: broken line {line:?}", file.display()),
            }
        })
        .collect()
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// The lines of PATH.keep .. PATH.1, PATH, oldest first, each file
/// checked against `max`.
fn all_lines(path: &Path, keep: u32, max: usize) -> Vec<u32> {
    assert!(
        !numbered(path, keep + 1).exists(),
        "more than log-keep = {keep} old files"
    );
    let mut lines = Vec::new();
    for file in (1..=keep)
        .rev()
        .map(|n| numbered(path, n))
        .chain([path.to_path_buf()])
    {
        let Ok(bytes) = fs::read(&file) else { continue };
        assert!(
            bytes.len() <= max,
            "{} is {} bytes, past log-max-size {max}",
            file.display(),
            bytes.len()
        );
        lines.extend(check_lines(&bytes, &file));
    }
    lines
}

#[test]
fn rotation_splits_and_loses_no_line() {
    let t = TempDir::new("log-rotate");
    let (few, many) = (t.join("few.log"), t.join("many.log"));
    // 20,000 lines through 3 old files of 4k: only the last ones remain.
    t.write_svc(
        "few.toml",
        &format!(
            "cmd = {}\nshell = true\nrestart = \"never\"\nlog = {}\nlog-max-size = \"4k\"\nlog-keep = 3\n",
            q(&numbered_lines(0, 20_000)),
            q(&few.display().to_string())
        ),
    );
    // 3,000 lines (about 150 kB) in 100 files of 4k: every one is kept.
    t.write_svc(
        "many.toml",
        &format!(
            "cmd = {}\nshell = true\nrestart = \"never\"\nlog = {}\nlog-max-size = 4096\nlog-keep = 100\n",
            q(&numbered_lines(0, 3000)),
            q(&many.display().to_string())
        ),
    );
    let g = Going::start(&t);
    for name in ["few", "many"] {
        g.wait_svc(name, "exit 0", secs(20), |s| {
            s.last_exit.as_deref() == Some("exit 0")
        });
    }
    g.wait(secs(10), "the last lines in both logs", || {
        all_lines(&few, 3, 4096).last() == Some(&19_999)
            && all_lines(&many, 100, 4096).last() == Some(&2999)
    });
    let kept = all_lines(&few, 3, 4096);
    assert!(numbered(&few, 3).exists(), "three old files");
    let first = kept.first().copied().unwrap_or_default();
    assert_eq!(
        kept,
        (first..20_000).collect::<Vec<_>>(),
        "a gap in the kept lines"
    );
    assert!(kept.len() > 100, "only {} lines kept", kept.len());
    assert_eq!(all_lines(&many, 100, 4096), (0..3000).collect::<Vec<_>>());
    assert!(!g.log_has("dropped"), "nothing is dropped:\n{}", g.log());
}

#[test]
fn logs_prints_the_last_lines_or_where_output_goes() {
    let t = TempDir::new("log-n");
    let path = t.join("web.log");
    t.write_svc(
        "web.toml",
        &format!(
            "cmd = \"seq 1 50; exec sleep 1000\"\nshell = true\nlog = {}\n",
            q(&path.display().to_string())
        ),
    );
    t.write_svc(
        "plain.toml",
        "cmd = [\"sleep\", \"1000\"]\nstderr = \"syslog\"\n",
    );
    let g = Going::start(&t);
    g.wait_running("web");
    g.wait(secs(5), "50 lines in the log", || {
        fs::read_to_string(&path).is_ok_and(|s| s.ends_with("50\n"))
    });
    let out = ctl(&g, &["logs", "-n", "3", "web"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "48\n49\n50\n");
    let out = ctl(&g, &["logs", "web"]);
    let expected: String = (41..=50).map(|n| format!("{n}\n")).collect();
    assert_eq!(text(&out.stdout), expected, "10 lines by default");
    assert_eq!(text(&ctl(&g, &["logs", "-n", "0", "web"]).stdout), "");
    assert_eq!(
        ctl(&g, &["logs", "-n", "100", "web"]).stdout.len(),
        fs::read(&path).map_or(0, |b| b.len())
    );

    let out = ctl(&g, &["logs", "plain"]);
    assert!(out.status.success(), "{out:?}");
    let said = text(&out.stdout);
    assert!(
        said.contains("inherit") && said.contains("syslog"),
        "{said}"
    );

    let out = ctl(&g, &["logs", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("nosuch"), "{out:?}");
    let out = ctl(&g, &["logs"]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn logs_follows_across_rotations() {
    let t = TempDir::new("log-f");
    let path = t.join("web.log");
    // About 60 bytes a line every 20 ms in files of 1k: a rotation every
    // third of a second or so.
    let padding = "p".repeat(50);
    t.write_svc(
        "web.toml",
        &format!(
            "cmd = \"i=0; while :; do i=$((i+1)); echo \\\"$i {padding}\\\"; sleep 0.02; done\"\n\
             shell = true\nlog = {}\nlog-max-size = \"1k\"\nlog-keep = 2\n",
            q(&path.display().to_string())
        ),
    );
    let g = Going::start(&t);
    g.wait_running("web");
    let sock = g.sock.clone().expect("socket").display().to_string();
    let mut follower = Command::new(BIN)
        .args(["-s", &sock, "logs", "-f", "-n", "1", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn going logs -f");
    std::thread::sleep(secs(3));
    g.wait(secs(10), "two rotations", || numbered(&path, 2).exists());
    let still_running = matches!(follower.try_wait(), Ok(None));
    kill(follower.id() as i32, SIGKILL);
    let mut out = String::new();
    let _ = follower
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut out));
    let _ = follower.wait();
    assert!(still_running, "logs -f ended by itself");
    let numbers: Vec<u64> = out
        .lines()
        .map(|line| {
            let (n, pad) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("broken line {line:?}"));
            assert_eq!(pad, padding, "a split line");
            n.parse().unwrap_or_else(|_| panic!("broken line {line:?}"))
        })
        .collect();
    assert!(
        numbers.len() > 30,
        "only {} lines in 3 s: {out}",
        numbers.len()
    );
    let first = numbers.first().copied().unwrap_or_default();
    assert_eq!(
        numbers,
        (first..first + numbers.len() as u64).collect::<Vec<_>>(),
        "lines lost or repeated across rotations"
    );
    // It started in a file rotated twice since, and kept up.
    let oldest_kept: u64 = fs::read_to_string(numbered(&path, 1))
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        first < oldest_kept,
        "started at {first}, after {oldest_kept}"
    );
    let newest = fs::read_to_string(&path).unwrap_or_default();
    let last_in_file: u64 = newest
        .lines()
        .last()
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        numbers.last().is_some_and(|&n| n + 50 >= last_in_file),
        "fell behind"
    );
}

#[test]
fn a_log_that_cannot_be_written_stops_nothing() {
    let t = TempDir::new("log-bad");
    let missing = t.join("later/web.log");
    fs::create_dir_all(t.join("a-directory")).expect("mkdir");
    let fifo = t.join("fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "mkfifo");
    let chatty = "cmd = \"while :; do echo line; sleep 0.05; done\"\nshell = true\n";
    for (name, path) in [
        ("missing", missing.clone()),
        ("dir", t.join("a-directory")),
        ("fifo", fifo.clone()),
    ] {
        t.write_svc(
            &format!("{name}.toml"),
            &format!("{chatty}log = {}\n", q(&path.display().to_string())),
        );
    }
    let g = Going::start(&t);
    let pids: Vec<i32> = ["missing", "dir", "fifo"]
        .iter()
        .map(|name| g.wait_running(name))
        .collect();
    std::thread::sleep(secs(1));
    for (name, pid) in ["missing", "dir", "fifo"].iter().zip(&pids) {
        let svc = g
            .svc(name)
            .unwrap_or_else(|| g.fail("going does not answer"));
        assert_eq!(svc.state, "running", "{name}");
        assert_eq!(
            svc.pid.and_then(|p| g.outer(p)),
            Some(*pid),
            "{name} restarted"
        );
    }
    assert!(
        fs::metadata(&fifo).is_ok_and(|m| !m.is_file()),
        "the FIFO is left alone"
    );
    // The directory appears: the log is opened again, within a second or
    // so, and says how many lines it lost meanwhile.
    fs::create_dir_all(t.join("later")).expect("mkdir");
    g.wait(secs(5), "lines in the log once it can be written", || {
        fs::read_to_string(&missing).is_ok_and(|s| s.starts_with("line\n"))
    });
    g.wait_log("dropped", secs(5));
    assert_eq!(g.running_pid("missing"), Some(pids[0]));
}

#[test]
fn a_full_disk_drops_lines_and_says_so() {
    if !is_root() || !have("mount") {
        eprintln!("SKIPPED: a tiny tmpfs needs root and mount");
        return;
    }
    let t = TempDir::new("log-full");
    let small = t.join("small");
    fs::create_dir_all(&small).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let path = small.join("web.log");
    // Fills 16k in well under a second, then keeps writing.
    t.write_svc(
        "web.toml",
        &format!(
            "cmd = {}\nshell = true\nlog = {}\nlog-max-size = \"1M\"\n",
            q(&format!("{}; exec sleep 1000", numbered_lines(0, 5000))),
            q(&path.display().to_string())
        ),
    );
    let mut g = Going::start(&t);
    let pid = g.wait_running("web");
    std::thread::sleep(secs(1));
    assert_eq!(g.running_pid("web"), Some(pid), "the service still runs");
    let lines = check_lines(&fs::read(&path).unwrap_or_default(), &path);
    assert!(!lines.is_empty(), "the first lines were written");
    assert_eq!(lines, (0..lines.len() as u32).collect::<Vec<_>>());
    g.stop_with(SIGTERM, secs(10));
    assert!(
        g.log_has("dropped"),
        "the lost lines are counted:\n{}",
        g.log()
    );
}

#[test]
fn log_pipes_survive_an_upgrade() {
    let t = TempDir::new("log-upgrade");
    let path = t.join("web.log");
    t.write_svc(
        "web.toml",
        &format!(
            "cmd = \"i=0; while :; do i=$((i+1)); echo \\\"$i 0 \\\"; sleep 0.02; done\"\n\
             shell = true\nlog = {}\n",
            q(&path.display().to_string())
        ),
    );
    let g = Going::start(&t);
    let pid = g.wait_running("web");
    std::thread::sleep(ms(300));
    g.signal(SIGUSR2);
    g.wait_log_count("started", 2, secs(5));
    let before = fs::metadata(&path).map_or(0, |m| m.len());
    g.wait(secs(5), "more lines after the upgrade", || {
        fs::metadata(&path).is_ok_and(|m| m.len() > before + 100)
    });
    assert_eq!(g.running_pid("web"), Some(pid), "the service was adopted");
    let lines = check_lines(&fs::read(&path).unwrap_or_default(), &path);
    let first = lines.first().copied().unwrap_or_default();
    assert_eq!(
        lines,
        (first..first + lines.len() as u32).collect::<Vec<_>>()
    );
}

#[test]
fn check_reports_log_conflicts() {
    let t = TempDir::new("log-check");
    t.write_svc(
        "web.toml",
        "cmd = \"x\"\nstdout = \"null\"\nlog = \"/tmp/x.log\"\nlog-keep = 101\n",
    );
    t.write_svc("db.toml", "cmd = \"x\"\nlog-max-size = \"1M\"\n");
    let dir = t.svc().display().to_string();
    let out = run_going(&["check", "-d", &dir]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr) + &text(&out.stdout);
    for expected in [
        "web.toml:3: log: takes stdout and stderr both; remove stdout",
        "web.toml:4: log-keep: 101 is out of range 0..100",
        "db.toml:2: log-max-size: needs log",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
}
