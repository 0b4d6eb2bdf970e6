//! `going check` and the command line.

mod common;
use common::*;
use std::fs;

/// Run `going check -d DIR`; returns (exit code, stdout lines, stderr).
fn check(dir: &std::path::Path) -> (Option<i32>, Vec<String>, String) {
    let out = run_going(&["check", "-d", &dir.display().to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    (
        out.status.code(),
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory with one file; check it and expect exactly `want` (lines
/// given as `LINE: message`, prefixed here with the file's path).
fn expect_problems(tag: &str, file: &str, content: &str, want: &[&str]) {
    let t = TempDir::new(tag);
    t.write_svc("good.toml", &sleep_service(1, ""));
    let p = t.write_svc(file, content);
    let (code, lines, err) = check(&t.svc());
    let want: Vec<String> = want
        .iter()
        .map(|w| format!("{}:{w}", p.display()))
        .collect();
    assert_eq!(lines, want, "stdout of going check (stderr: {err:?})");
    assert_eq!(code, Some(1), "exit status of going check");
}

#[test]
fn check_good_dir_exit_0_no_output() {
    let t = TempDir::new("check-good");
    let out = t.join("out.log");
    t.write_svc(
        "full.toml",
        &format!(
            r#"# every key
cmd = ["/bin/sleep", "1000"]
shell = false
env = {{ A = "1", B = "two words" }}
user = "nobody"
group = "daemon"
dir = "/tmp"
chroot = "/"
umask = "027"
nice = 5
stdout = {}
stderr = "null"
restart = "on-failure"
stop-signal = "SIGINT"
stop-timeout = "250ms"
enabled = true
"#,
            q(&out.display().to_string())
        ),
    );
    t.write_svc("shell.toml", "cmd = \"echo hi; sleep 1\"\nshell = true\nstop-signal = \"term\"\nstop-timeout = 5\numask = 0o022\n");
    t.write_svc("sig.toml", "cmd = \"sleep 1\"\nstop-signal = \"TERM\"\nstop-timeout = \"1.5s\"\nrestart = \"never\"\nuser = 0\ngroup = 0\n");
    t.write_svc("dur.toml", "cmd = \"sleep 1\"\nstop-timeout = \"5m\"\nstop-signal = \"hup\"\nenabled = false\nstdout = \"inherit\"\n");
    t.write_svc("legacy", "# legacy\ncmd=/usr/bin/salt-minion -l info\nenv.A=b=c\nstop-timeout=2\nuser=nobody\nrestart=always\n");
    t.write_svc("minimal", "cmd=/bin/true\n");
    // Not service files: must be ignored even though they do not parse.
    t.write_svc("full.toml~", "garbage");
    t.write_svc(".full.toml.swp", "garbage");
    t.write_svc("x.dpkg-new", "garbage");
    t.write_svc("bad name", "garbage");
    let (code, lines, err) = check(&t.svc());
    assert_eq!(lines, Vec::<String>::new(), "no output on a good directory");
    assert_eq!(err, "", "no stderr on a good directory");
    assert_eq!(code, Some(0), "exit status");
}

#[test]
fn check_empty_dir_is_good() {
    let t = TempDir::new("check-empty");
    fs::create_dir_all(t.svc()).unwrap();
    let (code, lines, _) = check(&t.svc());
    assert_eq!((code, lines), (Some(0), vec![]));
}

#[test]
fn check_unknown_key() {
    expect_problems(
        "check-key",
        "a.toml",
        "cmd = \"/bin/true\"\n\nbogus = 1\n",
        &["3: unknown key \"bogus\""],
    );
}

#[test]
fn check_unknown_key_legacy() {
    expect_problems(
        "check-key-legacy",
        "web",
        "cmd=/bin/true\nbogus=1\n",
        &["2: unknown key \"bogus\""],
    );
}

#[test]
fn check_wrong_types() {
    expect_problems(
        "check-type",
        "a.toml",
        "cmd = \"/bin/true\"\nnice = \"x\"\nshell = \"yes\"\nenabled = 1\ncmd2 = 1\n",
        &[
            "2: nice: expected an integer, found string",
            "3: shell: expected true or false, found string",
            "4: enabled: expected true or false, found integer",
            "5: unknown key \"cmd2\"",
        ],
    );
}

#[test]
fn check_wrong_type_legacy() {
    expect_problems(
        "check-type-legacy",
        "web",
        "cmd=/bin/true\nnice=high\n",
        &["2: nice: expected an integer, found \"high\""],
    );
}

#[test]
fn check_bad_duration() {
    expect_problems(
        "check-dur",
        "a.toml",
        "cmd = \"/bin/true\"\nstop-timeout = \"10x\"\n",
        &["2: stop-timeout: bad duration \"10x\": unit must be ms, s, m or h"],
    );
}

#[test]
fn check_bad_signal() {
    expect_problems(
        "check-sig",
        "a.toml",
        "cmd = \"/bin/true\"\nstop-signal = \"FOO\"\n",
        &["2: stop-signal: unknown signal \"FOO\""],
    );
}

#[test]
fn check_missing_cmd() {
    expect_problems(
        "check-nocmd",
        "a.toml",
        "# no command\nnice = 1\n",
        &["1: missing cmd: every service needs one"],
    );
    expect_problems(
        "check-nocmd-legacy",
        "web",
        "nice=1\n",
        &["1: missing cmd: every service needs one"],
    );
}

#[test]
fn check_unknown_user() {
    expect_problems(
        "check-user",
        "a.toml",
        "cmd = \"/bin/true\"\n\nuser = \"no-such-user-going\"\n",
        &["3: user: unknown user \"no-such-user-going\""],
    );
}

#[test]
fn check_unknown_group() {
    expect_problems(
        "check-group",
        "web",
        "cmd=/bin/true\ngroup=no-such-group-going\n",
        &["2: group: unknown group \"no-such-group-going\""],
    );
}

#[test]
fn check_numeric_ids_are_fine() {
    let t = TempDir::new("check-ids");
    t.write_svc(
        "a.toml",
        "cmd = \"/bin/true\"\nuser = 12345\ngroup = \"23456\"\n",
    );
    let (code, lines, _) = check(&t.svc());
    assert_eq!((code, lines), (Some(0), vec![]));
}

#[test]
fn check_one_line_per_problem_over_several_files() {
    let t = TempDir::new("check-many");
    t.write_svc("good.toml", &sleep_service(1, ""));
    let a = t.write_svc(
        "a.toml",
        "cmd = \"/bin/true\"\nbogus = 1\nstop-signal = \"NOPE\"\n",
    );
    let b = t.write_svc("b", "cmd=/bin/true\nthis line has no equals\n");
    let c = t.write_svc("c.toml", "cmd = [\n");
    let (code, lines, _) = check(&t.svc());
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 4, "one line per problem: {lines:?}");
    assert_eq!(
        lines[0],
        format!("{}:2: unknown key \"bogus\"", a.display())
    );
    assert_eq!(
        lines[1],
        format!("{}:3: stop-signal: unknown signal \"NOPE\"", a.display())
    );
    assert_eq!(lines[2], format!("{}:2: expected key=value", b.display()));
    assert!(
        lines[3].starts_with(&format!("{}:1: ", c.display()))
            || lines[3].starts_with(&format!("{}:2: ", c.display())),
        "TOML syntax error line: {:?}",
        lines[3]
    );
}

#[test]
fn check_lists_every_problem_of_a_going_format_file() {
    expect_problems(
        "check-all-going",
        "web",
        "cmd=/bin/true\nno equals here\nnice=99\nuser=no-such-user-going\nbogus=1\n",
        &[
            "2: expected key=value",
            "3: nice: 99 is out of range -20..19",
            "4: user: unknown user \"no-such-user-going\"",
            "5: unknown key \"bogus\"",
        ],
    );
}

#[test]
fn check_lists_every_problem_of_a_toml_file() {
    expect_problems(
        "check-all-toml",
        "a.toml",
        "cmd = \"/bin/true\"\nready-fd = 3\nnotify = true\nuser = \"no-such-user-going\"\n\
         group = \"no-such-group-going\"\ndepends-on = \"nope\"\n",
        &[
            "3: notify: only one of ready-fd, notify and ready",
            "4: user: unknown user \"no-such-user-going\"",
            "5: group: unknown group \"no-such-group-going\"",
            "6: depends-on: depends on \"nope\", which no file defines",
        ],
    );
}

#[test]
fn check_env_values_must_be_strings() {
    expect_problems(
        "check-env",
        "a.toml",
        "cmd = \"/bin/true\"\n[env]\nA = 1\nB = true\nC = \"fine\"\n",
        &[
            "3: env.A: expected a string, found integer",
            "4: env.B: expected a string, found boolean",
        ],
    );
    expect_problems(
        "check-env-inline",
        "a.toml",
        "cmd = \"/bin/true\"\nenv = { A = \"1\", B = 2 }\n",
        &["2: env.B: expected a string, found integer"],
    );
}

#[test]
fn check_toml_syntax_error_with_its_line() {
    let t = TempDir::new("check-syntax");
    let p = t.write_svc("a.toml", "cmd = \"/bin/true\"\nnice = 1\ncmd = \"x\"\n");
    let (code, lines, _) = check(&t.svc());
    assert_eq!(code, Some(1));
    assert_eq!(
        lines,
        [format!(
            "{}:3: TOML syntax: duplicate key \"cmd\"",
            p.display()
        )]
    );
}

#[test]
fn check_duplicate_service() {
    let t = TempDir::new("check-dup");
    let p = t.write_svc("a.toml", "cmd = \"/bin/true\"\n");
    t.write_svc("a", "cmd=/bin/true\n");
    let (code, lines, _) = check(&t.svc());
    assert_eq!(code, Some(1));
    assert_eq!(
        lines,
        vec![format!(
            "{}:1: duplicate service a: both a and a.toml exist",
            p.display()
        )]
    );
}

#[test]
fn version_and_help() {
    for flag in ["-v", "--version"] {
        let out = run_going(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "going 1.0.0\n",
            "{flag}"
        );
    }
    for flag in ["-h", "--help"] {
        let out = run_going(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            s.contains("going") && s.contains("-d") && s.contains("check"),
            "usage on stdout for {flag}: {s:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus"][..],
        &["-l", "nowhere"],
        &["-d"],
        &["frobnicate"],
    ] {
        let out = run_going(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "going {args:?}: stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stderr.is_empty(),
            "going {args:?}: message and usage on stderr"
        );
        assert!(out.stdout.is_empty(), "going {args:?}: nothing on stdout");
    }
}
