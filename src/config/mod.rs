//! Service files: which directory entries are services, reading one
//! service's file in either format, and the definition it yields
//! ([`ServiceSpec`]). Reads only the file it is given; users, groups and
//! paths named inside are resolved later, by whoever starts the service.

pub mod calendar;
pub mod compose;
pub mod going_format;
pub mod procfile;
mod spec;
pub mod template;
pub mod toml_format;
pub mod values;
pub mod versions;

use crate::util::{Fnv, describe_io};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(test)]
pub use spec::HealthCheck;
pub use spec::{
    ActivityCheck, Id, LogSpec, MAX_INSTANCES, Output, Readiness, Restart, ServiceSpec,
    VersionState,
};

/// A file's contents bigger than this are refused rather than read:
/// service files are a few lines, and going's memory is bounded.
pub const MAX_FILE_SIZE: u64 = 64 * 1024;

/// The two ways a service can be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `NAME.toml`
    Toml,
    /// `NAME`, the original going's `key=value` lines.
    Going,
}

/// One thing wrong with a file, at a line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
    /// The line is this file's (a template's), not the one reported.
    pub within: Option<PathBuf>,
}

impl Problem {
    pub fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            line,
            message: message.into(),
            within: None,
        }
    }
}

/// A value as a file wrote it, before it is read as its key's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Raw text of the going format, read as whatever type the key wants.
    Text(String),
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    /// A TOML date-time, as written (`apply-on`).
    Datetime(String),
    /// A TOML value of a type no key takes (float, table, ...).
    Other(&'static str),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) | Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Bool(_) => "boolean",
            Value::List(_) => "array",
            Value::Datetime(_) => "datetime",
            Value::Other(name) => name,
        }
    }
}

/// One `key = value` of a file, with its line. An `env` table arrives as
/// one entry a variable, keyed `env.NAME`.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub line: usize,
    pub value: Value,
}

/// What a service's file says, as going acts on it.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, one at a time
pub enum Loaded {
    /// No file defines the service (any more).
    Missing,
    /// The file exists but cannot be used; nothing may change because of it.
    Broken {
        file: PathBuf,
        problems: Vec<Problem>,
        /// It could not be read for want of a resource (descriptors,
        /// memory), not because of what it says: worth reading again later.
        retry: bool,
    },
    Ok(ServiceSpec, Origin),
}

/// Where a definition came from: its file and the line of each key, kept
/// apart from [`ServiceSpec`] so that moving a line restarts nothing.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub file: PathBuf,
    pub key_lines: Vec<(String, usize)>,
    /// FNV-1a of the file's text (and its template's): what the state
    /// file records, so that a file changed while no going ran is noticed
    /// by the next one.
    pub fingerprint: u64,
    /// The template file the definition started from.
    pub template: Option<PathBuf>,
}

impl Origin {
    pub fn line_of(&self, key: &str) -> usize {
        self.key_lines
            .iter()
            .find(|(k, _)| k == key)
            .map_or(1, |&(_, line)| line)
    }

    /// A problem with the key `key`, at its line in whichever file set it.
    pub fn problem(&self, key: &str, message: String) -> Problem {
        let mut problem = Problem::new(self.line_of(key), message);
        self.locate(&mut problem);
        problem
    }

    /// Moves a problem at a template's line to that file.
    fn locate(&self, problem: &mut Problem) {
        if problem.line >= compose::TEMPLATE_LINES {
            problem.line -= compose::TEMPLATE_LINES;
            problem.within.clone_from(&self.template);
        }
    }
}

/// `file:line: message`, the form of every configuration error.
pub struct Located<'a>(pub &'a Path, pub &'a Problem);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Located(file, problem) = self;
        write!(f, "{}", file.display())?;
        if let Some(within) = &problem.within {
            write!(f, ": {}", within.display())?;
        }
        write!(f, ":{}: {}", problem.line, problem.message)
    }
}

