//! Reload: following the service directory through inotify and SIGHUP.

mod common;
use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;

/// going on TMP/svc with one service `base`, already running (so the
/// initial scan and the inotify watch are in place).
fn setup(tag: &str) -> (TempDir, Going) {
    let t = TempDir::new(tag);
    t.write_svc("base.toml", &sleep_service(999, ""));
    let g = Going::start(&t);
    g.wait_running("base");
    (t, g)
}

/// The service `name` still runs as `pid`, never restarted: a restart or
/// a stop would have ended that process or left the running state.
fn assert_untouched(g: &Going, name: &str, pid: i32) {
    g.check(alive(pid), &format!("{name} (pid {pid}) is gone"));
    let s = g.svc(name);
    g.check(
        g.running_pid(name) == Some(pid),
        &format!("{name} was stopped or restarted: status {s:?}"),
    );
}

#[test]
fn new_file_starts_service() {
    let (t, g) = setup("new");
    let pidf = t.join("pid");
    t.write_svc("a.toml", &pid_service(&pidf, ""));
    g.pid_from_file(&pidf);
    // the line is the contract: going(8) LOGGING
    g.wait_log(" a: new service", secs(2));
    // The legacy format too.
    t.write_svc("b", "cmd=/bin/sleep 1002\n");
    let b = g.wait_running("b");
    assert_eq!(cmdline(b), vec!["/bin/sleep", "1002"]);
}

#[test]
fn removed_file_stops_service() {
    let (t, g) = setup("removed");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    t.remove_svc("a.toml");
    g.wait_gone(a, secs(5));
    // the lines are the contract: going(8) LOGGING
    g.wait_log(" a: file removed, stopping", secs(1));
    g.wait_log(&format!(" a: stopping, pid {a}, signal TERM"), secs(1));
    g.wait_log(&format!(" a: stopped, pid {a}"), secs(2));
    // Forgotten: not restarted.
    std::thread::sleep(ms(300));
    let s = g.svc("a");
    g.check(
        s.is_none(),
        &format!("a restarted after its file was removed: {s:?}"),
    );
    assert_untouched(&g, "base", g.wait_running("base"));
}

#[test]
fn changed_file_restarts_service() {
    let (t, g) = setup("changed");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a1 = g.wait_running("a");
    t.write_svc("a.toml", &sleep_service(1002, ""));
    let a2 = g.wait_new_pid("a", a1);
    assert_eq!(
        cmdline(a2),
        vec!["/bin/sleep", "1002"],
        "runs the new definition"
    );
    g.check(!alive(a1), "old instance still alive");
    // the line is the contract: going(8) LOGGING
    g.wait_log(" a: definition changed, restarting", secs(1));
    // Only the env changed: a restart too.
    t.write_svc("a.toml", &sleep_service(1002, "env = { X = \"1\" }"));
    let a3 = g.wait_new_pid("a", a2);
    g.check(environ(a3).contains(&"X=1".to_string()), "new env");
    let base = g.wait_running("base");
    assert_untouched(&g, "base", base);
}

#[test]
fn unchanged_file_is_untouched() {
    let (t, g) = setup("unchanged");
    let content = sleep_service(1001, "");
    t.write_svc("a.toml", &content);
    let a = g.wait_running("a");
    // Rewrite the same bytes, in place and by rename.
    t.write_svc("a.toml", &content);
    t.replace_svc("a.toml", &content);
    g.sync(&t);
    assert_untouched(&g, "a", a);
}

#[test]
fn comment_and_formatting_change_is_untouched() {
    let (t, g) = setup("comment");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1001\"]\nstop-timeout = \"2s\"\n",
    );
    let a = g.wait_running("a");
    t.write_svc(
        "a.toml",
        "# a comment\n\nstop-timeout   =   \"2s\"   # trailing comment\ncmd = [ \"/bin/sleep\",\n  \"1001\", ]\n",
    );
    // Legacy format: comments and blanks.
    t.write_svc("b", "cmd=/bin/sleep 1002\n");
    let b = g.wait_running("b");
    t.write_svc("b", "# comment\n\n   cmd =  /bin/sleep 1002   \n");
    g.sync(&t);
    assert_untouched(&g, "a", a);
    assert_untouched(&g, "b", b);
}

