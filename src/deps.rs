//! The dependency graph of `depends-on`, by file name: which names no
//! file defines, and which services are in a cycle. Pure.

use std::collections::{BTreeMap, BTreeSet};

/// The problem of each service whose dependencies can never be met.
pub fn problems(graph: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for (name, deps) in graph {
        if let Some(missing) = deps.iter().find(|d| !graph.contains_key(*d)) {
            found.insert(
                name.clone(),
                format!("depends on {missing:?}, which no file defines"),
            );
        }
    }
    for name in graph.keys() {
        if let Some(cycle) = cycle_through(graph, name) {
            found
                .entry(name.clone())
                .or_insert_with(|| format!("in a dependency cycle: {}", cycle.join(" -> ")));
        }
    }
    found
}

/// A path from `start` back to itself, if there is one.
fn cycle_through(graph: &BTreeMap<String, Vec<String>>, start: &str) -> Option<Vec<String>> {
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    if walk(graph, start, start, &mut path, &mut seen) {
        Some(path)
    } else {
        None
    }
}

fn walk(
    graph: &BTreeMap<String, Vec<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> bool {
    for next in graph.get(at).into_iter().flatten() {
        if next == start {
            path.push(next.clone());
            return true;
        }
        if seen.insert(next.clone()) {
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

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
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
            found.get("web").map(String::as_str),
            Some("depends on \"db\", which no file defines")
        );
        assert_eq!(
            found.get("a").map(String::as_str),
            Some("in a dependency cycle: a -> b -> c -> a")
        );
        assert_eq!(
            found.get("c").map(String::as_str),
            Some("in a dependency cycle: c -> a -> b -> c")
        );
        assert_eq!(
            found.get("d").map(String::as_str),
            Some("in a dependency cycle: d -> d")
        );
        assert_eq!(found.get("e"), None);
    }
}
