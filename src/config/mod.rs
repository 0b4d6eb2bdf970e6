//! Service files: which directory entries are services, reading one
//! service's file in either format, and the definition it yields
//! ([`ServiceSpec`]). Reads only the file it is given; users, groups and
//! paths named inside are resolved later, by whoever starts the service.

pub mod going_format;
pub mod procfile;
mod spec;
pub mod template;
pub mod toml_format;
pub mod values;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(test)]
pub use spec::HealthCheck;
pub use spec::{ActivityCheck, Id, Output, Readiness, Restart, ServiceSpec};

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
}

impl Problem {
    pub fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            line,
            message: message.into(),
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
    /// A TOML value of a type no key takes (float, datetime, table, ...).
    Other(&'static str),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) | Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Bool(_) => "boolean",
            Value::List(_) => "array",
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
    /// FNV-1a of the file's text: what the state file records, so that a
    /// file changed while no going ran is noticed by the next one.
    pub fingerprint: u64,
}

impl Origin {
    pub fn line_of(&self, key: &str) -> usize {
        self.key_lines
            .iter()
            .find(|(k, _)| k == key)
            .map_or(1, |&(_, line)| line)
    }
}

/// `file:line: message`, the form of every configuration error.
pub struct Located<'a>(pub &'a Path, pub &'a Problem);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.0.display(),
            self.1.line,
            self.1.message
        )
    }
}

/// The service a directory entry defines, if any: `web.toml` and `web` both
/// define `web`; dotfiles, `web~`, `web.swp`, `web.dpkg-new` and every other
/// name define nothing.
pub fn classify(file_name: &str) -> Option<(&str, Format)> {
    let (name, format) = match file_name.strip_suffix(".toml") {
        Some(name) => (name, Format::Toml),
        None => (file_name, Format::Going),
    };
    is_service_name(name).then_some((name, format))
}

pub fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The names of every service the directory defines.
pub fn service_names(dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some((name, _)) = entry.file_name().to_str().and_then(classify) {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

/// Reads the service `name` from `dir`, whichever format defines it.
pub fn load(dir: &Path, name: &str) -> Loaded {
    match examine(dir, name) {
        None => Loaded::Missing,
        Some(found) if found.problems.is_empty() => Loaded::Ok(found.spec, found.origin),
        Some(found) => Loaded::Broken {
            file: found.origin.file,
            problems: found.problems,
            retry: found.retry,
        },
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
}

/// Reads the service `name` from `dir`, whichever format defines it;
/// `None` when no file defines it.
pub fn examine(dir: &Path, name: &str) -> Option<Examined> {
    let toml_path = dir.join(format!("{name}.toml"));
    let going_path = dir.join(name);
    let toml_text = read_service_file(&toml_path);
    let going_text = read_service_file(&going_path);
    let refused = |file: PathBuf, why: String| Examined {
        spec: ServiceSpec::new(name, Vec::new()),
        origin: Origin {
            file,
            ..Origin::default()
        },
        problems: vec![Problem::new(1, why)],
        retry: false,
    };
    Some(match (toml_text, going_text) {
        (None, None) => return None,
        (Some(_), _) | (_, Some(_)) if let Some(why) = untrusted(dir, "directory") => {
            let file = if toml_path.exists() {
                toml_path
            } else {
                going_path
            };
            refused(file, why)
        }
        // An error (an unreadable directory fails both) is what to report.
        (Some(Err(err)), _) => finish(name, Format::Toml, toml_path, Err(err)),
        (_, Some(Err(err))) => finish(name, Format::Going, going_path, Err(err)),
        (Some(_), Some(_)) => refused(
            toml_path,
            format!("duplicate service {name}: both {name} and {name}.toml exist"),
        ),
        (Some(text), None) => finish(name, Format::Toml, toml_path, text),
        (None, Some(text)) => finish(name, Format::Going, going_path, text),
    })
}

fn finish(name: &str, format: Format, file: PathBuf, text: io::Result<String>) -> Examined {
    let (spec, key_lines, problems) = match &text {
        Ok(text) => read(name, format, text),
        Err(err) => {
            let message = match err.kind() {
                io::ErrorKind::PermissionDenied if err.raw_os_error().is_none() => err.to_string(),
                _ => format!("cannot read: {}", describe_io(err)),
            };
            let spec = ServiceSpec::new(name, Vec::new());
            (spec, Vec::new(), vec![Problem::new(1, message)])
        }
    };
    Examined {
        spec,
        origin: Origin {
            file,
            key_lines,
            fingerprint: text
                .as_ref()
                .map_or(0, |text| crate::util::Fnv::hash(text.as_bytes())),
        },
        problems,
        retry: text.as_ref().is_err_and(is_transient),
    }
}

/// A file's text as a definition, the line of each key and every problem,
/// in line order. A TOML syntax error is the whole answer: what the crate
/// read up to it is not a document.
fn read(
    name: &str,
    format: Format,
    text: &str,
) -> (ServiceSpec, Vec<(String, usize)>, Vec<Problem>) {
    let (entries, mut problems) = match format {
        Format::Toml => match toml_format::entries(text) {
            Ok(entries) => (entries, Vec::new()),
            Err(problems) => return (ServiceSpec::new(name, Vec::new()), Vec::new(), problems),
        },
        Format::Going => going_format::entries(text),
    };
    let (spec, more) = spec::build(name, &entries);
    problems.extend(more);
    problems.sort_by_key(|p| p.line);
    let key_lines = entries.into_iter().map(|e| (e.key, e.line)).collect();
    (spec, key_lines, problems)
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

/// `None` when there is no regular file (or link to one) at `path`.
fn read_service_file(path: &Path) -> Option<io::Result<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
        Err(err) => return Some(Err(err)),
    };
    if !meta.is_file() {
        return None;
    }
    if let Some(why) = untrusted(path, "file") {
        return Some(Err(io::Error::new(io::ErrorKind::PermissionDenied, why)));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Some(Err(io::Error::other(format!(
            "larger than {MAX_FILE_SIZE} bytes"
        ))));
    }
    match std::fs::read(path) {
        Ok(bytes) => Some(file_text(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => Some(Err(err)),
    }
}

/// Why going, running as root, must not read `path`: anyone who can write
/// to a service file or its directory would run commands as root. `None`
/// when going is not root, or `path` is root's alone.
fn untrusted(path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
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
/// larger than [`MAX_FILE_SIZE`] (checked before reading too, and again
/// here for a file that grew meanwhile) or not UTF-8.
pub fn file_text(bytes: Vec<u8>) -> io::Result<String> {
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(io::Error::other(format!(
            "larger than {MAX_FILE_SIZE} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::other("not valid UTF-8".to_string()))
}

/// An I/O error without std's `(os error N)` suffix.
pub fn describe_io(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// Parses a service file's text; every problem found, in line order.
/// What [`load`] does with a file's text, without the file.
pub fn parse(name: &str, format: Format, text: &str) -> Result<ServiceSpec, Vec<Problem>> {
    match read(name, format, text) {
        (spec, _, problems) if problems.is_empty() => Ok(spec),
        (_, _, problems) => Err(problems),
    }
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