#[test]
fn broken_file_keeps_old_instance_and_logs_file_line() {
    let (t, g) = setup("broken");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    // The diagnostic naming file and line is the contract: going(8)
    // LOGGING, going.d(5).
    // Unknown key on line 3.
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1002\"]\nstop-timeout = \"2s\"\nbogus = 1\n",
    );
    g.wait(
        secs(5),
        "error line 'a: .../a.toml:3: ..., nothing changed'",
        || {
            g.log().lines().any(|l| {
                l.contains(" error a: ")
                    && l.contains("a.toml:3: ")
                    && l.ends_with(", nothing changed")
            })
        },
    );
    // TOML syntax error on line 2.
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1002\"]\nstop-timeout = = 2\n",
    );
    g.wait(
        secs(5),
        "error line 'a: .../a.toml:2: ..., nothing changed'",
        || {
            g.log().lines().any(|l| {
                l.contains(" error a: ")
                    && l.contains("a.toml:2: ")
                    && l.ends_with(", nothing changed")
            })
        },
    );
    // Missing cmd (empty file).
    t.write_svc("a.toml", "");
    g.wait_log_count(", nothing changed", 3, secs(5));
    g.sync(&t);
    assert_untouched(&g, "a", a);
    assert_eq!(cmdline(a), vec!["/bin/sleep", "1001"]);
    // Fixed: now the new definition runs.
    t.write_svc("a.toml", &sleep_service(1002, ""));
    let a2 = g.wait_new_pid("a", a);
    assert_eq!(cmdline(a2), vec!["/bin/sleep", "1002"]);
}

#[test]
fn broken_legacy_file_logs_file_line() {
    let (t, g) = setup("brokenlegacy");
    t.write_svc("web", "cmd=/bin/sleep 1001\n");
    let w = g.wait_running("web");
    t.write_svc(
        "web",
        "cmd=/bin/sleep 1002\n# ok\nthis line has no equals sign\n",
    );
    // the line is the contract: going(8) LOGGING
    g.wait(secs(5), "error line naming web:3", || {
        g.log().lines().any(|l| {
            l.contains(" error web: ") && l.contains("web:3: ") && l.ends_with(", nothing changed")
        })
    });
    g.sync(&t);
    assert_untouched(&g, "web", w);
}

#[test]
fn several_errors_are_counted_in_one_line() {
    let (t, g) = setup("moreerr");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1001\"]\nbogus = 1\nother = 2\nnice = \"x\"\n",
    );
    // the line is the contract: going(8) LOGGING
    g.wait(secs(5), "one line with '(and 2 more)'", || {
        g.log()
            .lines()
            .any(|l| l.contains(" a: ") && l.contains("a.toml:2: ") && l.contains("(and 2 more)"))
    });
    g.sync(&t);
    let s = g.svc("a");
    g.check(
        s.as_ref().is_none_or(|s| s.pid.is_none()),
        &format!("a broken new file started a service: {s:?}"),
    );
    g.check(
        g.log_count("a.toml:") == 1,
        "exactly one log line for the broken file",
    );
}

#[test]
fn new_broken_file_starts_nothing() {
    let (t, g) = setup("newbroken");
    let marker = t.join("started");
    let script = format!("echo x > {}; exec sleep 1000", marker.display());
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nrestart = \"sometimes\"\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    // the line is the contract: going(8) LOGGING
    g.wait_log("a.toml:2: ", secs(5));
    g.sync(&t);
    std::thread::sleep(ms(200));
    let s = g.svc("a");
    g.check(
        !marker.exists() && s.as_ref().is_none_or(|s| s.pid.is_none()),
        &format!("a broken file started a service: {s:?}"),
    );
}

#[test]
fn write_in_two_steps_with_close_between() {
    let (t, g) = setup("twostep");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    let new = sleep_service(1002, "");
    let (first, second) = new.split_at(new.find("\"1002").unwrap());
    // Step 1: truncated file (broken TOML), closed.
    t.write_svc("a.toml", first);
    // Nothing changes but the diagnostic: the line is the contract:
    // going(8) LOGGING.
    g.wait_log(", nothing changed", secs(5));
    g.sync(&t);
    assert_untouched(&g, "a", a);
    // Step 2: the rest appended.
    let p = t.svc().join("a.toml");
    let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(second.as_bytes()).unwrap();
    drop(f);
    let a2 = g.wait_new_pid("a", a);
    assert_eq!(cmdline(a2), vec!["/bin/sleep", "1002"]);
}