/// The service a directory entry defines, if any: `web.toml` and `web` both
/// define `web`; dotfiles, `web~`, `web.swp`, `web.dpkg-new`, `Procfile`
/// (whose lines do) and every other name define nothing.
pub fn classify(file_name: &str) -> Option<(&str, Format)> {
    if file_name == PROCFILE {
        return None;
    }
    let (name, format) = match file_name.strip_suffix(".toml") {
        Some(name) => (name, Format::Toml),
        None => (file_name, Format::Going),
    };
    is_service_name(name).then_some((name, format))
}

pub const PROCFILE: &str = "Procfile";
pub const DOT_ENV: &str = ".env";
pub const TEMPLATE_SUFFIX: &str = ".template";

/// The name a change of this directory entry is about: a service's name,
/// or the file's own name for `Procfile`, `.env` and `NAME.template`.
pub fn watched(file_name: &str) -> Option<&str> {
    if let Some((name, _)) = classify(file_name) {
        return Some(name);
    }
    let template = file_name
        .strip_suffix(TEMPLATE_SUFFIX)
        .is_some_and(is_service_name);
    (template || file_name == PROCFILE || file_name == DOT_ENV).then_some(file_name)
}

pub fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The names of every service the directory defines: sorted, no name twice.
pub fn service_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some((name, _)) = entry?.file_name().to_str().and_then(classify) {
            names.push(name.to_string());
        }
    }
    if let Some(procfile) = compose::read_procfile(dir) {
        names.extend(procfile.lines.into_iter().map(|line| line.name));
    }
    crate::util::sort(&mut names);
    names.dedup();
    Ok(names)
}

/// The file that defines service `name` in `dir`, as status names it
/// (a look at the directory, no read).
pub fn file_of(dir: &Path, name: &str) -> Option<PathBuf> {
    let toml = dir.join(format!("{name}.toml"));
    let going = dir.join(name);
    [toml, going].into_iter().find(|path| path.exists())
}

/// A file and its first problem.
pub type FirstProblem = (PathBuf, Problem);

/// The names a `Procfile` in `dir` defines, and whether it (or `.env`)
/// has problems: `None` without a Procfile.
pub fn procfile_names(dir: &Path) -> Option<(Vec<String>, Option<FirstProblem>)> {
    let procfile = compose::read_procfile(dir)?;
    let broken = procfile
        .broken
        .and_then(|(file, problems)| Some((file, problems.into_iter().next()?)));
    let names = procfile.lines.into_iter().map(|line| line.name).collect();
    Some((names, broken))
}

/// Reads the service `name` from `dir`, whichever format defines it.
pub fn load(dir: &Path, name: &str) -> Loaded {
    load_noting(dir, name).0
}

/// [`load`], and the name of the template the file names, if any (even
/// when it cannot be used: its return may fix the file).
pub fn load_noting(dir: &Path, name: &str) -> (Loaded, Option<String>) {
    match examine(dir, name) {
        None => (Loaded::Missing, None),
        Some(found) if found.problems.is_empty() => {
            (Loaded::Ok(found.spec, found.origin), found.template)
        }
        Some(found) => (
            Loaded::Broken {
                file: found.origin.file,
                problems: found.problems,
                retry: found.retry,
            },
            found.template,
        ),
    }
}

/// A service's file as `going check` sees it: every problem, and beside
/// them what the file's good lines say.
pub struct Examined {
    /// With problems, only what the good entries set: never to be run.
    pub spec: ServiceSpec,
    pub origin: Origin,
    /// In line order; none when the file can be used.
    pub problems: Vec<Problem>,
    /// See [`Loaded::Broken`].
    pub retry: bool,
    /// The template the file names.
    pub template: Option<String>,
    /// The definition in effect as entries (templates resolved, version
    /// merged), for `going expand`.
    pub entries: Vec<Entry>,
}

