//! The definition of a service ([`ServiceSpec`]) and how file entries of
//! either format become one. Plain data with `Eq`: a reload restarts a
//! service exactly when its definition is no longer equal.

use super::{Entry, Problem, Value, values};
use crate::config::calendar::Schedule;
use crate::signals;
use std::path::PathBuf;
use std::time::Duration;

/// A user or group as written: resolved when the service starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Id {
    Name(String),
    Number(u32),
}

/// Where a service's stdout or stderr goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Inherit,
    Null,
    /// Opened append-only by going, before chroot.
    File(PathBuf),
    /// A pipe that going reads, logging each line.
    Syslog,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    /// Program and arguments, after splitting or wrapping in `/bin/sh -c`.
    pub argv: Vec<String>,
    /// Variables from the file, in file order; added to the fresh environment.
    pub env: Vec<(String, String)>,
    pub user: Option<Id>,
    pub group: Option<Id>,
    pub dir: PathBuf,
    pub chroot: Option<PathBuf>,
    pub umask: Option<u32>,
    pub nice: Option<i32>,
    pub stdout: Output,
    pub stderr: Output,
    pub restart: Restart,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub enabled: bool,
    /// Names usable wherever a service name is, in the control commands.
    pub groups: Vec<String>,
    /// `instances = N`: run `NAME@0` .. `NAME@N-1`; `None` runs one `NAME`.
    pub instances: Option<u32>,
    /// When it ends for good, going stops everything and exits with its status.
    pub critical: bool,
    /// The keys few services use, boxed so that the others do not pay
    /// for them (`None`: all defaults).
    pub extras: Option<Box<Extras>>,
    /// Files (services) that must be running, and ready, before it starts.
    pub depends_on: Vec<String>,
    /// Boxed, as few services have one (see [`ServiceSpec::log`]).
    pub log: Option<Box<LogSpec>>,
}

/// How a service says it is ready to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// s6: it writes a newline to this descriptor.
    Fd(i32),
    /// systemd: it sends `READY=1` to `$NOTIFY_SOCKET`.
    Notify,
    /// A command that exits 0 once it is, run every `interval`.
    Command {
        argv: Vec<String>,
        interval: Duration,
    },
}

/// Hooks, health checks, readiness and daemon keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extras {
    /// `before`: must exit 0 before each start.
    pub before: Option<Vec<String>>,
    /// `stop`: run instead of sending the stop signal.
    pub stop_command: Option<Vec<String>>,
    /// `on-exit`: run after every exit of the service.
    pub on_exit: Option<Vec<String>>,
    /// How long `before` and `on-exit` may run before they are killed.
    pub hook_timeout: Duration,
    pub health_check: Option<HealthCheck>,
    /// `pid-file`: the command daemonizes; the pid written here is the service.
    pub pid_file: Option<PathBuf>,
    /// How long a start may take: the pid file to appear, readiness.
    pub start_timeout: Duration,
    /// How the service says it is ready, if it does.
    pub readiness: Option<Readiness>,
    /// `[schedule]`: the windows it may run in; `None` runs always.
    pub schedule: Option<Schedule>,
    /// `health-check = { folder, inactive-time }`.
    pub activity: Option<ActivityCheck>,
    /// For a file with `apply-on` or `[[version]]`: which is in effect.
    pub versions: Option<VersionState>,
    /// `leftovers = "keep"`: what its process leaves in its group when it
    /// ends on its own is not stopped before the next start.
    pub keep_leftovers: bool,
}

/// Which of a file's definitions is in effect, and when that changes
/// (UNIX times). Part of the definition: a switch restarts the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionState {
    /// The `apply-on` of the version in effect; `None`: the top level.
    pub current: Option<i64>,
    /// The top level's `apply-on` is still to come (the service is
    /// disabled until `next`).
    pub pending: bool,
    pub next: Option<i64>,
}

/// `log`, `log-max-size` and `log-keep`: stdout and stderr through one
/// pipe to going, appended to `path` and rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSpec {
    /// Empty while only the size or the count was given (an error).
    pub path: PathBuf,
    /// The most bytes the file grows to before it rotates.
    pub max_size: u64,
    /// Rotated files kept, `PATH.1` .. `PATH.N`.
    pub keep: u32,
}

/// What a service without any of these keys has.
static NO_EXTRAS: Extras = Extras {
    before: None,
    stop_command: None,
    on_exit: None,
    hook_timeout: Duration::from_secs(30),
    health_check: None,
    pid_file: None,
    start_timeout: Duration::from_secs(30),
    readiness: None,
    versions: None,
    schedule: None,
    activity: None,
    keep_leftovers: false,
};

pub const DEFAULT_LOG_KEEP: u32 = 3;
/// The most rotated files `log-keep` may ask for.
pub const MAX_LOG_KEEP: u32 = 100;

impl ServiceSpec {
    /// A definition with every default, running `argv`.
    pub fn new(name: &str, argv: Vec<String>) -> ServiceSpec {
        ServiceSpec {
            name: name.to_string(),
            argv,
            env: Vec::new(),
            user: None,
            group: None,
            dir: PathBuf::from("/"),
            chroot: None,
            umask: None,
            nice: None,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            restart: Restart::Always,
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            enabled: true,
            groups: Vec::new(),
            instances: None,
            critical: false,
            extras: None,
            depends_on: Vec::new(),
            log: None,
        }
    }

    pub fn extras(&self) -> &Extras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }

    pub fn extras_mut(&mut self) -> &mut Extras {
        self.extras
            .get_or_insert_with(|| Box::new(NO_EXTRAS.clone()))
    }

    /// The service's `log`, if it has one.
    pub fn log(&self) -> Option<&LogSpec> {
        self.log
            .as_deref()
            .filter(|log| !log.path.as_os_str().is_empty())
    }

    fn log_mut(&mut self) -> &mut LogSpec {
        self.log.get_or_insert_with(|| {
            Box::new(LogSpec {
                path: PathBuf::new(),
                max_size: 1024 * 1024,
                keep: DEFAULT_LOG_KEEP,
            })
        })
    }
}