#[test]
fn write_in_two_steps_while_open_acts_only_on_close() {
    let (t, g) = setup("openwrite");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    let new = sleep_service(1002, "");
    let (first, second) = new.split_at(new.find("\"1002").unwrap());
    let p = t.svc().join("a.toml");
    let mut f = fs::File::create(&p).unwrap(); // truncates: the file is now empty
    f.write_all(first.as_bytes()).unwrap();
    f.flush().unwrap();
    // A new file, also written while open: nothing may start before its close.
    let newpidf = t.join("newpid");
    let newsvc = pid_service(&newpidf, "");
    let (n1, n2) = newsvc.split_at(newsvc.len() / 2);
    let mut nf = fs::File::create(t.svc().join("n.toml")).unwrap();
    nf.write_all(n1.as_bytes()).unwrap();
    nf.flush().unwrap();
    g.sync(&t);
    std::thread::sleep(ms(100));
    assert_untouched(&g, "a", a);
    // the line is the contract: going(8) LOGGING
    g.check(
        !g.log_has("nothing changed"),
        "a file still open for writing was parsed",
    );
    let n = g.svc("n");
    g.check(
        !newpidf.exists() && n.is_none(),
        &format!("n started before its file was closed: {n:?}"),
    );
    f.write_all(second.as_bytes()).unwrap();
    drop(f);
    nf.write_all(n2.as_bytes()).unwrap();
    drop(nf);
    let a2 = g.wait_new_pid("a", a);
    assert_eq!(cmdline(a2), vec!["/bin/sleep", "1002"]);
    g.pid_from_file(&newpidf);
    g.check(
        !g.log_has("nothing changed"),
        "an error was logged for a file written while open",
    );
}

#[test]
fn rename_over_restarts_and_tempfile_ignored() {
    let (t, g) = setup("renameover");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    // Write the dotfile, leave it a moment, then move it over.
    let tmp = t.svc().join(".a.toml.new");
    fs::write(&tmp, sleep_service(1002, "")).unwrap();
    g.sync(&t);
    assert_untouched(&g, "a", a);
    fs::rename(&tmp, t.svc().join("a.toml")).unwrap();
    let a2 = g.wait_new_pid("a", a);
    assert_eq!(cmdline(a2), vec!["/bin/sleep", "1002"]);
    g.wait_gone(a, secs(3));
    let names: Vec<String> = g.services().into_iter().map(|s| s.name).collect();
    g.check(
        names.iter().all(|n| !n.starts_with('.')),
        &format!("the dotfile was treated as a service: {names:?}"),
    );
    // Nor named in a diagnostic (the lines are the contract: going(8)
    // LOGGING).
    g.check(
        !g.log().contains(" .a"),
        "the dotfile was treated as a service",
    );
    // A new service by rename (mv from outside the directory).
    let outside = t.join("b.toml");
    fs::write(&outside, sleep_service(1003, "")).unwrap();
    fs::rename(&outside, t.svc().join("b.toml")).unwrap();
    let b = g.wait_running("b");
    // Moving a file out of the directory stops it.
    fs::rename(t.svc().join("b.toml"), t.join("b-away.toml")).unwrap();
    g.wait_gone(b, secs(5));
}

