//! Every service key, checked through /proc on the real service process.

mod common;
use common::*;
use std::fs;
use std::path::Path;

fn user_of_tests() -> String {
    let uid: u32 = status_field(std::process::id() as i32, "Uid")
        .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    user_name(uid).unwrap_or_else(|| "root".into())
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn argv_string_is_split_with_quotes_and_no_shell() {
    let t = TempDir::new("argv");
    // A TOML literal string: the file holds exactly these characters.
    t.write_svc(
        "a.toml",
        r#"cmd = '''/bin/sh -c 'sleep 1000; :' zero 'a b' "c \"d\" \\x" e\ f'''
stop-timeout = "1s"
"#,
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    let argv = cmdline(pid);
    assert_eq!(
        argv,
        vec![
            "/bin/sh",
            "-c",
            "sleep 1000; :",
            "zero",
            "a b",
            "c \"d\" \\x",
            "e f"
        ],
        "argv of the service"
    );
}

#[test]
fn argv_array_and_path_search() {
    let t = TempDir::new("argv2");
    t.write_svc(
        "a.toml",
        "cmd = [\"sh\", \"-c\", \"sleep 1000; :\", \"x y\", \"\"]\nstop-timeout = \"1s\"\n",
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    assert_eq!(
        cmdline(pid),
        vec!["sh", "-c", "sleep 1000; :", "x y"],
        "argv (empty last arg dropped by /proc parsing)"
    );
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert_eq!(
        raw, b"sh\0-c\0sleep 1000; :\0x y\0\0",
        "raw cmdline keeps the empty argument"
    );
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("exe link");
    let sh = fs::canonicalize("/bin/sh").expect("canonicalize /bin/sh");
    assert_eq!(exe, sh, "cmd[0] without '/' is found in PATH");
}

#[test]
fn relative_cmd_is_relative_to_dir() {
    let t = TempDir::new("reldir");
    let work = t.join("work");
    fs::create_dir_all(work.join("bin")).unwrap();
    let script = work.join("bin/run");
    fs::write(&script, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = \"./bin/run\"\ndir = {}\nstop-timeout = \"1s\"\n",
            q(&work.display().to_string())
        ),
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    // The script execs sleep in its own time.
    g.wait(secs(5), "the script's exec of sleep", || {
        cmdline(pid) == ["sleep", "1000"]
    });
    assert_eq!(cwd(pid).as_deref(), Some(work.as_path()));
}

#[test]
fn environment_is_fresh_and_exact() {
    let t = TempDir::new("env");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1000\"]\nstop-timeout = \"1s\"\n[env]\nFOO = \"bar baz\"\nEMPTY = \"\"\nWITH_EQ = \"a=b\"\n",
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    let me = user_of_tests();
    let home = passwd_entry(&me).map(|e| e.2).unwrap_or_default();
    let want = sorted(vec![
        DEFAULT_PATH.to_string(),
        format!("HOME={home}"),
        format!("USER={me}"),
        "GOING_SERVICE=a".to_string(),
        "FOO=bar baz".to_string(),
        "EMPTY=".to_string(),
        "WITH_EQ=a=b".to_string(),
    ]);
    let got = sorted(environ(pid));
    assert_eq!(
        got, want,
        "the service's environment (nothing of going's, e.g. GOING_TEST_LEAK)"
    );
}

#[test]
fn env_table_overrides_defaults() {
    let t = TempDir::new("envov");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1000\"]\nstop-timeout = \"1s\"\nenv = { PATH = \"/bin:/usr/bin\", HOME = \"/tmp\", GOING_SERVICE = \"other\" }\n",
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    let env = environ(pid);
    for want in ["PATH=/bin:/usr/bin", "HOME=/tmp", "GOING_SERVICE=other"] {
        assert!(env.iter().any(|e| e == want), "{want} missing in {env:?}");
    }
    for var in ["PATH=", "HOME=", "GOING_SERVICE=", "USER="] {
        assert_eq!(
            env.iter().filter(|e| e.starts_with(var)).count(),
            1,
            "exactly one {var} in {env:?}"
        );
    }
    assert_eq!(env.len(), 4, "no other variables: {env:?}");
}

#[test]
fn user_sets_uid_gid_home_user_and_drops_going_groups() {
    require_root!();
    if !have("setpriv") {
        eprintln!("SKIPPED: setpriv (util-linux) not found");
        return;
    }
    let t = TempDir::new("user");
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1000\"]\nuser = \"nobody\"\nstop-timeout = \"1s\"\n",
    );
    // going itself runs with supplementary groups 4 and 27: they must not
    // reach a service that runs as another user.
    let g = Going::start_with(
        &t,
        Opts {
            exec_prefix: "setpriv --groups 4,27 --".into(),
            ..Opts::default()
        },
    );
    let pid = g.wait_running("a");
    let (uid, gid, home) = passwd_entry("nobody").expect("nobody in /etc/passwd");
    assert_eq!(
        status_field(pid, "Uid").unwrap(),
        format!("{uid}\t{uid}\t{uid}\t{uid}"),
        "Uid:"
    );
    assert_eq!(
        status_field(pid, "Gid").unwrap(),
        format!("{gid}\t{gid}\t{gid}\t{gid}"),
        "Gid:"
    );
    let grp = groups(pid);
    let mut allowed = member_groups("nobody");
    allowed.push(gid);
    assert!(
        grp.iter().all(|x| allowed.contains(x)),
        "Groups {grp:?} must be nobody's (allowed {allowed:?}), not going's 4,27"
    );
    for x in member_groups("nobody") {
        assert!(
            grp.contains(&x),
            "supplementary group {x} of nobody missing in {grp:?}"
        );
    }
    let env = environ(pid);
    assert!(env.contains(&"USER=nobody".to_string()), "USER in {env:?}");
    assert!(env.contains(&format!("HOME={home}")), "HOME in {env:?}");
}

#[test]
fn user_supplementary_groups_are_set() {
    require_root!();
    // Find a user listed as a member of some group in /etc/group.
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = passwd
        .lines()
        .filter_map(|l| l.split(':').next())
        .find(|u| !member_groups(u).is_empty() && *u != "root");
    let Some(user) = user else {
        eprintln!("SKIPPED: no user in /etc/passwd has supplementary groups in /etc/group");
        return;
    };
    let t = TempDir::new("supgrp");
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = [\"/bin/sleep\", \"1000\"]\nuser = {}\nstop-timeout = \"1s\"\n",
            q(user)
        ),
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    let grp = groups(pid);
    for x in member_groups(user) {
        assert!(
            grp.contains(&x),
            "group {x} of {user} missing in Groups {grp:?}"
        );
    }
    let (uid, _, _) = passwd_entry(user).unwrap();
    assert_eq!(stat_uid(pid), uid);
}

fn stat_uid(pid: i32) -> u32 {
    status_field(pid, "Uid")
        .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(u32::MAX)
}

#[test]
fn user_and_group_names() {
    require_root!();
    let t = TempDir::new("usergrp");
    t.write_svc("a.toml", "cmd = [\"/bin/sleep\", \"1000\"]\nuser = \"nobody\"\ngroup = \"daemon\"\nstop-timeout = \"1s\"\n");
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    let (uid, _, _) = passwd_entry("nobody").unwrap();
    let gid = group_gid("daemon").expect("group daemon");
    assert_eq!(
        status_field(pid, "Uid").unwrap(),
        format!("{uid}\t{uid}\t{uid}\t{uid}")
    );
    assert_eq!(
        status_field(pid, "Gid").unwrap(),
        format!("{gid}\t{gid}\t{gid}\t{gid}")
    );
}

#[test]
fn numeric_user_and_group() {
    require_root!();
    let t = TempDir::new("numuser");
    // Integer ids and a digit string that names no user.
    t.write_svc(
        "a.toml",
        "cmd = [\"/bin/sleep\", \"1001\"]\nuser = 12345\ngroup = 23456\nstop-timeout = \"1s\"\n",
    );
    t.write_svc("b.toml", "cmd = [\"/bin/sleep\", \"1002\"]\nuser = \"12346\"\ngroup = \"23457\"\nstop-timeout = \"1s\"\n");
    let g = Going::start(&t);
    let a = g.wait_running("a");
    let b = g.wait_running("b");
    assert_eq!(
        status_field(a, "Uid").unwrap(),
        "12345\t12345\t12345\t12345"
    );
    assert_eq!(
        status_field(a, "Gid").unwrap(),
        "23456\t23456\t23456\t23456"
    );
    assert_eq!(
        status_field(b, "Uid").unwrap(),
        "12346\t12346\t12346\t12346"
    );
    assert_eq!(
        status_field(b, "Gid").unwrap(),
        "23457\t23457\t23457\t23457"
    );
}

#[test]
fn cwd_dir_and_default_root() {
    let t = TempDir::new("cwd");
    let work = t.join("work dir");
    fs::create_dir_all(&work).unwrap();
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = [\"/bin/sleep\", \"1001\"]\ndir = {}\nstop-timeout = \"1s\"\n",
            q(&work.display().to_string())
        ),
    );
    t.write_svc("b.toml", &sleep_service(1002, ""));
    let g = Going::start(&t);
    let a = g.wait_running("a");
    let b = g.wait_running("b");
    assert_eq!(cwd(a).as_deref(), Some(work.as_path()), "dir");
    assert_eq!(cwd(b).as_deref(), Some(Path::new("/")), "default dir is /");
}

#[test]
fn umask_string_integer_and_inherited() {
    let t = TempDir::new("umask");
    t.write_svc("a.toml", &sleep_service(1001, "umask = \"027\""));
    t.write_svc("b.toml", &sleep_service(1002, "umask = 0o077"));
    t.write_svc("c.toml", &sleep_service(1003, ""));
    let g = Going::start_with(
        &t,
        Opts {
            pre: "umask 033;".into(),
            ..Opts::default()
        },
    );
    let a = g.wait_running("a");
    let b = g.wait_running("b");
    let c = g.wait_running("c");
    assert_eq!(
        status_field(a, "Umask").as_deref(),
        Some("0027"),
        "umask = \"027\""
    );
    assert_eq!(
        status_field(b, "Umask").as_deref(),
        Some("0077"),
        "umask = 0o077"
    );
    assert_eq!(
        status_field(c, "Umask").as_deref(),
        Some("0033"),
        "no umask: going's own"
    );
}

#[test]
fn nice_values_and_inherited() {
    require_root!(); // negative nice needs privilege
    let t = TempDir::new("nice");
    t.write_svc("a.toml", &sleep_service(1001, "nice = 5"));
    t.write_svc("b.toml", &sleep_service(1002, "nice = -3"));
    t.write_svc("c.toml", &sleep_service(1003, ""));
    t.write_svc("d.toml", &sleep_service(1004, "nice = 19"));
    let g = Going::start_with(
        &t,
        Opts {
            exec_prefix: "nice -n 2".into(),
            ..Opts::default()
        },
    );
    let a = g.wait_running("a");
    let b = g.wait_running("b");
    let c = g.wait_running("c");
    let d = g.wait_running("d");
    assert_eq!(
        stat(g.pid).unwrap().nice,
        2,
        "going's own nice (test setup)"
    );
    assert_eq!(stat(a).unwrap().nice, 5, "nice = 5");
    assert_eq!(stat(b).unwrap().nice, -3, "nice = -3");
    assert_eq!(stat(c).unwrap().nice, 2, "no nice: going's own");
    assert_eq!(stat(d).unwrap().nice, 19, "nice = 19");
}

#[test]
fn stdout_file_is_appended_and_stderr_null() {
    let t = TempDir::new("stdout");
    let out = t.join("out.log");
    let created = t.join("created.log");
    fs::write(&out, "old\n").unwrap();
    let pidf = t.join("pid");
    let script = format!(
        "echo hello-$GOING_SERVICE; echo oops >&2; echo $$ > {}; exec sleep 1000",
        pidf.display()
    );
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nstdout = {}\nstderr = \"null\"\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", &script]),
            q(&out.display().to_string())
        ),
    );
    t.write_svc(
        "b.toml",
        &format!(
            "cmd = {}\nstderr = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", "echo to-stderr >&2; exec sleep 1000"]),
            q(&created.display().to_string())
        ),
    );
    let g = Going::start(&t);
    let pid = g.pid_from_file(&pidf);
    g.wait(secs(5), "out.log to get the service's line", || {
        fs::read_to_string(&out).unwrap_or_default() == "old\nhello-a\n"
    });
    let fdl = fds(pid);
    assert_eq!(
        fdl.iter().find(|f| f.0 == 1).map(|f| f.1.clone()),
        Some(out.display().to_string()),
        "fd 1: {fdl:?}"
    );
    assert_eq!(
        fdl.iter().find(|f| f.0 == 2).map(|f| f.1.clone()),
        Some("/dev/null".into()),
        "fd 2: {fdl:?}"
    );
    let flags = fd_flags(pid, 1).expect("fdinfo of fd 1");
    assert!(
        flags & 0o2000 != 0,
        "fd 1 opened with O_APPEND (flags {flags:o})"
    );
    // Output that reaches going's log is part of it (the line is the
    // contract: going(8) LOGGING); stderr = null must not get there.
    assert!(
        !g.log_has("oops") && !fs::read_to_string(&out).unwrap().contains("oops"),
        "stderr = null went somewhere"
    );

    // A restart appends again, never truncates.
    kill(pid, SIGKILL);
    g.new_pid_from_file(&pidf, pid);
    g.wait(secs(5), "second hello appended", || {
        fs::read_to_string(&out).unwrap_or_default() == "old\nhello-a\nhello-a\n"
    });

    // A missing file is created.
    let b = g.wait_running("b");
    g.wait(secs(5), "stderr file created with the line", || {
        fs::read_to_string(&created).unwrap_or_default() == "to-stderr\n"
    });
    assert_eq!(
        fds(b).iter().find(|f| f.0 == 2).map(|f| f.1.clone()),
        Some(created.display().to_string())
    );
}