/// Reads the service `name` from `dir`, whichever file defines it (its
/// own, or a Procfile line); `None` when none does. A name both files
/// define is refused, as `web` beside `web.toml` is.
pub fn examine(dir: &Path, name: &str) -> Option<Examined> {
    let own = examine_file(dir, name);
    let procfile = compose::read_procfile(dir);
    let Some((procfile, line)) = procfile.as_ref().and_then(|p| Some((p, p.line(name)?))) else {
        return own;
    };
    if let Some(own) = own {
        let own = own.origin.file.display();
        let problem = Problem::new(line.line, format!("{name}: defined here and by {own} too"));
        return Some(refused(name, procfile.path.clone(), problem));
    }
    let (file, problems) = match &procfile.broken {
        Some((file, problems)) => (file.clone(), problems.clone()),
        None => (procfile.path.clone(), Vec::new()),
    };
    let spec = procfile.spec(line);
    let entry = |key: String, value| Entry {
        key,
        line: line.line,
        value,
    };
    let mut entries = vec![
        entry("cmd".into(), Value::Str(line.command.clone())),
        entry("shell".into(), Value::Bool(true)),
    ];
    let env = spec.env.iter();
    entries.extend(env.map(|(k, v)| entry(format!("env.{k}"), Value::Str(v.clone()))));
    Some(Examined {
        origin: Origin {
            file,
            key_lines: vec![("cmd".into(), line.line)],
            fingerprint: procfile.fingerprint(line),
            template: None,
        },
        spec,
        problems,
        retry: false,
        template: None,
        entries,
    })
}

fn refused(name: &str, file: PathBuf, problem: Problem) -> Examined {
    Examined {
        spec: nothing(name),
        origin: Origin {
            file,
            ..Origin::default()
        },
        problems: vec![problem],
        retry: false,
        template: None,
        entries: Vec::new(),
    }
}

/// The service `name`'s own file, `NAME.toml` or `NAME`.
fn examine_file(dir: &Path, name: &str) -> Option<Examined> {
    let toml_path = dir.join(format!("{name}.toml"));
    let going_path = dir.join(name);
    let toml_text = read_service_file(&toml_path);
    let going_text = read_service_file(&going_path);
    let refused = |file: PathBuf, why: String| Some(refused(name, file, Problem::new(1, why)));
    let (format, file, text) = match (toml_text, going_text) {
        (None, None) => return None,
        (Some(_), _) | (_, Some(_)) if let Some(why) = untrusted(dir, "directory") => {
            let file = if toml_path.exists() {
                toml_path
            } else {
                going_path
            };
            return refused(file, why);
        }
        // An error (an unreadable directory fails both) is what to report.
        (Some(text @ Err(_)), _) | (Some(text), None) => (Format::Toml, toml_path, text),
        (_, Some(text @ Err(_))) | (None, Some(text)) => (Format::Going, going_path, text),
        (Some(_), Some(_)) => {
            let why = format!("duplicate service {name}: both {name} and {name}.toml exist");
            return refused(toml_path, why);
        }
    };
    let mut used = compose::Used::default();
    let (spec, entries, mut problems) = match &text {
        Ok(text) => read(Some(dir), name, format, text, wall_now(), &mut used),
        Err(err) => {
            let message = match err.kind() {
                io::ErrorKind::PermissionDenied if err.raw_os_error().is_none() => err.to_string(),
                _ => format!("cannot read: {}", describe_io(err)),
            };
            (nothing(name), Vec::new(), vec![Problem::new(1, message)])
        }
    };
    let fingerprint = text
        .as_ref()
        .map_or(0, |text| Fnv(used.fingerprint).feed(text.as_bytes()).0);
    let origin = Origin {
        file,
        key_lines: entries.iter().map(|e| (e.key.clone(), e.line)).collect(),
        fingerprint,
        template: used.path,
    };
    for problem in &mut problems {
        origin.locate(problem);
    }
    Some(Examined {
        spec,
        origin,
        problems,
        retry: text.as_ref().is_err_and(is_transient),
        template: used.name,
        entries,
    })
}

/// The UNIX time now, by the wall clock.
pub fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The definition of a file that gives none: its name, no command.
fn nothing(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, Vec::new())
}