/// `health-check = { cmd, interval, timeout, retries }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row that restart the service.
    pub retries: u32,
}

/// Health by activity: restarted when nothing is created, written or
/// renamed in `folder` for `inactive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityCheck {
    pub folder: PathBuf,
    pub inactive: Duration,
}

/// The most copies one file may ask for.
pub const MAX_INSTANCES: u32 = 1000;

enum Command {
    Line(String),
    Words(Vec<String>),
}

/// Builds a definition from a file's entries, and says everything wrong
/// with them, in line order. With problems, the definition holds what the
/// good entries say (for `going check` to look further), never to be run.
pub fn build(name: &str, entries: &[Entry]) -> (ServiceSpec, Vec<Problem>) {
    let mut spec = ServiceSpec::new(name, Vec::new());
    let mut problems = Vec::new();
    let mut command = None;
    let mut shell = false;
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    for (entry, repeated) in entries.iter().zip(crate::util::repeats(&keys)) {
        let key = entry.key.as_str();
        let env_var = key.strip_prefix("env.");
        let message = if repeated {
            format!("duplicate key {key:?}")
        } else if let Some(var) = env_var.filter(|v| v.is_empty() || v.contains(['=', '\0'])) {
            format!("env: bad variable name {var:?}")
        } else {
            match apply(&mut spec, &mut command, &mut shell, key, &entry.value) {
                Ok(true) => continue,
                Ok(false) => format!("unknown key {key:?}"),
                Err(why) => format!("{key}: {why}"),
            }
        };
        problems.push(Problem::new(entry.line, message));
    }
    let cmd_line = first_line(entries, &|key| key == "cmd");
    match (command, shell) {
        (Some(Command::Line(line)), true) => spec.argv = vec!["/bin/sh".into(), "-c".into(), line],
        (Some(Command::Words(_)), true) => problems.push(Problem::new(
            cmd_line,
            "cmd: with shell = true, cmd must be a string",
        )),
        (Some(Command::Line(line)), false) => match values::split_command(&line) {
            Ok(words) if words.is_empty() => {
                problems.push(Problem::new(cmd_line, "cmd: empty command"))
            }
            Ok(words) => spec.argv = words,
            Err(why) => problems.push(Problem::new(cmd_line, format!("cmd: {why}"))),
        },
        (Some(Command::Words(words)), false) => spec.argv = words,
        (None, _) if !problems.iter().any(|p| p.message.starts_with("cmd:")) => {
            problems.push(Problem::new(1, "missing cmd: every service needs one"))
        }
        (None, _) => {}
    }
    if matches!(&spec.extras().readiness, Some(Readiness::Command { argv, .. }) if argv.is_empty())
    {
        let line = first_line(entries, &|key| key == "ready-interval");
        problems.push(Problem::new(line, "ready-interval: needs a ready command"));
    }
    if spec
        .extras()
        .health_check
        .as_ref()
        .is_some_and(|h| h.argv.is_empty())
    {
        let line = first_line(entries, &|key| key.starts_with("health-check."));
        problems.push(Problem::new(line, "health-check: missing cmd"));
    }
    log_problems(&spec, entries, &mut problems);
    match Schedule::from_entries(entries) {
        Ok(schedule) if schedule.is_some() => spec.extras_mut().schedule = schedule,
        Ok(_) => {}
        Err(found) => problems.extend(found),
    }
    activity_complete(&mut spec, entries, &mut problems);
    crate::util::sort_by_key(&mut problems, |p| p.line);
    (spec, problems)
}

/// The line of the first entry whose key is `wanted`; 1 without one.
fn first_line(entries: &[Entry], wanted: &dyn Fn(&str) -> bool) -> usize {
    entries
        .iter()
        .find(|e| wanted(&e.key))
        .map_or(1, |e| e.line)
}

/// `log` takes both stdout and stderr, so neither may go elsewhere; the
/// size and the count of files mean nothing without it.
fn log_problems(spec: &ServiceSpec, entries: &[Entry], problems: &mut Vec<Problem>) {
    let line_of = |key: &str| entries.iter().find(|e| e.key == key).map(|e| e.line);
    if spec.log().is_some() {
        let line = line_of("log").unwrap_or(1);
        for (key, output) in [("stdout", &spec.stdout), ("stderr", &spec.stderr)] {
            if *output != Output::Inherit {
                problems.push(Problem::new(
                    line,
                    format!("log: takes stdout and stderr both; remove {key}"),
                ));
            }
        }
    } else {
        for key in ["log-max-size", "log-keep"] {
            if let Some(line) = line_of(key) {
                problems.push(Problem::new(line, format!("{key}: needs log")));
            }
        }
    }
}

/// `folder` and `inactive-time` come together.
fn activity_complete(spec: &mut ServiceSpec, entries: &[Entry], problems: &mut Vec<Problem>) {
    let Some(check) = &spec.extras().activity else {
        return;
    };
    let missing = if check.folder.as_os_str().is_empty() {
        "folder"
    } else if check.inactive.is_zero() {
        "inactive-time"
    } else {
        return;
    };
    let line = first_line(entries, &|key| {
        key == "health-check.folder" || key == "health-check.inactive-time"
    });
    let why = format!("health-check: missing {missing}");
    problems.push(Problem::new(line, why));
    spec.extras_mut().activity = None;
}

