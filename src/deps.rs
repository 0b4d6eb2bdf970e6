//! The dependency graph of `depends-on`, by file name: which names no
//! file defines, and which services are in a cycle. Pure.

use crate::util::find;

/// The problem of each service whose dependencies can never be met, by
/// name. `graph`: each name and its dependencies, sorted by name (see
/// `util::sorted_pairs`).
pub fn problems(graph: &[(String, Vec<String>)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (name, deps) in graph {
        // A path from `name` back to itself, if there is one.
        let (mut path, mut seen) = (vec![name.clone()], vec![false; graph.len()]);
        let why = if let Some(missing) = deps.iter().find(|d| find(graph, d).is_none()) {
            format!("depends on {missing:?}, which no file defines")
        } else if walk(graph, name, name, &mut path, &mut seen) {
            format!("in a dependency cycle: {}", path.join(" -> "))
        } else {
            continue;
        };
        found.push((name.clone(), why));
    }
    found
}

/// Extends `path` from `at` until it comes back to `start`, if it can.
/// `seen`: by place in `graph`.
fn walk(
    graph: &[(String, Vec<String>)],
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut [bool],
) -> bool {
    for next in find(graph, at).into_iter().flatten() {
        if next == start {
            path.push(next.clone());
            return true;
        }
        // A name no file defines leads nowhere.
        let Ok(place) = graph.binary_search_by(|(n, _)| n.cmp(next)) else {
            continue;
        };
        if let Some(flag) = seen.get_mut(place)
            && !std::mem::replace(flag, true)
        {
            path.push(next.clone());
            if walk(graph, start, next, path, seen) {
                return true;
            }
            path.pop();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        crate::util::sorted_pairs(
            edges
                .iter()
                .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
    }

    #[test]
    fn a_sound_graph_has_no_problems() {
        assert!(
            problems(&graph(&[
                ("web", &["db", "cache"]),
                ("db", &[]),
                ("cache", &["db"])
            ]))
            .is_empty()
        );
    }

    #[test]
    fn dangling_names_and_cycles_are_found() {
        let found = problems(&graph(&[
            ("web", &["db"]),
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["d"]),
            ("e", &["a"]),
        ]));
        assert_eq!(
            find(&found, "web").map(String::as_str),
            Some("depends on \"db\", which no file defines")
        );
        assert_eq!(
            find(&found, "a").map(String::as_str),
            Some("in a dependency cycle: a -> b -> c -> a")
        );
        assert_eq!(
            find(&found, "c").map(String::as_str),
            Some("in a dependency cycle: c -> a -> b -> c")
        );
        assert_eq!(
            find(&found, "d").map(String::as_str),
            Some("in a dependency cycle: d -> d")
        );
        assert_eq!(find(&found, "e"), None);
    }
}