#[test]
fn stdout_stderr_inherit_by_default() {
    let t = TempDir::new("inherit");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    t.write_svc(
        "b.toml",
        &sleep_service(1002, "stdout = \"inherit\"\nstderr = \"inherit\""),
    );
    let g = Going::start(&t);
    for name in ["a", "b"] {
        let pid = g.wait_running(name);
        let mine = fds(pid);
        let going = fds(g.pid);
        let target =
            |v: &Vec<(i32, String)>, n: i32| v.iter().find(|f| f.0 == n).map(|f| f.1.clone());
        assert_eq!(
            target(&mine, 1),
            target(&going, 1),
            "{name}: fd 1 is going's stdout"
        );
        assert_eq!(
            target(&mine, 2),
            target(&going, 2),
            "{name}: fd 2 is going's stderr"
        );
        assert_eq!(target(&mine, 2), Some(g.log_path.display().to_string()));
    }
}

#[test]
fn signal_mask_and_dispositions_are_clean() {
    let t = TempDir::new("sigmask");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    // going starts with some signals ignored; services must not inherit that.
    let g = Going::start_with(
        &t,
        Opts {
            ignore: vec![1, 13, 21, 22, 25, 40, 64],
            ..Opts::default()
        },
    );
    let pid = g.wait_running("a");
    let going_ign =
        u64::from_str_radix(&status_field(g.pid, "SigIgn").unwrap_or_default(), 16).unwrap_or(0);
    assert!(
        going_ign & (1 << 12) != 0,
        "going itself started with SIGPIPE ignored (test setup)"
    );
    assert_eq!(
        status_field(pid, "SigBlk").as_deref(),
        Some("0000000000000000"),
        "SigBlk of the service"
    );
    assert_eq!(
        status_field(pid, "SigPnd").as_deref(),
        Some("0000000000000000"),
        "SigPnd of the service"
    );
    let ign = u64::from_str_radix(&status_field(pid, "SigIgn").unwrap_or_default(), 16)
        .unwrap_or(u64::MAX);
    // Signals 32-34 are checked by the next test.
    let reserved: u64 = 0b111 << 31;
    assert_eq!(ign & !reserved, 0, "SigIgn of the service: {ign:016x}");
    // Sanity: going itself blocks signals (it reads them from a signalfd).
    let blk = status_field(g.pid, "SigBlk").unwrap_or_default();
    assert_ne!(
        blk, "0000000000000000",
        "going blocks its signals, so the check above means something"
    );
}

