//! `going add`, `going remove` (usvc's ad-hoc services) and `going
//! expand`: commands that read or write the service directory itself.
//! add and remove only write or delete a file; the running going learns
//! of it through inotify like any other edit, and they then ask it, over
//! the control socket, until the service runs (or is gone).

use crate::config;
use crate::util::{describe_io, format_duration};
use lexopt::prelude::*;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long add and remove wait without `-t`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// Between two questions to going while waiting.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, PartialEq, Eq)]
pub struct Add {
    pub dir: PathBuf,
    pub socket: Option<PathBuf>,
    pub name: String,
    pub argv: Vec<String>,
    pub groups: Vec<String>,
    pub instances: Option<u32>,
    /// `None` with `--no-wait`.
    pub wait: Option<Duration>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verb {
    Add(Add),
    Remove {
        dir: PathBuf,
        socket: Option<PathBuf>,
        name: String,
        wait: Duration,
    },
    Expand {
        dir: PathBuf,
        name: String,
    },
}

/// The command line of add, remove or expand; `None` for any other.
pub fn parse(args: &[OsString]) -> Option<Result<Verb, String>> {
    let mut taking_value = false;
    let verb = args.iter().find_map(|arg| {
        let text = arg.to_str().unwrap_or("");
        if std::mem::take(&mut taking_value) {
            return None;
        }
        if ["-d", "-s", "-t", "-l", "-e"].contains(&text) {
            taking_value = true;
            return None;
        }
        (!text.starts_with('-')).then_some(text)
    })?;
    ["add", "remove", "expand"]
        .contains(&verb)
        .then(|| parse_verb(args.to_vec()))
}

fn parse_verb(mut args: Vec<OsString>) -> Result<Verb, String> {
    let utf8 = |w: OsString| format!("{w:?} is not UTF-8");
    let argv = match args.iter().position(|a| a == "--") {
        Some(at) => {
            let rest = args.split_off(at);
            let words = rest.into_iter().skip(1).map(OsString::into_string);
            Some(words.collect::<Result<Vec<String>, _>>().map_err(utf8)?)
        }
        None => None,
    };
    let mut parser = lexopt::Parser::from_args(args);
    let text = |e: lexopt::Error| e.to_string();
    let mut dir = PathBuf::from(crate::control::DEFAULT_DIR);
    let (mut socket, mut groups, mut instances) = (None, Vec::new(), None);
    let (mut no_wait, mut wait) = (false, DEFAULT_WAIT);
    let mut words: Vec<String> = Vec::new();
    while let Some(arg) = parser.next().map_err(text)? {
        let value = |parser: &mut lexopt::Parser| -> Result<String, String> {
            parser.value().map_err(text)?.into_string().map_err(utf8)
        };
        match arg {
            Short('d') | Long("dir") => dir = PathBuf::from(value(&mut parser)?),
            Short('s') | Long("socket") => socket = Some(PathBuf::from(value(&mut parser)?)),
            Short('t') => {
                wait = config::values::duration(&value(&mut parser)?)
                    .map_err(|why| format!("-t: {why}"))?
            }
            Short('g') | Long("group") => groups.push(value(&mut parser)?),
            Short('n') => {
                let n = value(&mut parser)?;
                instances = Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=config::MAX_INSTANCES).contains(n))
                        .ok_or(format!("-n takes 1..{}, not {n:?}", config::MAX_INSTANCES))?,
                );
            }
            Long("no-wait") => no_wait = true,
            Value(word) => words.push(word.into_string().map_err(utf8)?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let verb = words.first().cloned().unwrap_or_default();
    let [_, name] = words.as_slice() else {
        return Err(format!("{verb} takes one service name"));
    };
    let mut names = std::iter::once(("", name)).chain(groups.iter().map(|g| ("-g: ", g)));
    if let Some((flag, bad)) = names.find(|(_, n)| !config::is_service_name(n)) {
        return Err(format!(
            "{flag}{bad:?} is not a name of letters, digits, - and _"
        ));
    }
    let name = name.clone();
    let only_add = !groups.is_empty() || instances.is_some() || no_wait || argv.is_some();
    match verb.as_str() {
        "add" => {
            let argv = argv
                .filter(|a| a.first().is_some_and(|p| !p.is_empty()))
                .ok_or("add needs a command after --")?;
            Ok(Verb::Add(Add {
                dir,
                socket,
                name,
                argv,
                groups,
                instances,
                wait: (!no_wait).then_some(wait),
            }))
        }
        _ if only_add => Err(format!("{verb} takes only -d, -s, -t and a name")),
        "remove" => Ok(Verb::Remove {
            dir,
            socket,
            name,
            wait,
        }),
        _ => Ok(Verb::Expand { dir, name }),
    }
}

/// Runs one of the three; the exit status.
pub fn run(verb: Verb) -> i32 {
    let result = match verb {
        Verb::Add(add) => run_add(&add),
        Verb::Remove {
            dir,
            socket,
            name,
            wait,
        } => run_remove(&dir, socket, &name, wait),
        Verb::Expand { dir, name } => expand(&dir, &name).map(|text| print!("{text}")),
    };
    match result {
        Ok(()) => 0,
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "going: {why}");
            1
        }
    }
}

