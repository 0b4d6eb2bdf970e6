//! What a service's file draws from other files: its template
//! (`template = "NAME"`, `DIR/NAME.template`) and, for the services of a
//! `Procfile`, that file and the `.env` beside it.

use super::procfile::{self, ProcLine};
use super::{Entry, Problem, Value, read_service_file, template, toml_format, versions};
use crate::util::{Fnv, describe_io};
use std::path::{Path, PathBuf};

/// Template lines are told apart from the service file's by this offset,
/// until they are written out with the template's name
/// ([`super::Origin::problem`]). Far above any line of a 64 kB file.
pub const TEMPLATE_LINES: usize = 1 << 20;

/// What a template brought.
#[derive(Default)]
pub struct Used {
    pub name: Option<String>,
    pub path: Option<PathBuf>,
    /// FNV-1a of the template's text, 0 without one.
    pub fingerprint: u64,
}

/// The file's entries over its template's, or the problems, each at its
/// file's line (a template's carry [`TEMPLATE_LINES`]).
pub fn apply_template(
    dir: Option<&Path>,
    entries: Vec<Entry>,
    used: &mut Used,
) -> Result<Vec<Entry>, Vec<Problem>> {
    let (own, vars): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| !e.key.starts_with("vars.") && e.key != "vars");
    let (own, chosen): (Vec<Entry>, Vec<Entry>) =
        own.into_iter().partition(|e| e.key != "template");
    let Some(chosen) = chosen.into_iter().next() else {
        return match vars.first() {
            Some(var) => Err(vec![Problem::new(
                var.line,
                "vars: only a service with a template has vars",
            )]),
            None => Ok(own),
        };
    };
    let at = |why: String| vec![Problem::new(chosen.line, format!("template: {why}"))];
    let name = match &chosen.value {
        Value::Str(name) | Value::Text(name) if super::is_service_name(name) => name.clone(),
        Value::Str(name) | Value::Text(name) => {
            return Err(at(format!(
                "{name:?} is not a name of letters, digits, - and _"
            )));
        }
        other => return Err(at(format!("expected a name, found {}", other.type_name()))),
    };
    used.name = Some(name.clone());
    let Some(dir) = dir else {
        return Err(at("needs the service directory".into()));
    };
    let path = dir.join(format!("{name}.template"));
    let text = match read_service_file(&path) {
        None => return Err(at(format!("no file {}", path.display()))),
        Some(Err(err)) => {
            let why = describe_io(&err);
            return Err(at(format!("cannot read {}: {why}", path.display())));
        }
        Some(Ok(text)) => text,
    };
    used.fingerprint = Fnv::hash(text.as_bytes());
    used.path = Some(path.clone());
    let mut problems = Vec::new();
    let mut values: Vec<(&str, String)> = Vec::new();
    for var in &vars {
        let name = var.key.strip_prefix("vars.").unwrap_or(&var.key);
        match &var.value {
            Value::Str(v) | Value::Text(v) => values.push((name, v.clone())),
            Value::Int(n) => values.push((name, n.to_string())),
            Value::Bool(b) => values.push((name, b.to_string())),
            other => problems.push(Problem::new(
                var.line,
                format!(
                    "vars.{name}: expected a string, a number or true/false, found {}",
                    other.type_name()
                ),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let in_template = |mut problems: Vec<Problem>| {
        for problem in &mut problems {
            problem.line += TEMPLATE_LINES;
        }
        problems
    };
    let expanded = template::expand(&text, |wanted| {
        values
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| value.as_str())
    })
    .map_err(in_template)?;
    let mut from_template = toml_format::entries(&expanded).map_err(in_template)?;
    for entry in &mut from_template {
        entry.line += TEMPLATE_LINES;
        let top = entry.key.split('.').next().unwrap_or("");
        if matches!(top, "template" | "vars" | "apply-on" | "version") {
            problems.push(Problem::new(
                entry.line,
                format!("{top}: belongs in the service file, not in a template"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Versions stay the service file's: merged after.
    let (dated, undated): (Vec<Entry>, Vec<Entry>) = own
        .into_iter()
        .partition(|e| e.key == "apply-on" || e.key.starts_with("version."));
    let mut merged = versions::merge(&from_template, &undated);
    merged.extend(dated);
    Ok(merged)
}

/// A `Procfile` and the `.env` beside it, as read now.
#[derive(Default)]
pub struct Procfile {
    pub path: PathBuf,
    /// The good lines.
    pub lines: Vec<ProcLine>,
    /// The file that has problems (the Procfile first, else `.env`) and
    /// its problems; none when both read.
    pub broken: Option<(PathBuf, Vec<Problem>)>,
    pub env: Vec<(String, String)>,
    /// Of `.env`'s text, 0 without one.
    env_fingerprint: u64,
}

impl Procfile {
    pub fn line(&self, name: &str) -> Option<&ProcLine> {
        self.lines.iter().find(|l| l.name == name)
    }

    /// A line's service: `/bin/sh -c COMMAND` with the `.env` variables.
    pub fn spec(&self, line: &ProcLine) -> super::ServiceSpec {
        let argv = vec!["/bin/sh".into(), "-c".into(), line.command.clone()];
        let mut spec = super::ServiceSpec::new(&line.name, argv);
        spec.env = self.env.clone();
        spec
    }

    pub fn fingerprint(&self, line: &ProcLine) -> u64 {
        Fnv(self.env_fingerprint).feed(line.command.as_bytes()).0
    }
}

/// `DIR/Procfile` and `DIR/.env`; `None` without a Procfile.
pub fn read_procfile(dir: &Path) -> Option<Procfile> {
    let path = dir.join("Procfile");
    let text = read_service_file(&path)?;
    let mut procfile = Procfile {
        path,
        ..Procfile::default()
    };
    let unreadable = |err| Problem::new(1, format!("cannot read: {}", describe_io(&err)));
    let problems = match text {
        Ok(text) => {
            let (lines, problems) = procfile::read_procfile(&text);
            procfile.lines = lines;
            problems
        }
        Err(err) => vec![unreadable(err)],
    };
    if !problems.is_empty() {
        procfile.broken = Some((procfile.path.clone(), problems));
    }
    let env_path = dir.join(".env");
    let env_problems = match read_service_file(&env_path) {
        None => Vec::new(),
        Some(Ok(text)) => {
            procfile.env_fingerprint = Fnv::hash(text.as_bytes());
            match procfile::parse_env(&text) {
                Ok(env) => {
                    procfile.env = env;
                    Vec::new()
                }
                Err(problems) => problems,
            }
        }
        Some(Err(err)) => vec![unreadable(err)],
    };
    if procfile.broken.is_none() && !env_problems.is_empty() {
        procfile.broken = Some((env_path, env_problems));
    }
    Some(procfile)
}