#[test]
fn libc_reserved_signals_are_not_left_ignored() {
    // libc's sigaction refuses signals 32-34, so resetting dispositions with
    // it leaves them ignored when going inherited them ignored (as it does
    // under some CI runners). The service must still start with SigIgn 0.
    let t = TempDir::new("sigreserved");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start_with(
        &t,
        Opts {
            ignore: vec![32, 33, 34],
            ..Opts::default()
        },
    );
    let pid = g.wait_running("a");
    assert_eq!(
        status_field(pid, "SigIgn").as_deref(),
        Some("0000000000000000"),
        "SigIgn of the service"
    );
}

#[test]
fn stdin_is_dev_null_and_no_extra_fds() {
    let t = TempDir::new("fds");
    let out = t.join("out");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    t.write_svc(
        "b.toml",
        &sleep_service(
            1002,
            &format!(
                "stdout = {}\nstderr = \"null\"",
                q(&out.display().to_string())
            ),
        ),
    );
    let g = Going::start(&t);
    let a = g.wait_running("a");
    let b = g.wait_running("b");
    // going has more descriptors (signalfd, inotify, ...): none may leak.
    assert!(
        fds(g.pid).len() > 3,
        "going has its own descriptors: {:?}",
        fds(g.pid)
    );
    for pid in [a, b] {
        let v = fds(pid);
        let nums: Vec<i32> = v.iter().map(|f| f.0).collect();
        assert_eq!(nums, vec![0, 1, 2], "descriptors of the service: {v:?}");
        assert_eq!(v[0].1, "/dev/null", "fd 0 (going's stdin is a pipe): {v:?}");
    }
}