/// Sets what `key` says: `Ok(false)` for no such key; the errors are
/// worded to follow `KEY: `.
fn apply(
    spec: &mut ServiceSpec,
    command: &mut Option<Command>,
    shell: &mut bool,
    key: &str,
    value: &Value,
) -> Result<bool, String> {
    match key {
        "cmd" => {
            *command = Some(match value {
                Value::Text(line) | Value::Str(line) => {
                    if line.trim().is_empty() {
                        return Err("empty command".into());
                    }
                    Command::Line(line.clone())
                }
                Value::List(_) => Command::Words(command_words(value)?),
                other => return Err(expected("a string or an array of strings", other)),
            })
        }
        "shell" => *shell = boolean(value)?,
        "enabled" => spec.enabled = boolean(value)?,
        "critical" => spec.critical = boolean(value)?,
        "before" => spec.extras_mut().before = Some(command_words(value)?),
        "stop" => spec.extras_mut().stop_command = Some(command_words(value)?),
        "on-exit" => spec.extras_mut().on_exit = Some(command_words(value)?),
        "hook-timeout" => spec.extras_mut().hook_timeout = duration(value)?,
        "pid-file" => spec.extras_mut().pid_file = Some(absolute_path(value)?),
        "start-timeout" => spec.extras_mut().start_timeout = duration(value)?,
        "ready-fd" => {
            let fd = int_in(value, 3, 255, Some("is not a descriptor from 3 to 255"))?;
            set_readiness(spec, Readiness::Fd(fd as i32))?;
        }
        "notify" => {
            if boolean(value)? {
                set_readiness(spec, Readiness::Notify)?;
            }
        }
        "ready" => {
            let argv = command_words(value)?;
            let interval = Duration::from_secs(1);
            set_readiness(spec, Readiness::Command { argv, interval })?;
        }
        // It may come before or after `ready`.
        "ready-interval" => {
            let every = duration(value)?;
            match &mut spec.extras_mut().readiness {
                Some(Readiness::Command { interval, .. }) => *interval = every,
                readiness => {
                    *readiness = Some(Readiness::Command {
                        argv: Vec::new(),
                        interval: every,
                    })
                }
            }
        }
        "health-check.cmd" => health(spec).argv = command_words(value)?,
        "health-check.interval" => health(spec).interval = duration(value)?,
        "health-check.timeout" => health(spec).timeout = duration(value)?,
        "health-check.retries" => {
            let outside = Some("is not a count of 1 or more");
            let n = int_in(value, 1, u32::MAX.into(), outside)?;
            health(spec).retries = n as u32;
        }
        "health-check.folder" => activity(spec).folder = absolute_path(value)?,
        "health-check.inactive-time" => {
            let inactive = duration(value)?;
            if inactive.is_zero() {
                return Err("must be longer than 0".into());
            }
            activity(spec).inactive = inactive;
        }
        "health-check" => {
            return Err(match value {
                Value::Text(_) => {
                    "write health-check.cmd=..., health-check.interval=... a line".into()
                }
                other => expected(
                    "a table { cmd, interval, timeout, retries } or { folder, inactive-time }",
                    other,
                ),
            });
        }
        // Read together by `Schedule::from_entries`.
        key if key.starts_with("schedule.") => {}
        "schedule" => {
            return Err(expected(
                "a table [schedule] of start-time, stop-time and week-days",
                value,
            ));
        }
        "user" => spec.user = Some(id(value)?),
        "group" => spec.group = Some(id(value)?),
        "dir" => spec.dir = absolute_path(value)?,
        "chroot" => spec.chroot = Some(absolute_path(value)?),
        "umask" => {
            spec.umask = Some(match value {
                Value::Int(n) if (0..=0o777).contains(n) => *n as u32,
                Value::Int(n) => return Err(format!("{n:#o} is not a umask (0 to 0o777)")),
                Value::Text(text) | Value::Str(text) => values::umask(text)?,
                other => return Err(expected("an octal string like \"022\"", other)),
            })
        }
        "nice" => spec.nice = Some(int_in(value, -20, 19, None)? as i32),
        "log" => spec.log_mut().path = absolute_path(value)?,
        "log-max-size" => {
            spec.log_mut().max_size = match value {
                Value::Int(n) if *n >= 1 => *n as u64,
                Value::Int(n) => return Err(format!("{n} is not a size of 1 byte or more")),
                Value::Text(text) | Value::Str(text) => values::size(text)?,
                other => return Err(expected("a size like \"1M\"", other)),
            }
        }
        "log-keep" => spec.log_mut().keep = int_in(value, 0, MAX_LOG_KEEP.into(), None)? as u32,
        "stdout" => spec.stdout = output(value)?,
        "stderr" => spec.stderr = output(value)?,
        "restart" => {
            spec.restart = match string(value)?.as_str() {
                "always" => Restart::Always,
                "on-failure" => Restart::OnFailure,
                "never" => Restart::Never,
                other => {
                    return Err(format!(
                        "{other:?} is not one of \"always\", \"on-failure\", \"never\""
                    ));
                }
            }
        }
        "leftovers" => {
            spec.extras_mut().keep_leftovers = match string(value)?.as_str() {
                "stop" => false,
                "keep" => true,
                other => return Err(format!("{other:?} is not one of \"stop\", \"keep\"")),
            }
        }
        "stop-signal" => {
            spec.stop_signal = match value {
                Value::Int(n) if (1..=64).contains(n) => *n as i32,
                Value::Int(n) => return Err(format!("{n} is not a signal number")),
                _ => {
                    let name = string(value)?;
                    signals::by_name(&name).ok_or_else(|| format!("unknown signal {name:?}"))?
                }
            }
        }
        "stop-timeout" => spec.stop_timeout = duration(value)?,
        "depends-on" => {
            let names = names(value)?;
            if names.contains(&spec.name) {
                return Err("a service cannot depend on itself".into());
            }
            spec.depends_on = names;
        }
        "groups" => spec.groups = names(value)?,
        "instances" => spec.instances = Some(int_in(value, 1, MAX_INSTANCES.into(), None)? as u32),
        "env" => {
            return Err(match value {
                Value::Text(_) => "write one variable a line, as env.NAME=value".into(),
                other => expected("a table of variables", other),
            });
        }
        _ => {
            let Some(var) = key.strip_prefix("env.") else {
                return Ok(false);
            };
            let text = string(value)?;
            if text.contains('\0') {
                return Err("value contains a NUL byte".into());
            }
            spec.env.push((var.to_string(), text));
        }
    }
    Ok(true)
}