/// The service file `add` writes.
pub fn add_file(add: &Add) -> String {
    let list = |words: &[String]| {
        let quoted: Vec<String> = words.iter().map(|w| toml_string(w)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut text = format!("# written by going add\ncmd = {}\n", list(&add.argv));
    if !add.groups.is_empty() {
        text.push_str(&format!("groups = {}\n", list(&add.groups)));
    }
    if let Some(n) = add.instances {
        text.push_str(&format!("instances = {n}\n"));
    }
    text
}

fn run_add(add: &Add) -> Result<(), String> {
    let (dir, name) = (&add.dir, &add.name);
    if let Some(file) = defined_by(dir, name) {
        return Err(format!("{name} exists already ({})", file.display()));
    }
    let path = dir.join(format!("{name}.toml"));
    // A dotfile, which going ignores, then linked to its name: the link
    // fails if the name was taken meanwhile, and the file appears whole.
    // Opened for writing and closed once linked: going reads a new file
    // at its close, and the link's own event may come after the dotfile
    // is gone, when it looks like a file still being written.
    let temp = dir.join(format!(".{name}.toml.{}", std::process::id()));
    let written = write_new(&temp, add_file(add).as_bytes());
    let linked = written.and_then(|()| match std::fs::hard_link(&temp, &path) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => {
            std::fs::rename(&temp, &path)
        }
        Ok(()) => std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map(drop),
        other => other,
    });
    let _ = std::fs::remove_file(&temp);
    linked.map_err(|err| match err.kind() {
        std::io::ErrorKind::AlreadyExists => format!("{name} exists already ({})", path.display()),
        _ => format!("cannot write {}: {}", path.display(), describe_io(&err)),
    })?;
    let Some(wait) = add.wait else {
        return Ok(());
    };
    let socket = socket_of(dir, add.socket.clone());
    poll_status(&socket, name, wait, "not running", &|answer| match answer {
        Err((_, why)) => Some(Err(format!(
            "{} written, but {}: {why}",
            path.display(),
            socket.display()
        ))),
        // Running, and ready if it says when it is.
        Ok((0, _)) => Some(Ok(())),
        Ok((_, json)) if states(&json).any(|s| s == "exited" || s == "disabled") => Some(Err(
            format!("{name}: did not stay up (going status {name})"),
        )),
        Ok(_) => None,
    })
}

fn run_remove(
    dir: &Path,
    socket: Option<PathBuf>,
    name: &str,
    wait: Duration,
) -> Result<(), String> {
    let Some(file) = defined_by(dir, name) else {
        return Err(format!("no service file for {name} in {}", dir.display()));
    };
    if file.file_name() == Some(config::PROCFILE.as_ref()) {
        return Err(format!(
            "{name} is a line of {}: edit that file",
            file.display()
        ));
    }
    std::fs::remove_file(&file)
        .map_err(|err| format!("cannot remove {}: {}", file.display(), describe_io(&err)))?;
    let socket = socket_of(dir, socket);
    let down = ["stopped", "exited", "disabled"];
    let gone =
        |json: &str| states(json).next().is_some() && states(json).all(|s| down.contains(&s));
    poll_status(&socket, name, wait, "still running", &|got| match got {
        Err((false, why)) => Some(Err(format!("{}: {why}", socket.display()))),
        // No going: nothing runs it. An unknown name: gone.
        Err((true, _)) => Some(Ok(())),
        Ok((_, text)) if !text.starts_with('{') || gone(&text) => Some(Ok(())),
        Ok(_) => None,
    })
}

/// What `settled` makes of `going status --json NAME`, asked every
/// [`POLL`]; after `wait`, `NAME: LATE after WAIT`.
fn poll_status(
    socket: &Path,
    name: &str,
    wait: Duration,
    late: &str,
    settled: &dyn Fn(crate::control::Answer) -> Option<Result<(), String>>,
) -> Result<(), String> {
    let until = Instant::now() + wait;
    let request = format!("status --json {name}");
    loop {
        if let Some(done) = settled(crate::control::ask(socket, &request, POLL * 10)) {
            return done;
        }
        if Instant::now() >= until {
            let wait = format_duration(wait);
            return Err(format!("{name}: {late} after {wait}"));
        }
        std::thread::sleep(POLL);
    }
}

fn socket_of(dir: &Path, socket: Option<PathBuf>) -> PathBuf {
    let euid = nix::unistd::geteuid().as_raw();
    socket.unwrap_or_else(|| crate::control::default_socket(dir, euid))
}

/// The states of a status JSON's services, as written.
fn states(json: &str) -> impl Iterator<Item = &str> {
    json.split("\"state\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
}

/// The file that defines `name` in `dir`, if one does.
fn defined_by(dir: &Path, name: &str) -> Option<PathBuf> {
    let own = [dir.join(format!("{name}.toml")), dir.join(name)];
    if let Some(file) = own.into_iter().find(|f| f.symlink_metadata().is_ok()) {
        return Some(file);
    }
    let procfile = config::compose::read_procfile(dir)?;
    procfile.line(name).map(|_| procfile.path.clone())
}

/// Creates `path` (which must not exist) with `bytes`, flushed to disk.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `going expand`: the definition in effect as TOML.
pub fn expand(dir: &Path, name: &str) -> Result<String, String> {
    let found = config::examine(dir, name)
        .ok_or_else(|| format!("no service {name} in {}", dir.display()))?;
    if !found.problems.is_empty() {
        let lines: Vec<String> = found
            .problems
            .iter()
            .map(|p| config::Located(&found.origin.file, p).to_string())
            .collect();
        return Err(lines.join("\ngoing: "));
    }
    let mut out = format!("# {name}: {}", found.origin.file.display());
    if let Some(template) = &found.origin.template {
        out.push_str(&format!(", template {}", template.display()));
    }
    out.push('\n');
    if let Some(v) = found.spec.extras().versions {
        use config::versions::format_local;
        let current = v.current.map_or("the top level".into(), |at| {
            format!("the version of apply-on {}", format_local(at))
        });
        if v.pending {
            out.push_str("# not in effect yet\n");
        } else {
            out.push_str(&format!("# in effect: {current}\n"));
        }
        if let Some(next) = v.next {
            out.push_str(&format!("# next switch: {}\n", format_local(next)));
        }
    }
    for entry in &found.entries {
        let value = toml_value(&entry.value);
        out.push_str(&format!("{} = {value}\n", toml_key(&entry.key)));
    }
    Ok(out)
}

/// A flattened key (`env.A`) as a dotted TOML key, quoting what a bare
/// key cannot hold.
fn toml_key(key: &str) -> String {
    let part = |k: &str| match config::is_service_name(k) {
        true => k.to_string(),
        false => toml_string(k),
    };
    match key.split_once('.').unwrap_or((key, "")) {
        (head, "") => part(head),
        (head, rest) => format!("{}.{}", part(head), part(rest)),
    }
}

fn toml_value(value: &config::Value) -> String {
    use config::Value;
    match value {
        // The going format's raw text: a number or a boolean as such.
        Value::Text(text) if text.parse::<i64>().is_ok() || text == "true" || text == "false" => {
            text.clone()
        }
        Value::Str(text) | Value::Text(text) => toml_string(text),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Datetime(text) => text.clone(),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Other(name) => toml_string(name),
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    crate::status::quoted_as(text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn add_remove_expand_parsed() {
        let got = parse(&words(&[
            "add",
            "-d",
            "/x",
            "-g",
            "web",
            "-n",
            "2",
            "--no-wait",
            "job",
            "--",
            "sleep",
            "9",
        ]));
        let add = Add {
            dir: "/x".into(),
            socket: None,
            name: "job".into(),
            argv: vec!["sleep".into(), "9".into()],
            groups: vec!["web".into()],
            instances: Some(2),
            wait: None,
        };
        assert_eq!(got, Some(Ok(Verb::Add(add))));
        assert_eq!(parse(&words(&["-d", "/x", "status"])), None);
        assert_eq!(parse(&words(&["-d", "add"])), None);
        assert!(matches!(
            parse(&words(&["remove", "-d", "/x", "job"])),
            Some(Ok(Verb::Remove { .. }))
        ));
        assert!(matches!(parse(&words(&["add", "job"])), Some(Err(_))));
        assert!(matches!(
            parse(&words(&["add", "a", "b", "--", "x"])),
            Some(Err(_))
        ));
        assert!(matches!(
            parse(&words(&["remove", "-n", "2", "job"])),
            Some(Err(_))
        ));
        assert!(matches!(parse(&words(&["expand", "../x"])), Some(Err(_))));
    }

    #[test]
    fn the_file_add_writes_reads_back() {
        let add = Add {
            dir: "/x".into(),
            socket: None,
            name: "job".into(),
            argv: vec!["sh".into(), "-c".into(), "echo \"$A\"\\n".into()],
            groups: vec!["g1".into(), "g2".into()],
            instances: Some(3),
            wait: None,
        };
        let spec = config::parse("job", config::Format::Toml, &add_file(&add)).unwrap();
        assert_eq!(spec.argv, add.argv);
        assert_eq!(spec.groups, add.groups);
        assert_eq!(spec.instances, Some(3));
    }

    #[test]
    fn keys_and_values_written_as_toml() {
        assert_eq!(toml_key("env.A"), "env.A");
        assert_eq!(toml_key("env.A.B"), "env.\"A.B\"");
        assert_eq!(toml_string("a\"b\\\u{1}"), "\"a\\\"b\\\\\\u0001\"");
        let list = config::Value::List(vec![config::Value::Int(1), config::Value::Str("x".into())]);
        assert_eq!(toml_value(&list), "[1, \"x\"]");
    }
}