#[test]
fn service_is_session_and_group_leader() {
    let t = TempDir::new("session");
    t.write_svc("a.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    let s = stat(pid).unwrap();
    assert_eq!(s.session, pid, "session id == pid");
    assert_eq!(s.pgrp, pid, "process group == pid");
    assert_ne!(
        s.session,
        stat(g.pid).unwrap().session,
        "not going's session"
    );
}

#[test]
fn chroot_with_busybox() {
    require_root!();
    let t = TempDir::new("chroot");
    let root = t.join("root");
    if busybox_chroot(&root).is_none() {
        eprintln!("SKIPPED: /bin/busybox not available for the chroot test");
        return;
    }
    let out = t.join("out.txt"); // outside the chroot: opened by going before chroot
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nchroot = {}\nstdout = {}\nstop-timeout = \"1s\"\n",
            qa(&[
                "/bin/busybox",
                "sh",
                "-c",
                "echo $$ > /pid; echo in-chroot; /bin/busybox ls /; exec /bin/busybox sleep 1000"
            ]),
            q(&root.display().to_string()),
            q(&out.display().to_string())
        ),
    );
    let g = Going::start(&t);
    let pid = g.pid_from_file(&root.join("pid"));
    assert_eq!(
        root_of(pid).as_deref(),
        Some(root.as_path()),
        "/proc/PID/root"
    );
    assert_eq!(
        cwd(pid).as_deref(),
        Some(root.as_path()),
        "cwd is / inside the chroot"
    );
    g.wait(secs(5), "output of the chrooted service", || {
        let s = fs::read_to_string(&out).unwrap_or_default();
        s.starts_with("in-chroot\n")
            && s.contains("bin\n")
            && s.contains("pid\n")
            && !s.contains("svc")
    });
}