/// Names: a string, a blank-separated list (going format) or an array.
fn names(value: &Value) -> Result<Vec<String>, String> {
    let names: Vec<String> = match value {
        Value::Text(text) => text.split_whitespace().map(String::from).collect(),
        Value::Str(name) => vec![name.clone()],
        Value::List(items) => strings(items)?,
        other => return Err(expected("a name or an array of names", other)),
    };
    match names.iter().find(|n| !super::is_service_name(n)) {
        Some(bad) => Err(format!("{bad:?} is not a name of letters, digits, - and _")),
        None => Ok(names),
    }
}

/// A hook's command: an array as is, a string split as `cmd` is (a hook
/// that needs a shell says `sh -c '...'`).
fn command_words(value: &Value) -> Result<Vec<String>, String> {
    let words = match value {
        Value::Text(line) | Value::Str(line) => values::split_command(line)?,
        Value::List(items) => strings(items)?,
        other => return Err(expected("a string or an array of strings", other)),
    };
    if words.first().is_none_or(|program| program.is_empty()) {
        return Err("empty command".into());
    }
    Ok(words)
}

fn duration(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Int(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        Value::Int(n) => Err(format!("{n} is negative")),
        Value::Text(text) | Value::Str(text) => values::duration(text),
        other => Err(expected("a duration like \"10s\"", other)),
    }
}

fn set_readiness(spec: &mut ServiceSpec, readiness: Readiness) -> Result<(), String> {
    let slot = &mut spec.extras_mut().readiness;
    match (slot.as_mut(), readiness) {
        (None, new) => *slot = Some(new),
        // `ready-interval` came first: it left its interval and no command.
        (Some(Readiness::Command { argv, .. }), Readiness::Command { argv: new, .. })
            if argv.is_empty() =>
        {
            *argv = new
        }
        _ => return Err("only one of ready-fd, notify and ready".into()),
    }
    Ok(())
}

fn health(spec: &mut ServiceSpec) -> &mut HealthCheck {
    spec.extras_mut()
        .health_check
        .get_or_insert_with(|| HealthCheck {
            argv: Vec::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            retries: 3,
        })
}

fn activity(spec: &mut ServiceSpec) -> &mut ActivityCheck {
    spec.extras_mut()
        .activity
        .get_or_insert_with(|| ActivityCheck {
            folder: PathBuf::new(),
            inactive: Duration::ZERO,
        })
}

fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", found.type_name())
}

fn string(value: &Value) -> Result<String, String> {
    match value {
        Value::Text(text) | Value::Str(text) => Ok(text.clone()),
        other => Err(expected("a string", other)),
    }
}

fn strings(items: &[Value]) -> Result<Vec<String>, String> {
    let strings = items.iter().map(string).collect::<Result<_, _>>();
    strings.map_err(|why| format!("{why} in the array"))
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Text(text) => match text.as_str() {
            "true" | "yes" => Ok(true),
            "false" | "no" => Ok(false),
            _ => Err(format!("expected true or false, found {text:?}")),
        },
        other => Err(expected("true or false", other)),
    }
}

fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::Text(text) => text
            .parse()
            .map_err(|_| format!("expected an integer, found {text:?}")),
        other => Err(expected("an integer", other)),
    }
}

/// An integer from `low` to `high`; `outside` words one that is not, by
/// default as out of that range.
fn int_in(value: &Value, low: i64, high: i64, outside: Option<&str>) -> Result<i64, String> {
    let n = integer(value)?;
    if !(low..=high).contains(&n) {
        return Err(match outside {
            Some(why) => format!("{n} {why}"),
            None => format!("{n} is out of range {low}..{high}"),
        });
    }
    Ok(n)
}

fn id(value: &Value) -> Result<Id, String> {
    match value {
        Value::Int(n) => u32::try_from(*n)
            .ok()
            .filter(|&n| n != u32::MAX)
            .map(Id::Number)
            .ok_or_else(|| format!("{n} is not a valid id")),
        Value::Text(text) | Value::Str(text) if !text.is_empty() => Ok(Id::Name(text.clone())),
        Value::Text(_) | Value::Str(_) => Err("empty name".into()),
        other => Err(expected("a name or a number", other)),
    }
}

fn absolute_path(value: &Value) -> Result<PathBuf, String> {
    let text = string(value)?;
    if !text.starts_with('/') || text.contains('\0') {
        return Err(format!("{text:?} is not an absolute path"));
    }
    Ok(PathBuf::from(text))
}

