//! `going check`: every problem of every service file, one
//! `FILE:LINE: message` a line, including users and groups that do not
//! exist on this machine (which the running supervisor only meets when it
//! starts the service) and `depends-on` cycles and dangling names.

use crate::config::{self, Examined, Located};
use crate::spawn::{check_user, resolve_group};
use crate::util::describe_io;
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

/// Every problem, file by file in name order, each file's in line order.
pub fn problems(dir: &Path) -> Vec<String> {
    let names = match config::service_names(dir) {
        Ok(names) => names,
        Err(err) => {
            let why = describe_io(&err);
            return vec![format!("{}: cannot read: {why}", dir.display())];
        }
    };
    // A file with errors counts too: depending on it is no dangling name,
    // and what its good lines say is checked as well.
    // By name, as `service_names` gives them: sorted, no name twice.
    let mut files: Vec<(String, Examined)> = names
        .into_iter()
        .filter_map(|name| Some((name.clone(), config::examine(dir, &name)?)))
        .collect();
    for (_, found) in &mut files {
        let spec = &found.spec;
        let user = spec.user.as_ref().and_then(|u| check_user(u).err());
        let group = spec.group.as_ref().and_then(|g| resolve_group(g).err());
        for (key, why) in [("user", user), ("group", group)] {
            if let Some(why) = why {
                let problem = found.origin.problem(key, format!("{key}: {why}"));
                found.problems.push(problem);
            }
        }
    }
    let edges = |(name, found): &(String, Examined)| (name.clone(), found.spec.depends_on.clone());
    let graph = Vec::from_iter(files.iter().map(edges));
    for (name, why) in crate::deps::problems(&graph) {
        let place = files.binary_search_by(|(n, _)| n.cmp(&name));
        if let Some((_, found)) = place.ok().and_then(|at| files.get_mut(at)) {
            let why = format!("depends-on: {why}");
            found.problems.push(found.origin.problem("depends-on", why));
        }
    }
    let mut lines = Vec::new();
    for (_, found) in &mut files {
        crate::util::sort_by_key(&mut found.problems, |p| p.line);
        let file = &found.origin.file;
        lines.extend(found.problems.iter().map(|p| Located(file, p).to_string()));
    }
    // A Procfile that does not read is every one of its services' problem.
    let mut repeats = crate::util::repeats(&lines).into_iter();
    lines.retain(|_| !repeats.next().unwrap_or(false));
    lines
}