fn root_of(pid: i32) -> Option<std::path::PathBuf> {
    root(pid)
}

#[test]
fn shell_true_runs_through_bin_sh() {
    let t = TempDir::new("shell");
    let pidf = t.join("pid");
    let script = format!("echo $$ > {} && sleep 1000; :", pidf.display());
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nshell = true\nstop-timeout = \"1s\"\n",
            q(&script)
        ),
    );
    let g = Going::start(&t);
    let pid = g.pid_from_file(&pidf);
    assert_eq!(
        cmdline(pid),
        vec!["/bin/sh".to_string(), "-c".to_string(), script.clone()]
    );
}

#[test]
fn legacy_going_format() {
    let t = TempDir::new("legacy");
    let work = t.join("work");
    fs::create_dir_all(&work).unwrap();
    t.write_svc(
        "web",
        &format!(
            "# the original going format\n\ncmd=/bin/sh -c 'sleep 1000; :' arg\n  env.FOO = bar baz  \nenv.X=a=b\n   # indented comment\ndir={}\nstop-timeout=1\numask=077\n",
            work.display()
        ),
    );
    t.write_svc("plain", "cmd=/bin/sleep 1002\n");
    let g = Going::start(&t);
    let pid = g.wait_running("web");
    assert_eq!(cmdline(pid), vec!["/bin/sh", "-c", "sleep 1000; :", "arg"]);
    let env = environ(pid);
    for want in ["FOO=bar baz", "X=a=b", "GOING_SERVICE=web", DEFAULT_PATH] {
        assert!(env.iter().any(|e| e == want), "{want:?} missing in {env:?}");
    }
    assert_eq!(env.len(), 6, "PATH HOME USER GOING_SERVICE FOO X: {env:?}");
    assert_eq!(cwd(pid).as_deref(), Some(work.as_path()));
    assert_eq!(status_field(pid, "Umask").as_deref(), Some("0077"));
    let p2 = g.wait_running("plain");
    assert_eq!(cmdline(p2), vec!["/bin/sleep", "1002"]);
}