#[test]
fn editor_and_package_files_are_ignored() {
    let (t, g) = setup("editor");
    let run = |name: &str| {
        let marker = t.join(format!(
            "started-{}",
            name.replace(['/', '#', '~', '.'], "_")
        ));
        let script = format!("echo x > {}; exec sleep 1000", marker.display());
        (
            marker,
            format!("cmd = {}\n", qa(&["/bin/sh", "-c", &script])),
        )
    };
    t.write_svc("web.toml", &sleep_service(1001, ""));
    let web = g.wait_running("web");
    let names = [
        "web.toml~",
        ".web.toml.swp",
        ".web.toml.swx",
        "web.toml.swp",
        "#web.toml#",
        ".#web.toml",
        "web.dpkg-new",
        "web.toml.dpkg-new",
        "web.toml.bak",
        ".hidden.toml",
        "web~",
        "bad name.toml",
        "web.conf",
    ];
    let mut markers = Vec::new();
    for n in names {
        let (m, content) = run(n);
        t.write_svc(n, &content);
        markers.push((n, m));
    }
    // A directory whose name is a valid service name.
    fs::create_dir_all(t.svc().join("dirsvc")).unwrap();
    fs::create_dir_all(t.svc().join("dirsvc2.toml")).unwrap();
    // Editors also write then delete their temp files.
    for n in ["web.toml~", ".web.toml.swp", "web.toml.swp"] {
        fs::remove_file(t.svc().join(n)).unwrap();
    }
    g.sync(&t);
    std::thread::sleep(ms(200));
    for (n, m) in &markers {
        g.check(!m.exists(), &format!("{n:?} started a service"));
    }
    assert_untouched(&g, "web", web);
    let kids = children(g.pid);
    g.check(
        kids.len() == 3,
        &format!("children are base, web and the sync service: {kids:?}"),
    );
    // A SIGHUP rescan ignores them too.
    g.signal(SIGHUP);
    // Only the log says the rescan happened: the line is the contract:
    // going(8) LOGGING.
    g.wait_log("going: SIGHUP, rescanning ", secs(3));
    g.sync(&t);
    for (n, m) in &markers {
        g.check(
            !m.exists(),
            &format!("{n:?} started a service after SIGHUP"),
        );
    }
    assert_untouched(&g, "web", web);
}

#[test]
fn sighup_rescans_symlink_target_change() {
    let (t, g) = setup("sighup");
    let targets = t.join("targets");
    fs::create_dir_all(&targets).unwrap();
    let target = targets.join("a.toml");
    fs::write(&target, sleep_service(1001, "")).unwrap();
    symlink(&target, t.svc().join("a.toml")).unwrap();
    let a = g.wait_running("a");
    // The target changes outside the watched directory: no event.
    fs::write(&target, sleep_service(1002, "")).unwrap();
    std::thread::sleep(ms(300));
    assert_untouched(&g, "a", a);
    g.signal(SIGHUP);
    // Only the log says a rescan happened: the lines are the contract:
    // going(8) LOGGING.
    g.wait_log(
        &format!("going: SIGHUP, rescanning {}", t.svc().display()),
        secs(3),
    );
    let a2 = g.wait_new_pid("a", a);
    assert_eq!(cmdline(a2), vec!["/bin/sleep", "1002"]);
    g.wait_log(" a: definition changed, restarting", secs(1));
    // A second SIGHUP with nothing changed touches nothing.
    g.signal(SIGHUP);
    g.wait_log_count("going: SIGHUP, rescanning ", 2, secs(3));
    g.sync(&t);
    let s = g.svc("a");
    g.check(
        g.running_pid("a") == Some(a2) && alive(a2),
        &format!("a restarted by an empty rescan: {s:?}"),
    );
    let base = g.wait_running("base");
    assert_untouched(&g, "base", base);
}

#[test]
fn symlink_and_hard_link_added() {
    let (t, g) = setup("links");
    let targets = t.join("targets");
    fs::create_dir_all(&targets).unwrap();
    fs::write(targets.join("s.toml"), sleep_service(1001, "")).unwrap();
    fs::write(targets.join("h.toml"), sleep_service(1002, "")).unwrap();
    symlink(targets.join("s.toml"), t.svc().join("s.toml")).unwrap();
    fs::hard_link(targets.join("h.toml"), t.svc().join("h.toml")).unwrap();
    let s = g.wait_running("s");
    let h = g.wait_running("h");
    assert_eq!(cmdline(s), vec!["/bin/sleep", "1001"]);
    assert_eq!(cmdline(h), vec!["/bin/sleep", "1002"]);
}

#[test]
fn duplicate_name_keeps_running_definition() {
    let (t, g) = setup("dup");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    t.write_svc("a", "cmd=/bin/sleep 1002\n");
    // the line is the contract: going(8) LOGGING
    g.wait_log("duplicate service a: both a and a.toml exist", secs(5));
    g.sync(&t);
    assert_untouched(&g, "a", a);
    assert_eq!(cmdline(a), vec!["/bin/sleep", "1001"]);
}

