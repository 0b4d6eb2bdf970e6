//! Small helpers used everywhere: FNV-1a, a compact sort, and how errors,
//! durations and counts are written in log lines and messages.
//!
//! The sort: std's (driftsort, ipnsort) is compiled anew for every element
//! type and comparator, 1 to 5 kB each, 38.7 kB in all; here a merge sort
//! is compiled once, on indices, and each use adds only its comparison and
//! its swaps: the static binary is 28.7 kB smaller (645,392 -> 616,720).

use std::time::Duration;

/// FNV-1a, 64 bits, fed piece by piece: a stable short name for a
/// directory, a command line's fingerprint in the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn feed(mut self, bytes: &[u8]) -> Fnv {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// The hash of `bytes` in one piece.
    pub fn hash(bytes: &[u8]) -> u64 {
        Fnv::default().feed(bytes).0
    }
}

/// Sorts `items`, stable: equal items keep their order.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, |a, b| a < b);
}

/// Sorts `items` by `key`, stable.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a) < key(b));
}

/// Sorts `items` by `less`, stable. O(n log n): a rescan sorts the names
/// of ten thousand files.
pub fn sort_by<T>(items: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let order = stable_order(
        items.len(),
        &mut |a, b| match (items.get(a), items.get(b)) {
            (Some(a), Some(b)) => less(a, b),
            _ => false,
        },
    );
    permute(order, &mut |a, b| items.swap(a, b));
}

/// For each item, whether an equal one comes before it: what a set of
/// those seen so far would say, in O(n log n).
pub fn repeats<T: Ord>(items: &[T]) -> Vec<bool> {
    let order = stable_order(items.len(), &mut |a, b| items.get(a) < items.get(b));
    let mut repeat = vec![false; items.len()];
    for pair in order.windows(2) {
        if let [first, next] = *pair
            && items.get(first) == items.get(next)
            && let Some(flag) = repeat.get_mut(next)
        {
            *flag = true;
        }
    }
    repeat
}

/// The value of `key` in pairs sorted by key, no key twice.
pub fn find<'a, V>(pairs: &'a [(String, V)], key: &str) -> Option<&'a V> {
    let at = pairs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
    pairs.get(at).map(|(_, v)| v)
}

/// Pairs sorted by key; of pairs with the same key, the last stays (as
/// collecting into a map would keep it).
pub fn sorted_pairs<V>(mut pairs: Vec<(String, V)>) -> Vec<(String, V)> {
    // Reversed, the stable sort puts the last of a key first.
    pairs.reverse();
    sort_by(&mut pairs, |a, b| a.0 < b.0);
    pairs.dedup_by(|later, kept| later.0 == kept.0);
    pairs
}

/// The indices of `len` items in stable sorted order, by `less` on
/// indices: a bottom-up merge sort, the one copy every sort shares.
fn stable_order(len: usize, less: &mut dyn FnMut(usize, usize) -> bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = Vec::with_capacity(len);
    let mut width = 1;
    while width < len {
        merged.clear();
        for run in order.chunks(width.saturating_mul(2)) {
            let (left, right) = run.split_at(width.min(run.len()));
            let (mut left, mut right) = (left.iter().peekable(), right.iter().peekable());
            while let (Some(&&a), Some(&&b)) = (left.peek(), right.peek()) {
                // Ties from the left: stable.
                if less(b, a) {
                    merged.push(b);
                    right.next();
                } else {
                    merged.push(a);
                    left.next();
                }
            }
            merged.extend(left);
            merged.extend(right);
        }
        std::mem::swap(&mut order, &mut merged);
        width = width.saturating_mul(2);
    }
    order
}

/// Moves item `order[i]` to place `i`, by `swap`s along each cycle of the
/// permutation.
fn permute(mut order: Vec<usize>, swap: &mut dyn FnMut(usize, usize)) {
    const DONE: usize = usize::MAX;
    for start in 0..order.len() {
        let mut at = start;
        while let Some(slot) = order.get_mut(at) {
            let from = std::mem::replace(slot, DONE);
            if from == DONE || from == start {
                break;
            }
            swap(at, from);
            at = from;
        }
    }
}

/// An I/O error without std's `(os error N)` suffix.
pub fn describe_io(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// A duration as log lines print it: `0.2s`, `12.8s`, `30s`, `5m`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 100 {
        return format!("{millis}ms");
    }
    if millis >= 60_000 && millis.is_multiple_of(60_000) {
        return format!("{}m", millis / 60_000);
    }
    let tenths = (millis + 50) / 100;
    if tenths.is_multiple_of(10) && millis >= 10_000 {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

/// Signals the process group led by `pid`, or `pid` alone if it has not
/// made its group yet (between fork and setsid).
pub fn signal_group(pid: i32, signal: i32) {
    let Ok(signal) = nix::sys::signal::Signal::try_from(signal) else {
        return;
    };
    if nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal)
        == Err(nix::errno::Errno::ESRCH)
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// `1 service`, `2 services`: a count and its noun, singular for one.
pub fn counted(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_std_and_keeps_equal_items_in_order() {
        // A small LCG: many lengths, many repeated keys.
        let mut seed = 7u64;
        for len in [0, 1, 2, 3, 5, 8, 13, 100, 1000, 10_007] {
            let items: Vec<(u64, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((seed >> 33) % 17, i)
                })
                .collect();
            let mut ours = items.clone();
            sort_by_key(&mut ours, |&(k, _)| k);
            let mut std_sorted = items.clone();
            std_sorted.sort_by_key(|&(k, _)| k);
            assert_eq!(ours, std_sorted, "len {len}");
            let mut whole = items;
            whole.reverse();
            sort(&mut whole);
            assert!(whole.windows(2).all(|w| w[0] <= w[1]), "len {len}");
        }
        let mut words = vec!["b", "a", "c", "a"];
        sort(&mut words);
        assert_eq!(words, ["a", "a", "b", "c"]);
    }

    #[test]
    fn repeats_are_the_later_equal_items() {
        assert_eq!(
            repeats(&["x", "y", "x", "z", "y", "x"]),
            [false, false, true, false, true, true]
        );
        assert!(repeats::<u8>(&[]).is_empty());
    }

    #[test]
    fn sorted_pairs_keep_the_last_of_a_key_and_are_found() {
        let pairs = sorted_pairs(vec![
            ("b".to_string(), 1),
            ("a".to_string(), 2),
            ("b".to_string(), 3),
            ("b".to_string(), 4),
        ]);
        assert_eq!(pairs, [("a".to_string(), 2), ("b".to_string(), 4)]);
        assert_eq!(find(&pairs, "b"), Some(&4));
        assert_eq!(find(&pairs, "a"), Some(&2));
        assert_eq!(find(&pairs, "c"), None);
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(counted(1u32, "restart"), "1 restart");
        assert_eq!(counted(0u32, "restart"), "0 restarts");
        assert_eq!(counted(2u64, "service"), "2 services");
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(Fnv::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv::default().feed(b"fo").feed(b"o").0, Fnv::hash(b"foo"));
    }

    #[test]
    fn durations_print_short() {
        assert_eq!(format_duration(Duration::from_millis(100)), "0.1s");
        assert_eq!(format_duration(Duration::from_millis(50)), "50ms");
        assert_eq!(format_duration(Duration::from_millis(200)), "0.2s");
        assert_eq!(format_duration(Duration::from_millis(12_800)), "12.8s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(5)), "5.0s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