fn output(value: &Value) -> Result<Output, String> {
    let text = string(value)?;
    match text.as_str() {
        "inherit" => Ok(Output::Inherit),
        "null" => Ok(Output::Null),
        "syslog" => Ok(Output::Syslog),
        path if path.starts_with('/') && !path.contains('\0') => {
            Ok(Output::File(PathBuf::from(path)))
        }
        other => Err(format!(
            "{other:?} is not \"inherit\", \"null\" or an absolute path"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Format, parse};
    use super::*;

    fn toml(text: &str) -> Result<ServiceSpec, Vec<Problem>> {
        parse("web", Format::Toml, text)
    }

    fn going(text: &str) -> Result<ServiceSpec, Vec<Problem>> {
        parse("web", Format::Going, text)
    }

    fn problems(result: Result<ServiceSpec, Vec<Problem>>) -> Vec<(usize, String)> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    fn one(line: usize, message: &str) -> Vec<(usize, String)> {
        vec![(line, message.to_string())]
    }

    #[test]
    fn the_legacy_one_liner_works_verbatim() {
        let spec = going("cmd=/usr/bin/salt-minion\n");
        assert_eq!(
            spec,
            Ok(ServiceSpec::new("web", vec!["/usr/bin/salt-minion".into()]))
        );
    }

    #[test]
    fn every_key_in_toml() {
        let text = r#"
cmd = "/bin/server --port 80 'a b'"
user = "www-data"
group = 33
dir = "/srv"
chroot = "/jail"
umask = "027"
nice = 5
stdout = "/var/log/web.log"
stderr = "null"
restart = "on-failure"
stop-signal = "INT"
stop-timeout = "2.5s"
enabled = false
[env]
PORT = "80"
MODE = "prod"
"#;
        let spec = toml(text).unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(spec.argv, ["/bin/server", "--port", "80", "a b"]);
        assert_eq!(spec.user, Some(Id::Name("www-data".into())));
        assert_eq!(spec.group, Some(Id::Number(33)));
        assert_eq!(spec.dir, PathBuf::from("/srv"));
        assert_eq!(spec.chroot, Some(PathBuf::from("/jail")));
        assert_eq!(spec.umask, Some(0o27));
        assert_eq!(spec.nice, Some(5));
        assert_eq!(spec.stdout, Output::File("/var/log/web.log".into()));
        assert_eq!(spec.stderr, Output::Null);
        assert_eq!(spec.restart, Restart::OnFailure);
        assert_eq!(spec.stop_signal, libc::SIGINT);
        assert_eq!(spec.stop_timeout, Duration::from_millis(2500));
        assert!(!spec.enabled);
        assert_eq!(
            spec.env,
            [("PORT".into(), "80".into()), ("MODE".into(), "prod".into())]
        );
    }

    #[test]
    fn every_key_in_the_going_format() {
        let text = "cmd=/bin/server --port 80\nuser=www-data\ngroup=33\ndir=/srv\numask=027\n\
                    nice=-5\nstdout=/var/log/web.log\nrestart=never\nstop-signal=SIGQUIT\n\
                    stop-timeout=2\nenabled=no\nshell=false\nenv.A=x y\n";
        let spec = going(text).unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(spec.argv, ["/bin/server", "--port", "80"]);
        assert_eq!(spec.group, Some(Id::Name("33".into())));
        assert_eq!(spec.umask, Some(0o27));
        assert_eq!(spec.nice, Some(-5));
        assert_eq!(spec.restart, Restart::Never);
        assert_eq!(spec.stop_signal, libc::SIGQUIT);
        assert_eq!(spec.stop_timeout, Duration::from_secs(2));
        assert!(!spec.enabled);
        assert_eq!(spec.env, [("A".into(), "x y".into())]);
    }

    #[test]
    fn shell_wraps_the_string() {
        let spec = toml("cmd = \"echo $HOME | tr a b\"\nshell = true\n").map(|s| s.argv);
        assert_eq!(
            spec,
            Ok(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo $HOME | tr a b".into()
            ])
        );
        assert_eq!(
            problems(toml("cmd = [\"a\"]\nshell = true\n")),
            one(1, "cmd: with shell = true, cmd must be a string")
        );
    }

    #[test]
    fn defaults() {
        let spec = toml("cmd = [\"/bin/true\"]").unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(spec, ServiceSpec::new("web", vec!["/bin/true".into()]));
        assert_eq!(spec.stop_timeout, Duration::from_secs(10));
        assert_eq!(spec.dir, PathBuf::from("/"));
    }

    #[test]
    fn comments_and_layout_do_not_change_the_definition() {
        let a = toml("cmd = \"/bin/sleep 1\"\nstop-timeout = 2\n");
        let b = toml("# comment\n\nstop-timeout = \"2s\"\ncmd = [ \"/bin/sleep\", \"1\" ]\n");
        assert!(a.is_ok());
        assert_eq!(a, b);
    }

    #[test]
    fn every_error_message() {
        assert_eq!(
            problems(toml("")),
            one(1, "missing cmd: every service needs one")
        );
        assert_eq!(
            problems(going("# nothing\n")),
            one(1, "missing cmd: every service needs one")
        );
        assert_eq!(problems(going("cmd=\n")), one(1, "cmd: empty command"));
        assert_eq!(problems(toml("cmd = []")), one(1, "cmd: empty command"));
        assert_eq!(
            problems(toml("cmd = [1]")),
            one(1, "cmd: expected a string, found integer in the array")
        );
        assert_eq!(
            problems(toml("cmd = 5")),
            one(
                1,
                "cmd: expected a string or an array of strings, found integer"
            )
        );
        assert_eq!(
            problems(going("cmd=echo 'x\n")),
            one(1, "cmd: unterminated ' quote")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nfoo = 1\n")),
            one(2, "unknown key \"foo\"")
        );
        assert_eq!(
            problems(going("cmd=x\ncmd=y\n")),
            one(2, "duplicate key \"cmd\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nshell = 1\n")),
            one(2, "shell: expected true or false, found integer")
        );
        assert_eq!(
            problems(going("cmd=x\nenabled=maybe\n")),
            one(2, "enabled: expected true or false, found \"maybe\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nnice = 20\n")),
            one(2, "nice: 20 is out of range -20..19")
        );
        assert_eq!(
            problems(going("cmd=x\nnice=low\n")),
            one(2, "nice: expected an integer, found \"low\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nnice = \"1\"\n")),
            one(2, "nice: expected an integer, found string")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\numask = 0o1000\n")),
            one(2, "umask: 0o1000 is not a umask (0 to 0o777)")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\numask = true\n")),
            one(
                2,
                "umask: expected an octal string like \"022\", found boolean"
            )
        );
        assert_eq!(
            problems(going("cmd=x\numask=99\n")),
            one(
                2,
                "umask: bad umask \"99\": expected octal digits like \"022\""
            )
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nuser = -1\n")),
            one(2, "user: -1 is not a valid id")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\ngroup = \"\"\n")),
            one(2, "group: empty name")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nuser = 1.5\n")),
            one(2, "user: expected a name or a number, found float")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\ndir = \"srv\"\n")),
            one(2, "dir: \"srv\" is not an absolute path")
        );
        assert_eq!(
            problems(going("cmd=x\nchroot=jail\n")),
            one(2, "chroot: \"jail\" is not an absolute path")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nstdout = \"log.txt\"\n")),
            one(
                2,
                "stdout: \"log.txt\" is not \"inherit\", \"null\" or an absolute path"
            )
        );
        assert_eq!(
            toml("cmd = \"x\"\nstderr = \"syslog\"\n").map(|s| s.stderr),
            Ok(Output::Syslog)
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nrestart = \"sometimes\"\n")),
            one(
                2,
                "restart: \"sometimes\" is not one of \"always\", \"on-failure\", \"never\""
            )
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nstop-signal = \"TERMINATE\"\n")),
            one(2, "stop-signal: unknown signal \"TERMINATE\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nstop-signal = 99\n")),
            one(2, "stop-signal: 99 is not a signal number")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nstop-timeout = \"10 parsecs\"\n")),
            one(
                2,
                "stop-timeout: bad duration \"10 parsecs\": unit must be ms, s, m or h"
            )
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nstop-timeout = -3\n")),
            one(2, "stop-timeout: -3 is negative")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nstop-timeout = false\n")),
            one(
                2,
                "stop-timeout: expected a duration like \"10s\", found boolean"
            )
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nenv = \"A=1\"\n")),
            one(2, "env: expected a table of variables, found string")
        );
        assert_eq!(
            problems(going("cmd=x\nenv=A=1\n")),
            one(2, "env: write one variable a line, as env.NAME=value")
        );
        assert_eq!(
            problems(going("cmd=x\nenv.=1\n")),
            one(2, "env: bad variable name \"\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\n[env]\nA = [1]\n")),
            one(3, "env.A: expected a string, found array")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nenv = { A = 1 }\n")),
            problems(toml("cmd = \"x\"\nenv.A = 1\n"))
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\n[env]\nA = 1\nB = true\nC = \"ok\"\n")),
            [
                (3, "env.A: expected a string, found integer".to_string()),
                (4, "env.B: expected a string, found boolean".to_string()),
            ]
        );
        assert_eq!(
            problems(going("cmd=x\njunk\n")),
            one(2, "expected key=value")
        );
    }

    #[test]
    fn hooks_and_health_checks() {
        let text = "cmd = \"x\"\nbefore = \"/bin/mkdir -p /run/x\"\nstop = [\"/bin/kill\", \"-USR2\", \"1\"]\non-exit = \"/bin/notify 'it ended'\"\nhook-timeout = \"5s\"\nhealth-check = { cmd = \"/bin/check\", interval = \"2s\", timeout = 1, retries = 2 }\n";
        let spec = toml(text).unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(
            spec.extras().before,
            Some(vec!["/bin/mkdir".into(), "-p".into(), "/run/x".into()])
        );
        assert_eq!(
            spec.extras().stop_command,
            Some(vec!["/bin/kill".into(), "-USR2".into(), "1".into()])
        );
        assert_eq!(
            spec.extras().on_exit,
            Some(vec!["/bin/notify".into(), "it ended".into()])
        );
        assert_eq!(spec.extras().hook_timeout, Duration::from_secs(5));
        let expected = HealthCheck {
            argv: vec!["/bin/check".into()],
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            retries: 2,
        };
        assert_eq!(spec.extras().health_check, Some(expected.clone()));
        let legacy = going(
            "cmd=x\nhealth-check.cmd=/bin/check\nhealth-check.interval=2s\nhealth-check.timeout=1\nhealth-check.retries=2\n",
        );
        assert_eq!(
            legacy.map(|s| s.extras().health_check.clone()),
            Ok(Some(expected))
        );
        let table = toml("cmd = \"x\"\n[health-check]\ncmd = \"/bin/check\"\n").map(|s| {
            s.extras()
                .health_check
                .clone()
                .map(|h| (h.interval, h.retries))
        });
        assert_eq!(table, Ok(Some((Duration::from_secs(30), 3))));
        assert_eq!(
            problems(toml("cmd = \"x\"\nhealth-check = { interval = 1 }\n")),
            one(2, "health-check: missing cmd")
        );
        assert_eq!(
            problems(toml(
                "cmd = \"x\"\nhealth-check = { cmd = \"c\", retries = 0 }\n"
            )),
            one(2, "health-check.retries: 0 is not a count of 1 or more")
        );
        assert_eq!(
            problems(toml(
                "cmd = \"x\"\nhealth-check = { cmd = \"c\", every = 1 }\n"
            )),
            one(2, "unknown key \"health-check.every\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nbefore = []\n")),
            one(2, "before: empty command")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nhealth-check = \"c\"\n")),
            one(
                2,
                "health-check: expected a table { cmd, interval, timeout, retries } or { folder, inactive-time }, found string"
            )
        );
    }

    #[test]
    fn activity_checks() {
        let text =
            "cmd = \"x\"\nhealth-check = { folder = \"/var/spool/app\", inactive-time = \"2m\" }\n";
        let expected = ActivityCheck {
            folder: PathBuf::from("/var/spool/app"),
            inactive: Duration::from_secs(120),
        };
        let check = |r: Result<ServiceSpec, Vec<Problem>>| r.map(|s| s.extras().activity.clone());
        assert_eq!(check(toml(text)), Ok(Some(expected.clone())));
        let legacy = "cmd=x\nhealth-check.folder=/var/spool/app\nhealth-check.inactive-time=2m\n";
        assert_eq!(check(going(legacy)), Ok(Some(expected)));
        // The command form stays as it was, beside it or alone.
        let both =
            "cmd = \"x\"\n[health-check]\ncmd = \"c\"\nfolder = \"/tmp\"\ninactive-time = 5\n";
        let spec = toml(both).map(|s| {
            (
                s.extras().health_check.is_some(),
                s.extras().activity.is_some(),
            )
        });
        assert_eq!(spec, Ok((true, true)));
        assert_eq!(
            problems(toml("cmd = \"x\"\nhealth-check = { folder = \"/tmp\" }\n")),
            one(2, "health-check: missing inactive-time")
        );
        assert_eq!(
            problems(toml(
                "cmd = \"x\"\nhealth-check = { inactive-time = \"1m\" }\n"
            )),
            one(2, "health-check: missing folder")
        );
        assert_eq!(
            problems(toml(
                "cmd = \"x\"\nhealth-check = { folder = \"spool\", inactive-time = 0 }\n"
            )),
            [
                (
                    2,
                    "health-check.folder: \"spool\" is not an absolute path".to_string()
                ),
                (
                    2,
                    "health-check.inactive-time: must be longer than 0".to_string()
                ),
            ]
        );
    }

    #[test]
    fn schedules() {
        let text = "cmd = \"x\"\n[schedule]\nstart-time = \"08:00\"\nstop-time = \"18:00:00\"\nweek-days = [\"mon\", \"wed\"]\n";
        let expected = Schedule {
            start: 8 * 3600,
            stop: 18 * 3600,
            week_days: 0b101,
        };
        let schedule = |r: Result<ServiceSpec, Vec<Problem>>| r.map(|s| s.extras().schedule);
        assert_eq!(schedule(toml(text)), Ok(Some(expected)));
        assert_eq!(schedule(toml("cmd = \"x\"\n")), Ok(None));
        let legacy = "cmd=x\nschedule.start-time=08:00\nschedule.stop-time=18:00\nschedule.week-days=mon,wed\n";
        assert_eq!(schedule(going(legacy)), Ok(Some(expected)));
        assert_eq!(
            problems(toml("cmd = \"x\"\n[schedule]\nstart-time = \"8h\"\nweek-days = \"mon-fry\"\n")),
            [
                (3, "schedule.start-time: bad time \"8h\": expected HH:MM:SS".to_string()),
                (4, "schedule.week-days: bad week day \"fry\": use mon, tue, wed, thu, fri, sat or sun".to_string()),
            ]
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\n[schedule]\nstart-time = 08:00:00\n")),
            one(
                3,
                "schedule.start-time: write the time as a string: \"08:00:00\""
            )
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nschedule = \"mon\"\n")),
            one(
                2,
                "schedule: expected a table [schedule] of start-time, stop-time and week-days, found string"
            )
        );
    }

    #[test]
    fn pid_files() {
        let spec =
            toml("cmd = \"/usr/sbin/daemon\"\npid-file = \"/run/d.pid\"\nstart-timeout = \"5s\"\n");
        let spec = spec.unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(spec.extras().pid_file, Some(PathBuf::from("/run/d.pid")));
        assert_eq!(spec.extras().start_timeout, Duration::from_secs(5));
        assert_eq!(
            problems(going("cmd=x\npid-file=d.pid\n")),
            one(2, "pid-file: \"d.pid\" is not an absolute path")
        );
    }

    #[test]
    fn log_files() {
        let spec =
            toml("cmd = \"x\"\nlog = \"/var/log/x.log\"\nlog-max-size = \"512k\"\nlog-keep = 0\n");
        assert_eq!(
            spec.map(|s| s.log().cloned()),
            Ok(Some(LogSpec {
                path: "/var/log/x.log".into(),
                max_size: 512 * 1024,
                keep: 0
            }))
        );
        let spec = going("cmd=x\nlog=/l\nlog-max-size=4096\n");
        assert_eq!(
            spec.map(|s| s.log().map(|l| (l.max_size, l.keep))),
            Ok(Some((4096, DEFAULT_LOG_KEEP)))
        );
        assert_eq!(
            toml("cmd = \"x\"\nlog = \"/l\"\n").map(|s| s.log().map(|l| l.max_size)),
            Ok(Some(1024 * 1024))
        );
        for (text, line, message) in [
            (
                "log = \"x.log\"",
                2,
                "log: \"x.log\" is not an absolute path",
            ),
            ("log-keep = 101", 3, "log-keep: 101 is out of range 0..100"),
            (
                "log-max-size = 0",
                3,
                "log-max-size: 0 is not a size of 1 byte or more",
            ),
            (
                "log-max-size = \"1 MB\"",
                3,
                "log-max-size: bad size \"1 MB\": expected bytes, or a number with k, M or G like \"512k\"",
            ),
            (
                "log-max-size = true",
                3,
                "log-max-size: expected a size like \"1M\", found boolean",
            ),
        ] {
            let log = if line == 3 { "log = \"/l\"\n" } else { "" };
            assert_eq!(
                problems(toml(&format!("cmd = \"x\"\n{log}{text}\n"))),
                one(line, message)
            );
        }
        assert_eq!(
            problems(toml("cmd = \"x\"\nlog-keep = 2\nlog-max-size = 10\n")),
            [
                (2, "log-keep: needs log".to_string()),
                (3, "log-max-size: needs log".to_string()),
            ]
        );
        assert_eq!(
            problems(going("cmd=x\nstderr=null\nlog=/l\nstdout=/o\n")),
            [
                (
                    3,
                    "log: takes stdout and stderr both; remove stdout".to_string()
                ),
                (
                    3,
                    "log: takes stdout and stderr both; remove stderr".to_string()
                ),
            ]
        );
    }

    #[test]
    fn readiness_one_way_at_a_time() {
        assert_eq!(
            toml("cmd = \"x\"\nready-fd = 3\n").map(|s| s.extras().readiness.clone()),
            Ok(Some(Readiness::Fd(3)))
        );
        assert_eq!(
            going("cmd=x\nnotify=true\n").map(|s| s.extras().readiness.clone()),
            Ok(Some(Readiness::Notify))
        );
        let polled = Readiness::Command {
            argv: vec!["/bin/check".into()],
            interval: Duration::from_millis(200),
        };
        assert_eq!(
            toml("cmd = \"x\"\nready-interval = \"200ms\"\nready = \"/bin/check\"\n")
                .map(|s| s.extras().readiness.clone()),
            Ok(Some(polled.clone()))
        );
        assert_eq!(
            toml("cmd = \"x\"\nready = \"/bin/check\"\nready-interval = \"200ms\"\n")
                .map(|s| s.extras().readiness.clone()),
            Ok(Some(polled))
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nready-fd = 1\n")),
            one(2, "ready-fd: 1 is not a descriptor from 3 to 255")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nready-fd = 3\nnotify = true\n")),
            one(3, "notify: only one of ready-fd, notify and ready")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nready-interval = 1\n")),
            one(2, "ready-interval: needs a ready command")
        );
    }

    #[test]
    fn critical_is_a_boolean() {
        assert_eq!(
            toml("cmd = \"x\"\ncritical = true\n").map(|s| s.critical),
            Ok(true)
        );
        assert_eq!(going("cmd=x\ncritical=yes\n").map(|s| s.critical), Ok(true));
        assert_eq!(
            problems(toml("cmd = \"x\"\ncritical = 1\n")),
            one(2, "critical: expected true or false, found integer")
        );
    }

    #[test]
    fn leftovers_stop_or_keep() {
        let keep = |s: ServiceSpec| s.extras().keep_leftovers;
        assert_eq!(toml("cmd = \"x\"\n").map(keep), Ok(false));
        assert_eq!(
            toml("cmd = \"x\"\nleftovers = \"stop\"\n").map(keep),
            Ok(false)
        );
        assert_eq!(
            toml("cmd = \"x\"\nleftovers = \"keep\"\n").map(keep),
            Ok(true)
        );
        assert_eq!(going("cmd=x\nleftovers=keep\n").map(keep), Ok(true));
        assert_eq!(
            problems(toml("cmd = \"x\"\nleftovers = \"kill\"\n")),
            one(2, "leftovers: \"kill\" is not one of \"stop\", \"keep\"")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\nleftovers = true\n")),
            one(2, "leftovers: expected a string, found boolean")
        );
    }

    #[test]
    fn groups_and_instances() {
        let spec = toml("cmd = \"x\"\ngroups = [\"web\", \"edge\"]\ninstances = 3\n");
        let spec = spec.unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(spec.groups, ["web", "edge"]);
        assert_eq!(spec.instances, Some(3));
        let spec = going("cmd=x\ngroups=web edge\ninstances=2\n");
        let spec = spec.unwrap_or_else(|_| ServiceSpec::new("x", vec![]));
        assert_eq!(spec.groups, ["web", "edge"]);
        assert_eq!(spec.instances, Some(2));
        let one = toml("cmd = \"x\"\ngroups = \"web\"\n").map(|s| s.groups);
        assert_eq!(one, Ok(vec!["web".to_string()]));
        assert_eq!(
            problems(toml("cmd = \"x\"\ninstances = 0\n")),
            one_problem(2, "instances: 0 is out of range 1..1000")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\ninstances = \"2\"\n")),
            one_problem(2, "instances: expected an integer, found string")
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\ngroups = [\"a b\"]\n")),
            one_problem(
                2,
                "groups: \"a b\" is not a name of letters, digits, - and _"
            )
        );
        assert_eq!(
            problems(toml("cmd = \"x\"\ngroups = 1\n")),
            one_problem(
                2,
                "groups: expected a name or an array of names, found integer"
            )
        );
    }

    fn one_problem(line: usize, message: &str) -> Vec<(usize, String)> {
        one(line, message)
    }

    #[test]
    fn a_bad_line_of_the_going_format_hides_nothing_after_it() {
        assert_eq!(
            problems(going("cmd=x\njunk\nnice=99\nmore junk\nbogus=1\n")),
            [
                (2, "expected key=value".to_string()),
                (3, "nice: 99 is out of range -20..19".to_string()),
                (4, "expected key=value".to_string()),
                (5, "unknown key \"bogus\"".to_string()),
            ]
        );
    }

    #[test]
    fn a_toml_syntax_error_is_the_whole_answer() {
        assert_eq!(
            problems(toml("nice = 99\ncmd = \"x\"\ncmd = \"y\"\n")),
            one(3, "TOML syntax: duplicate key \"cmd\"")
        );
    }

    #[test]
    fn all_problems_are_reported_in_line_order() {
        let got = problems(toml("nice = 99\nfoo = 1\nstop-signal = \"NOPE\"\n"));
        let lines: Vec<usize> = got.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [1, 1, 2, 3]);
        assert!(
            got.iter()
                .any(|(_, m)| m == "missing cmd: every service needs one")
        );
    }
}