/// A file's text as the definition in effect at `now` (a UNIX time), as
/// a spec and as entries, and every problem, in line order: the file's,
/// its template's (at lines past [`compose::TEMPLATE_LINES`]) and every
/// version's merge, future and fake ones included. A TOML syntax error is the whole
/// answer: what the crate read up to it is not a document.
fn read(
    dir: Option<&Path>,
    name: &str,
    format: Format,
    text: &str,
    now: i64,
    used: &mut compose::Used,
) -> (ServiceSpec, Vec<Entry>, Vec<Problem>) {
    let (entries, mut problems) = match format {
        Format::Toml => match toml_format::entries(text) {
            Ok(entries) => (entries, Vec::new()),
            Err(problems) => return (nothing(name), Vec::new(), problems),
        },
        Format::Going => going_format::entries(text),
    };
    let entries = match compose::apply_template(dir, entries, used) {
        Ok(entries) => entries,
        Err(more) => {
            problems.extend(more);
            return (nothing(name), Vec::new(), problems);
        }
    };
    let split = versions::split(entries);
    let versioned = split.apply_on.is_some() || !split.versions.is_empty();
    problems.extend(split.problems.iter().cloned());
    let (top, top_problems) = spec::build(name, &split.top);
    for version in &split.versions {
        let merged = versions::merge(&split.top, &version.entries);
        let (_, more) = spec::build(name, &merged);
        let own_line = |line: usize| version.entries.iter().any(|e| e.line == line);
        for mut problem in more.into_iter().filter(|p| !top_problems.contains(p)) {
            if !own_line(problem.line) {
                problem.message = format!(
                    "with the version on line {}: {}",
                    version.line, problem.message
                );
            }
            problems.push(problem);
        }
    }
    problems.extend(top_problems);
    crate::util::sort_by_key(&mut problems, |p| p.line);
    let effect = versions::effect(&split, now);
    let in_effect = effect.version.and_then(|i| split.versions.get(i));
    let (mut spec, entries) = match in_effect {
        Some(version) => {
            let merged = versions::merge(&split.top, &version.entries);
            (spec::build(name, &merged).0, merged)
        }
        None => (top, split.top),
    };
    if versioned {
        spec.extras_mut().versions = Some(VersionState {
            current: in_effect.and_then(|v| v.apply_on),
            pending: effect.pending,
            next: effect.next,
        });
        if effect.pending {
            spec.enabled = false;
        }
    }
    (spec, entries, problems)
}

/// An error that says "not now" rather than "not this file": going, or the
/// system, is out of descriptors or memory.
pub fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EAGAIN | libc::EINTR
        )
    )
}

/// `None` when nothing, or a directory, is at `path`. Nothing read here
/// may block the loop or cost more than [`MAX_FILE_SIZE`]: the file is
/// opened without blocking (a FIFO renamed onto it after a look at the
/// path must not hang going), and what is judged and read is what was
/// opened.
pub(crate) fn read_service_file(path: &Path) -> Option<io::Result<String>> {
    read_regular_file(path).transpose()
}

fn read_regular_file(path: &Path) -> io::Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // PermissionDenied without an errno: logged as it is (see `examine_file`).
    let refused = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    let not_regular = || refused("refused: not a regular file".into());
    // A look first, so that a device or FIFO left there is not even opened.
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(None),
        Ok(meta) if !meta.is_file() => return not_regular(),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return not_regular();
    }
    // Their files say they are empty and never end (/proc/kmsg) or hold
    // hundreds of megabytes (/proc/self/pagemap): not service files.
    if let Some(fs) = pseudo_file_system(&file) {
        return refused(format!("refused: a {fs} file, not a service file"));
    }
    if let Some(why) = untrusted_meta(&meta, path, "file") {
        return refused(why);
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_SIZE) as usize + 1);
    let mut limited = file.take(MAX_FILE_SIZE + 1);
    // Not worth a retry: the same file would fail the same way.
    limited
        .read_to_end(&mut bytes)
        .map_err(|err| io::Error::other(describe_io(&err)))?;
    file_text(bytes).map(Some)
}

