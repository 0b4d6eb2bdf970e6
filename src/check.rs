//! `going check`: every problem of every service file, one
//! `FILE:LINE: message` a line, including users and groups that do not
//! exist on this machine (which the running supervisor only meets when it
//! starts the service) and `depends-on` cycles and dangling names.

use crate::config::{self, Loaded, Located, Origin, Problem, ServiceSpec};
use crate::spawn;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Prints the problems of `dir`; the exit status (0 clean, 1 problems).
pub fn run(dir: &Path) -> i32 {
    let lines = problems(dir);
    let mut out = std::io::stdout().lock();
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    i32::from(!lines.is_empty())
}

pub fn problems(dir: &Path) -> Vec<String> {
    let names = match config::service_names(dir) {
        Ok(names) => names,
        Err(err) => {
            return vec![format!(
                "{}: cannot read: {}",
                dir.display(),
                config::describe_io(&err)
            )];
        }
    };
    let mut lines = Vec::new();
    let mut parsed: BTreeMap<String, (ServiceSpec, Origin)> = BTreeMap::new();
    for name in names {
        match config::load(dir, &name) {
            Loaded::Missing => {}
            Loaded::Broken { file, problems, .. } => {
                lines.extend(problems.iter().map(|p| Located(&file, p).to_string()));
                // Known, even if broken: depending on it is no dangling name.
                parsed.insert(name, (ServiceSpec::new("", Vec::new()), Origin::default()));
            }
            Loaded::Ok(spec, origin) => {
                let mut found = Vec::new();
                if let Some(user) = &spec.user
                    && let Err(why) = spawn::check_user(user)
                {
                    found.push(Problem::new(origin.line_of("user"), format!("user: {why}")));
                }
                if let Some(group) = &spec.group
                    && let Err(why) = spawn::resolve_group(group)
                {
                    found.push(Problem::new(
                        origin.line_of("group"),
                        format!("group: {why}"),
                    ));
                }
                lines.extend(found.iter().map(|p| Located(&origin.file, p).to_string()));
                parsed.insert(name, (spec, origin));
            }
        }
    }
    let graph: BTreeMap<String, Vec<String>> = parsed
        .iter()
        .map(|(name, (spec, _))| (name.clone(), spec.depends_on.clone()))
        .collect();
    for (name, why) in crate::deps::problems(&graph) {
        if let Some((_, origin)) = parsed.get(&name) {
            let problem = Problem::new(origin.line_of("depends-on"), format!("depends-on: {why}"));
            lines.push(Located(&origin.file, &problem).to_string());
        }
    }
    lines
}