#[test]
fn enabled_false_never_starts() {
    let t = TempDir::new("disabled");
    let marker = t.join("started");
    let script = format!("echo yes > {}; exec sleep 1000", marker.display());
    t.write_svc(
        "off.toml",
        &format!(
            "cmd = {}\nenabled = false\n",
            qa(&["/bin/sh", "-c", &script])
        ),
    );
    t.write_svc("on.toml", &sleep_service(1001, ""));
    let g = Going::start(&t);
    g.wait_running("on");
    // Give a wrongly started service time to show up.
    std::thread::sleep(ms(300));
    g.check(!marker.exists(), "a disabled service was started");
    let off = g.svc("off");
    g.check(
        off.as_ref().is_some_and(|s| {
            s.state == "disabled" && s.pid.is_none() && s.last_exit.is_none() && s.restarts == 0
        }),
        &format!("status shows the disabled service started: {off:?}"),
    );
    let kids = children(g.pid);
    g.check(
        kids.len() == 1,
        &format!("only the enabled service runs, children: {kids:?}"),
    );
    // SIGUSR1 reports it as disabled (the lines are the contract: going(8)
    // SIGNALS).
    g.signal(SIGUSR1);
    g.wait_log(" off: disabled", secs(3));
    g.wait_log(" on: running, pid ", secs(3));
}

#[test]
fn stdout_file_is_opened_by_going_not_the_service_user() {
    require_root!();
    let t = TempDir::new("stdoutroot");
    let private = t.join("private");
    fs::create_dir_all(&private).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let out = private.join("out.log");
    t.write_svc(
        "a.toml",
        &format!(
            "cmd = {}\nuser = \"nobody\"\nstdout = {}\nstop-timeout = \"1s\"\n",
            qa(&["/bin/sh", "-c", "echo hello; exec sleep 1000"]),
            q(&out.display().to_string())
        ),
    );
    let g = Going::start(&t);
    let pid = g.wait_running("a");
    g.wait(
        secs(5),
        "the service's output in a root-only directory",
        || fs::read_to_string(&out).unwrap_or_default() == "hello\n",
    );
    let (uid, _, _) = passwd_entry("nobody").unwrap();
    assert_eq!(stat_uid(pid), uid);
}