#[test]
fn directory_renamed_away_then_replaced() {
    let (t, g) = setup("dirswap");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    let base = g.wait_running("base");
    // The directory goes away: services keep running.
    fs::rename(t.svc(), t.join("old")).unwrap();
    // the line is the contract: going(8) LOGGING
    g.wait(secs(5), "a warning about the directory", || {
        g.log().lines().any(|l| l.contains(" warn going: "))
    });
    std::thread::sleep(ms(300));
    assert_untouched(&g, "a", a);
    assert_untouched(&g, "base", base);
    // A new directory appears by rename: base and a (same files)
    // untouched, b new.
    let staging = t.join("staging");
    fs::create_dir_all(&staging).unwrap();
    fs::write(staging.join("base.toml"), sleep_service(999, "")).unwrap();
    fs::write(staging.join("a.toml"), sleep_service(1001, "")).unwrap();
    fs::write(staging.join("b.toml"), sleep_service(1002, "")).unwrap();
    fs::rename(&staging, t.svc()).unwrap();
    g.wait_running("b");
    assert_untouched(&g, "a", a);
    assert_untouched(&g, "base", base);
    // And it is watched again.
    t.write_svc("c.toml", &sleep_service(1003, ""));
    g.wait_running("c");
}

#[test]
fn directory_replaced_by_a_symlink() {
    let (t, g) = setup("dirsymlink");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_running("a");
    let base = g.wait_running("base");
    let other = t.join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("base.toml"), sleep_service(999, "")).unwrap();
    fs::write(other.join("a.toml"), sleep_service(1001, "")).unwrap();
    fs::write(other.join("b.toml"), sleep_service(1002, "")).unwrap();
    fs::rename(t.svc(), t.join("old")).unwrap();
    symlink(&other, t.svc()).unwrap();
    g.wait_running("b");
    assert_untouched(&g, "a", a);
    assert_untouched(&g, "base", base);
    // The symlink's target is what is watched now.
    fs::write(other.join("c.toml"), sleep_service(1003, "")).unwrap();
    g.wait_running("c");
}

#[test]
fn directory_created_with_mkdir_then_file_written_at_once() {
    // The file may be written before going has a watch on the new
    // directory: it must be found anyway.
    let t = TempDir::new("mkdirrace");
    let g = Going::start_with(
        &t,
        Opts {
            no_dir: true,
            ..Opts::default()
        },
    );
    g.wait_up();
    fs::create_dir(t.svc()).unwrap();
    t.write_svc("a.toml", &sleep_service(1001, ""));
    g.wait_running("a");
    // And later files too.
    t.write_svc("b.toml", &sleep_service(1002, ""));
    g.wait_running("b");
}

#[test]
fn changed_file_during_backoff_starts_now() {
    let (t, g) = setup("backoffchange");
    t.write_svc("a.toml", "cmd = \"/bin/false\"\n");
    // Wait for a long backoff (1.6 s, then 3.2 s).
    g.wait_backoff("a", 6);
    let t0 = std::time::Instant::now();
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let a = g.wait_for(secs(5), "a: running sleep 1001", || {
        g.running_pid("a")
            .filter(|&p| cmdline(p) == ["/bin/sleep", "1001"])
    });
    g.check(
        t0.elapsed() < ms(1000),
        &format!(
            "the fixed service started {:?} after the change, not at once",
            t0.elapsed()
        ),
    );
    assert_eq!(cmdline(a), vec!["/bin/sleep", "1001"]);
}

#[test]
fn removed_file_during_backoff_stops_the_loop() {
    let (t, g) = setup("backoffremove");
    let starts = t.join("starts");
    let script = format!("echo >> {}; exit 1", starts.display());
    t.write_svc(
        "a.toml",
        &format!("cmd = {}\n", qa(&["/bin/sh", "-c", &script])),
    );
    g.wait_backoff("a", 4);
    t.remove_svc("a.toml");
    g.sync(&t);
    let n = fs::read_to_string(&starts).unwrap_or_default().len();
    std::thread::sleep(ms(1000));
    let s = g.svc("a");
    g.check(
        fs::read_to_string(&starts).unwrap_or_default().len() == n && s.is_none(),
        &format!("a was started again after its file was removed: {s:?}"),
    );
}