/// The kernel's own file system `file` is on, if it is one.
fn pseudo_file_system(file: &std::fs::File) -> Option<&'static str> {
    use nix::sys::statfs;
    let kind = statfs::fstatfs(file).ok()?.filesystem_type();
    [
        (statfs::PROC_SUPER_MAGIC, "procfs"),
        (statfs::SYSFS_MAGIC, "sysfs"),
        (statfs::DEBUGFS_MAGIC, "debugfs"),
        (statfs::TRACEFS_MAGIC, "tracefs"),
        (statfs::SECURITYFS_MAGIC, "securityfs"),
    ]
    .into_iter()
    .find_map(|(magic, name)| (magic == kind).then_some(name))
}

/// Why going, running as root, must not read `path`: anyone who can write
/// to a service file or its directory would run commands as root. `None`
/// when going is not root, or `path` is root's alone.
fn untrusted(path: &Path, what: &str) -> Option<String> {
    untrusted_meta(&std::fs::metadata(path).ok()?, path, what)
}

fn untrusted_meta(meta: &std::fs::Metadata, path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let why = if meta.uid() != 0 {
        format!("owned by uid {}", meta.uid())
    } else if meta.mode() & 0o022 != 0 {
        format!(
            "writable by group or others (mode {:03o})",
            meta.mode() & 0o777
        )
    } else {
        return None;
    };
    let what = match what {
        "file" => "refused:".to_string(),
        _ => format!("refused: directory {} is", path.display()),
    };
    Some(format!(
        "{what} {why}; going runs as root, so service files and their directory must be root's and writable only by root"
    ))
}

/// A service file's bytes as the text its format reads: refused when
/// larger than [`MAX_FILE_SIZE`] (a read takes one byte more, to tell)
/// or not UTF-8.
pub fn file_text(bytes: Vec<u8>) -> io::Result<String> {
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(io::Error::other(format!(
            "larger than {MAX_FILE_SIZE} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::other("not valid UTF-8".to_string()))
}

/// Parses a service file's text; every problem found, in line order.
/// What [`load`] does with a file's text, without the file.
pub fn parse(name: &str, format: Format, text: &str) -> Result<ServiceSpec, Vec<Problem>> {
    let mut used = compose::Used::default();
    let (spec, _, problems) = read(None, name, format, text, wall_now(), &mut used);
    problems.is_empty().then_some(spec).ok_or(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_still_says_what_its_good_lines_say() {
        let dir = std::env::temp_dir().join(format!("going-examine-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let text = "cmd = \"x\"\nready-fd = 3\nnotify = true\nuser = \"someone\"\n";
        let _ = std::fs::write(dir.join("web.toml"), text);
        let found = examine(&dir, "web");
        let loaded = load(&dir, "web");
        let _ = std::fs::remove_dir_all(&dir);
        let found = found.map(|f| (f.spec.user, f.origin.line_of("user"), f.problems));
        assert_eq!(
            found,
            Some((
                Some(Id::Name("someone".into())),
                4,
                vec![Problem::new(
                    3,
                    "notify: only one of ready-fd, notify and ready"
                )]
            ))
        );
        assert!(
            matches!(loaded, Loaded::Broken { problems, retry: false, .. } if problems.len() == 1)
        );
    }

    #[test]
    fn only_a_want_of_resources_is_worth_a_retry() {
        let err = |errno| io::Error::from_raw_os_error(errno);
        assert!(is_transient(&err(libc::EMFILE)));
        assert!(is_transient(&err(libc::ENFILE)));
        assert!(is_transient(&err(libc::ENOMEM)));
        assert!(!is_transient(&err(libc::ENOENT)));
        assert!(!is_transient(&err(libc::EACCES)));
        assert!(!is_transient(&err(libc::EISDIR)));
        assert!(!is_transient(&io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refused: owned by uid 1000"
        )));
    }
}
