//! The set of services: reconciles what the directory says with what
//! runs, routes a reaped pid to its service, knows the nearest deadline and
//! drives an orderly shutdown. Like `service.rs` it decides and never calls
//! the kernel: it returns the actions for the event loop to carry out.

use crate::config::{Loaded, Located, Restart, ServiceSpec};
use crate::service::{Action, Event, Exit, Memory, Service, State, base_name, millis};
use std::time::Instant;

/// An action and the service it is for.
pub type Work = Vec<(String, Action)>;

#[derive(Default)]
pub struct Supervisor {
    /// Sorted by name; boxed so that growing the table moves pointers,
    /// not whole services (a smaller peak with many services).
    #[allow(clippy::vec_box)] // measured: the unboxed table doubled into a 92 kB block
    services: Vec<Box<Service>>,
    shutting_down: bool,
    /// Stops held back until no running service depends on them.
    pending_stops: Vec<(String, PendingStop)>,
    /// Files are being loaded: new services wait until all are known,
    /// so that a dependency later in name order is no "missing" one. Why
    /// each waiting service waited before (none for a full rescan), so
    /// that its end logs only the reasons that changed.
    batch: Option<Vec<(String, String)>>,
    /// Services whose file the batch found removed, stopped at its end.
    batch_removals: Vec<String>,
    /// Processes an earlier going left running, each taken over by its
    /// service when that service is first defined.
    adoptions: Vec<Adoption>,
    /// Services an earlier going had stopped with `going stop`.
    down: Vec<String>,
    /// Counts, backoffs and flapping an earlier going left.
    memories: Vec<(String, Memory)>,
}

/// A live process an earlier going started, checked by the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adoption {
    pub name: String,
    pub pid: i32,
    pub age: std::time::Duration,
    pub restarts: u32,
    /// Of the definition it was started from.
    pub fingerprint: u64,
}

/// What a stop held back for dependents will be once they have stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingStop {
    Shutdown,
    /// `going stop`: an administrative down.
    Admin,
    /// Its file was removed.
    Remove,
    /// A dependent of a service being stopped: it starts again when its
    /// dependencies are back.
    Dependent,
}

impl Supervisor {
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().map(|s| &**s)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name())
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// What an earlier going left: taken over as the services are defined.
    pub fn take_over(&mut self, adoptions: Vec<Adoption>, down: Vec<String>) {
        self.adoptions = adoptions;
        self.down = down;
    }

    /// What an earlier going remembered of services, taken back as they
    /// are defined.
    pub fn remember(&mut self, memories: Vec<(String, Memory)>) {
        self.memories = memories;
    }

    /// Adoptions no service claimed (its file is gone, or does not parse);
    /// the loop decides what becomes of them.
    pub fn unclaimed(&mut self) -> Vec<Adoption> {
        self.down.clear();
        self.memories.clear();
        std::mem::take(&mut self.adoptions)
    }

    fn index(&self, name: &str) -> Result<usize, usize> {
        self.services.binary_search_by(|s| s.name().cmp(name))
    }

    /// The service `name`, by binary search.
    pub fn get(&self, name: &str) -> Option<&Service> {
        let index = self.index(name).ok()?;
        self.services.get(index).map(|s| &**s)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Service> {
        let index = self.index(name).ok()?;
        self.services.get_mut(index).map(|s| &mut **s)
    }

    /// The services of the file `name`: `name` itself and its instances
    /// `name@i`, found by binary search (a rescan of thousands of files
    /// must not walk every service for each file).
    fn units_of(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}@");
        let (Ok(start) | Err(start)) = self.index(&prefix);
        let rest = self.services.get(start..).unwrap_or_default().iter();
        let instance = |n: &&str| n.starts_with(&prefix);
        let instances = rest.map(|s| s.name()).take_while(instance);
        let exact = self.get(name).map(Service::name);
        Vec::from_iter(exact.into_iter().chain(instances).map(str::to_string))
    }

    /// Brings the services of the file `name` (one, or its instances) in
    /// line with the file. Only inside a batch: what starts or stops waits
    /// for [`Supervisor::end_batch`].
    pub fn reconcile(&mut self, name: &str, loaded: Loaded, now: Instant) -> Work {
        let existing = self.units_of(name);
        let mut work = Vec::new();
        match loaded {
            Loaded::Ok(mut spec, origin) => {
                let units: Vec<String> = match spec.instances.take() {
                    None => vec![name.to_string()],
                    Some(count) => (0..count).map(|i| format!("{name}@{i}")).collect(),
                };
                for unit in existing.iter().filter(|e| !units.contains(e)) {
                    work.extend(self.reconcile_unit(unit, None, now));
                }
                for unit in units {
                    let mut spec = spec.clone();
                    spec.name.clone_from(&unit);
                    work.extend(self.reconcile_unit(&unit, Some((spec, origin.fingerprint)), now));
                }
            }
            Loaded::Missing => {
                for unit in &existing {
                    work.extend(self.reconcile_unit(unit, None, now));
                }
            }
            Loaded::Broken { file, problems, .. } => {
                report_broken(name, &file, &problems);
                let at = broken_at(&file, &problems);
                for unit in &existing {
                    if let Some(service) = self.get_mut(unit) {
                        service.set_broken(Some(at.clone()));
                    }
                }
            }
        }
        work
    }

    /// Brings one service (or instance) in line with its definition and
    /// its file's fingerprint (`None`: no file defines it any more).
    fn reconcile_unit(
        &mut self,
        name: &str,
        def: Option<(ServiceSpec, u64)>,
        now: Instant,
    ) -> Work {
        match (self.index(name), def) {
            (Err(_), None) => Vec::new(),
            (Ok(_), None) => {
                log::info!(target: name, "file removed, stopping");
                // Stopped together when the batch ends.
                self.batch_removals.push(name.to_string());
                Vec::new()
            }
            (Err(index), Some((spec, fingerprint))) => {
                log::info!(target: name, "new service");
                let mut service = Box::new(Service::new(spec));
                service.set_fingerprint(fingerprint);
                if let Some(at) = self.down.iter().position(|d| d == name) {
                    self.down.swap_remove(at);
                    service.want_down(true);
                }
                if self.shutting_down {
                    // Stopped and new: it has nothing to do but never start.
                    service.on(Event::Shutdown, now);
                }
                let memory = self.memories.iter().position(|(n, _)| n == name);
                let memory = memory.map(|at| self.memories.swap_remove(at).1);
                let adoption = self.adoptions.iter().position(|a| a.name == name);
                let actions = if memory.is_some_and(|m| service.remember(&m, now)) {
                    Vec::new() // waits out the backoff it was in
                } else if let Some(at) = adoption {
                    adopt(&mut service, self.adoptions.swap_remove(at), now)
                } else {
                    // Starts, if its dependencies allow, when the batch ends.
                    service.wait();
                    Vec::new()
                };
                self.services.insert(index, service);
                tag(name, actions)
            }
            (Ok(index), Some((spec, fingerprint))) => {
                let Some(service) = self.services.get_mut(index) else {
                    return Vec::new();
                };
                service.set_depends_on(&spec.depends_on);
                service.set_broken(None);
                service.set_fingerprint(fingerprint);
                if self.shutting_down {
                    return Vec::new();
                }
                if service.spec == spec {
                    if service.is_being_removed() {
                        log::info!(target: name, "file back, keeping it");
                        service.keep();
                    }
                    return Vec::new();
                }
                log::info!(target: name, "definition changed, restarting");
                // Only a start consults `blocked`: computed here, not for
                // every file of a rescan.
                self.update_blocked();
                let service = self.services.get_mut(index);
                tag(name, service.map_or(Vec::new(), |s| s.replace(spec, now)))
            }
        }
    }

    /// The services a command names: an exact service or instance name,
    /// a file's name (all its instances), or a group; sorted, no repeats.
    pub fn select(&self, words: &[String]) -> Result<Vec<String>, String> {
        // The first of these that names any service decides.
        let ways: [fn(&Service, &str) -> bool; 3] = [
            |s, word| s.name() == word,
            |s, word| s.base_name() == word,
            |s, word| s.spec.groups.iter().any(|g| g == word),
        ];
        let mut names: Vec<String> = Vec::new();
        for word in words {
            let before = names.len();
            for way in ways {
                if names.len() == before {
                    let chosen = self.services().filter(|s| way(s, word));
                    names.extend(chosen.map(|s| s.name().to_string()));
                }
            }
            if names.len() == before {
                return Err(format!("unknown service or group: {word}"));
            }
        }
        crate::util::sort(&mut names);
        names.dedup();
        Ok(names)
    }

    /// `going start|stop|restart`: every name must exist, or nothing is done.
    pub fn command(
        &mut self,
        command: Command,
        words: &[String],
        now: Instant,
    ) -> Result<Work, String> {
        let names = self.select(words)?;
        let mut work = Vec::new();
        if command == Command::Stop {
            for name in &names {
                log::info!(target: name, "stop requested");
            }
            return Ok(self.stop_in_order(&names, PendingStop::Admin, now));
        }
        // A start calls off a stop still waiting for dependents.
        self.pending_stops.retain(|(n, _)| !names.contains(n));
        for name in &names {
            let Some(service) = self.get_mut(name) else {
                continue;
            };
            // Said before what it leads to ("stopping, pid N"), as for stop.
            let actions = if command == Command::Restart {
                log::info!(target: name, "restart requested");
                service.admin_restart(now)
            } else {
                log::info!(target: name, "start requested");
                service.admin_start(now)
            };
            work.extend(tag(name, actions));
        }
        work.extend(self.refresh(now));
        Ok(work)
    }

    /// Feeds one event to the service `name`.
    pub fn event(&mut self, name: &str, event: Event, now: Instant) -> Work {
        let Some(service) = self.get_mut(name) else {
            return Vec::new();
        };
        let mut work = tag(name, service.on(event, now));
        work.extend(self.refresh(now));
        work
    }

    /// Files are about to be loaded, each before anything new starts: a
    /// full rescan (`announce`), or the files one inotify read named.
    pub fn begin_batch(&mut self, announce: bool) {
        let waiting = self.services().filter(|_| !announce);
        let why = |s: &Service| Some((s.name().to_string(), s.waiting_for()?.to_string()));
        self.batch = Some(waiting.filter_map(why).collect());
    }

    /// Every file of the batch is loaded: start what may start. After a
    /// rescan each waiting service says once why it waits; after other
    /// batches only a reason that changed is logged, as outside a batch.
    pub fn end_batch(&mut self, now: Instant) -> Work {
        self.update_blocked();
        let before = self.batch.take().unwrap_or_default();
        for service in &self.services {
            let name = service.name();
            if let Some(reason) = service.waiting_for()
                && !before.iter().any(|(n, r)| n == name && r == reason)
            {
                log::info!(target: name, "waiting: {reason}");
            }
        }
        let removed = std::mem::take(&mut self.batch_removals);
        if removed.is_empty() {
            return self.refresh(now);
        }
        self.stop_in_order(&removed, PendingStop::Remove, now)
    }

    /// Stops `names`, each only once no running service depends on it;
    /// the running services that do depend on them stop first.
    fn stop_in_order(&mut self, names: &[String], kind: PendingStop, now: Instant) -> Work {
        // Sets, not lists: thousands of files removed at once must not
        // cost names x services, nor names x stops.
        let asked = sorted(names.iter().map(String::as_str));
        let mut closure: Vec<String> = names.to_vec();
        let mut in_closure = asked.clone();
        loop {
            let bases = sorted(closure.iter().map(|n| base_name(n)));
            let stopping = |d: &String| bases.binary_search(&d.as_str()).is_ok();
            let mut added = Vec::new();
            for service in &self.services {
                let name = service.name();
                let depends = service.spec.depends_on.iter().any(&stopping);
                if depends && service.is_active() && in_closure.binary_search(&name).is_err() {
                    added.push(name);
                }
            }
            if added.is_empty() {
                break;
            }
            closure.extend(added.iter().map(|n| n.to_string()));
            in_closure.extend(added);
            crate::util::sort(&mut in_closure);
        }
        self.pending_stops
            .retain(|(n, _)| in_closure.binary_search(&n.as_str()).is_err());
        for name in closure {
            let stop = if asked.binary_search(&name.as_str()).is_ok() {
                kind
            } else {
                PendingStop::Dependent
            };
            if stop == PendingStop::Admin
                && let Some(service) = self.get_mut(&name)
            {
                // Down at once, so nothing restarts it while it waits.
                service.want_down(true);
            }
            self.pending_stops.push((name, stop));
        }
        self.refresh(now)
    }

    /// Sets each service's `blocked`: why its dependencies keep it from
    /// starting now.
    fn update_blocked(&mut self) {
        // Called after every change: with no dependencies anywhere (the
        // common case), nothing is blocked and no graph is built, so a
        // rescan of thousands of files stays linear per file.
        if self.services.iter().all(|s| s.spec.depends_on.is_empty()) {
            for service in &mut self.services {
                service.set_blocked(None);
            }
            return;
        }
        let edges = |s: &Service| (s.base_name().to_string(), s.spec.depends_on.clone());
        let graph = crate::util::sorted_pairs(self.services().map(edges).collect());
        let broken = crate::deps::problems(&graph);
        let reasons = Vec::from_iter(self.services().map(|s| self.blocked_reason(s, &broken)));
        for (service, reason) in self.services.iter_mut().zip(reasons) {
            if service.is_waiting()
                && self.batch.is_none()
                && let Some(new) = reason.as_ref().filter(|r| service.waiting_for() != Some(r))
            {
                log::info!(target: service.name(), "waiting: {new}");
            }
            service.set_blocked(reason);
        }
    }

    /// True when every running service that depends on `name` is itself
    /// waiting to stop: a cycle, which nothing else would ever break.
    fn held_only_by_pending(&self, name: &str) -> bool {
        let base = base_name(name);
        self.services()
            .filter(|t| t.is_active() && t.spec.depends_on.iter().any(|d| d == base))
            .all(|t| self.pending_stops.iter().any(|(n, _)| n == t.name()))
    }

    /// Why `service` may not start now, if it may not.
    fn blocked_reason(&self, service: &Service, broken: &[(String, String)]) -> Option<String> {
        if service.spec.depends_on.is_empty() {
            return None;
        }
        if let Some(problem) = crate::util::find(broken, service.base_name()) {
            return Some(problem.clone());
        }
        for dep in &service.spec.depends_on {
            let of_dep = |u: &&Service| u.base_name() == dep && !u.is_being_removed();
            let units = Vec::from_iter(self.services().filter(of_dep));
            if units.is_empty() {
                return Some(format!("depends on {dep:?}, which no file defines"));
            }
            // A one-shot must have done its job; anything else must run, ready.
            let met = |u: &&Service| match u.spec.restart {
                Restart::Never => {
                    u.state() == State::Exited && u.last_exit() == Some(Exit::Code(0))
                }
                _ => u.is_ready(),
            };
            if !units.iter().all(met) {
                return Some(format!("waiting for {dep}"));
            }
        }
        None
    }

    /// The stops held back whose service `may` stop now.
    fn pending(&self, may: impl Fn(&str) -> bool) -> Vec<(String, PendingStop)> {
        Vec::from_iter(self.pending_stops.iter().filter(|(n, _)| may(n)).cloned())
    }

    /// After any change: which services may start, the stops that no
    /// dependent holds back any more, and the starts they held back.
    fn refresh(&mut self, now: Instant) -> Work {
        let mut work = Vec::new();
        let mut progress = true;
        while progress {
            progress = false;
            // What running services depend on, gathered once: thousands of
            // files removed at once must not cost services x stops.
            let active = self.services().filter(|t| t.is_active());
            let depended = sorted(active.flat_map(|t| &t.spec.depends_on).map(String::as_str));
            let mut ready = self.pending(|name| depended.binary_search(&base_name(name)).is_err());
            if ready.is_empty() {
                // Services that only wait for each other stop together.
                ready = self.pending(|name| self.held_only_by_pending(name));
            }
            let taken = sorted(ready.iter().map(|(n, _)| n.as_str()));
            self.pending_stops
                .retain(|(n, _)| taken.binary_search(&n.as_str()).is_err());
            for (name, kind) in ready {
                let Some(service) = self.get_mut(&name) else {
                    continue;
                };
                let actions = match kind {
                    // `going stop` made it down when asked.
                    PendingStop::Shutdown | PendingStop::Admin => service.on(Event::Stop, now),
                    PendingStop::Remove => service.remove(now),
                    PendingStop::Dependent => service.stop_for_dependency(now),
                };
                work.extend(tag(&name, actions));
                progress = true;
            }
        }
        // Dropped before blocked reasons are found. Only a stop ends in a
        // removal, and every way to one (`event`, the stops above) ends here.
        self.services.retain(|s| !s.is_removable());
        self.update_blocked();
        for service in &mut self.services {
            let actions = service.release(now);
            work.extend(tag(service.name(), actions));
        }
        work
    }

    /// The service whose process (group leader) is `pid`.
    pub fn by_pid(&self, pid: i32) -> Option<&str> {
        // A reaped leader's pid may be another process's now.
        let mut leaders = self.services().filter(|s| s.awaited_group().is_none());
        leaders.find(|s| s.pid() == Some(pid)).map(Service::name)
    }

    /// Services stopping whose leader is gone but whose group may not be.
    pub fn awaiting_group(&self) -> Work {
        self.services()
            .filter_map(|s| {
                let pid = s.awaited_group()?;
                Some((s.name().to_string(), Action::CheckGroup { pid }))
            })
            .collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.services.iter().filter_map(|s| s.deadline()).min()
    }

    /// Names of the services whose deadline has come.
    pub fn due(&self, now: Instant) -> Vec<String> {
        let due = |s: &&Service| s.deadline().is_some_and(|at| at <= now);
        Vec::from_iter(self.services().filter(due).map(|s| s.name().to_string()))
    }

    /// Stops every service; going exits once [`Supervisor::all_stopped`].
    /// Each service hears `Shutdown` (nothing starts again) at once, and
    /// its `Stop` in dependency order.
    pub fn shutdown(&mut self, now: Instant) -> Work {
        self.shutting_down = true;
        let mut work = Vec::new();
        for service in &mut self.services {
            let actions = service.on(Event::Shutdown, now);
            work.extend(tag(service.name(), actions));
        }
        let names: Vec<String> = self.names().map(str::to_string).collect();
        work.extend(self.stop_in_order(&names, PendingStop::Shutdown, now));
        work
    }

    /// A second request to stop: kill what is still there.
    pub fn kill_all(&self) -> Work {
        // Only an active service has a pid.
        self.services()
            .filter_map(|s| {
                let (pid, signal) = (s.pid()?, libc::SIGKILL);
                Some((s.name().to_string(), Action::Signal { pid, signal }))
            })
            .collect()
    }

    pub fn all_stopped(&self) -> bool {
        !self.services.iter().any(|s| s.is_active())
    }
}

/// `service` takes over the process of an earlier going; a definition that
/// changed meanwhile restarts it, one that is disabled stops it.
fn adopt(service: &mut Service, adoption: Adoption, now: Instant) -> Vec<Action> {
    let mut actions = service.on(
        Event::Adopted {
            pid: adoption.pid,
            age_ms: millis(adoption.age),
            restarts: adoption.restarts,
        },
        now,
    );
    if !service.spec.enabled || service.is_admin_down() {
        log::info!(target: service.name(), "not to run now, stopping pid {}", adoption.pid);
        actions.extend(service.on(Event::Stop, now));
    } else if adoption.fingerprint != service.fingerprint() {
        log::info!(target: service.name(), "definition changed while going was not running, restarting");
        actions.extend(service.admin_restart(now));
    }
    actions
}

/// The administrative commands of the control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Start,
    Stop,
    Restart,
}

/// Where a broken file is first wrong, as status shows it: `web.toml:3`.
fn broken_at(file: &std::path::Path, problems: &[crate::config::Problem]) -> String {
    let name = file.file_name().unwrap_or(file.as_os_str());
    let line = problems.first().map_or(1, |p| p.line);
    format!("{}:{line}", name.to_string_lossy())
}

/// One line for a file that cannot be used: its first problem.
fn report_broken(name: &str, file: &std::path::Path, problems: &[crate::config::Problem]) {
    let more = match problems.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    if let Some(first) = problems.first() {
        log::error!(target: name, "{}{more}, nothing changed", Located(file, first));
    }
}

/// A set of names as a sorted list: looked up by binary search, at a
/// fraction of a `BTreeSet`'s code.
fn sorted<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut list: Vec<&str> = names.collect();
    crate::util::sort(&mut list);
    list.dedup();
    list
}

fn tag(name: &str, actions: Vec<Action>) -> Work {
    Vec::from_iter(actions.into_iter().map(|a| (name.to_string(), a)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, Problem, ServiceSpec};
    use std::path::PathBuf;
    use std::time::Duration;

    fn ok(argv: &str) -> Loaded {
        let spec = ServiceSpec::new("web", argv.split(' ').map(String::from).collect());
        Loaded::Ok(spec, Origin::default())
    }

    /// One file loaded as the directory loads it: in a batch of its own.
    fn load(sup: &mut Supervisor, name: &str, loaded: Loaded, now: Instant) -> Work {
        sup.begin_batch(false);
        let mut work = sup.reconcile(name, loaded, now);
        work.extend(sup.end_batch(now));
        work
    }

    fn running(sup: &mut Supervisor, now: Instant) {
        sup.event("web", Event::Spawned(42), now);
        sup.event("web", Event::ExecOk, now);
    }

    fn state(sup: &Supervisor) -> Option<State> {
        sup.services().next().map(|s| s.state())
    }

    #[test]
    fn a_new_file_starts_and_an_unchanged_one_does_nothing() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        assert_eq!(
            load(&mut sup, "web", ok("/bin/sleep 1"), now),
            vec![("web".into(), Action::Spawn)]
        );
        running(&mut sup, now);
        assert_eq!(load(&mut sup, "web", ok("/bin/sleep 1"), now), vec![]);
        assert_eq!(sup.by_pid(42), Some("web"));
    }

    #[test]
    fn a_changed_file_restarts() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let work = load(&mut sup, "web", ok("/bin/sleep 2"), now);
        assert_eq!(
            work.first(),
            Some(&(
                "web".into(),
                Action::Signal {
                    pid: 42,
                    signal: libc::SIGTERM
                }
            ))
        );
        let exited = Event::Exited {
            status: crate::service::Exit::Signal(15),
            exec_error: None,
        };
        sup.event("web", exited, now);
        assert_eq!(
            sup.event("web", Event::GroupGone, now),
            vec![("web".into(), Action::Spawn)]
        );
    }

    #[test]
    fn a_broken_file_changes_nothing() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let broken = Loaded::Broken {
            file: PathBuf::from("/etc/going.d/web.toml"),
            problems: vec![Problem::new(3, "unknown key \"x\"")],
            retry: false,
        };
        assert_eq!(load(&mut sup, "web", broken, now), vec![]);
        assert_eq!(state(&sup), Some(State::Running));
        let broken_new = Loaded::Broken {
            file: PathBuf::from("/x/db"),
            problems: vec![],
            retry: true,
        };
        assert_eq!(load(&mut sup, "db", broken_new, now), vec![]);
        assert_eq!(sup.services().count(), 1);
    }

    #[test]
    fn a_removed_file_stops_then_forgets() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let work = load(&mut sup, "web", Loaded::Missing, now);
        assert_eq!(
            work.first(),
            Some(&(
                "web".into(),
                Action::Signal {
                    pid: 42,
                    signal: libc::SIGTERM
                }
            ))
        );
        assert_eq!(sup.services().count(), 1);
        let exited = Event::Exited {
            status: crate::service::Exit::Code(0),
            exec_error: None,
        };
        sup.event("web", exited, now);
        sup.event("web", Event::GroupGone, now);
        assert!(sup.services().next().is_none());
    }

    #[test]
    fn a_file_put_back_while_stopping_keeps_the_service() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        load(&mut sup, "web", Loaded::Missing, now);
        assert_eq!(load(&mut sup, "web", ok("/bin/sleep 1"), now), vec![]);
        let exited = Event::Exited {
            status: crate::service::Exit::Code(0),
            exec_error: None,
        };
        sup.event("web", exited, now);
        assert_eq!(
            sup.event("web", Event::GroupGone, now),
            vec![("web".into(), Action::Spawn)]
        );
        assert_eq!(sup.services().count(), 1);
    }

    #[test]
    fn shutdown_stops_everything_and_starts_nothing() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let work = sup.shutdown(now);
        assert_eq!(work.len(), 2);
        assert!(!sup.all_stopped());
        assert_eq!(load(&mut sup, "db", ok("/bin/true"), now), vec![]);
        assert_eq!(
            sup.kill_all(),
            vec![(
                "web".into(),
                Action::Signal {
                    pid: 42,
                    signal: libc::SIGKILL
                }
            )]
        );
        let exited = Event::Exited {
            status: crate::service::Exit::Signal(15),
            exec_error: None,
        };
        sup.event("web", exited, now);
        sup.event("web", Event::GroupGone, now);
        assert!(sup.all_stopped());
    }

    fn instances(n: u32) -> Loaded {
        let mut spec = ServiceSpec::new("web", vec!["/bin/sleep".into(), "9".into()]);
        spec.instances = Some(n);
        spec.groups = vec!["front".into()];
        Loaded::Ok(spec, Origin::default())
    }

    fn spawned(work: &Work) -> Vec<&str> {
        work.iter()
            .filter(|(_, a)| *a == Action::Spawn)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    #[test]
    fn changing_instances_starts_or_stops_only_the_difference() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        let work = load(&mut sup, "web", instances(3), now);
        assert_eq!(spawned(&work), ["web@0", "web@1", "web@2"]);
        for (i, name) in ["web@0", "web@1", "web@2"].iter().enumerate() {
            sup.event(name, Event::Spawned(10 + i as i32), now);
        }
        let work = load(&mut sup, "web", instances(5), now);
        assert_eq!(spawned(&work), ["web@3", "web@4"]);
        let work = load(&mut sup, "web", instances(2), now);
        let stopped: Vec<&str> = work
            .iter()
            .filter(|(_, a)| {
                matches!(
                    a,
                    Action::Signal {
                        signal: libc::SIGTERM,
                        ..
                    }
                )
            })
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(stopped, ["web@2"]);
        assert_eq!(sup.services().filter(|s| s.is_removable()).count(), 0);
    }

    #[test]
    fn commands_select_by_name_file_and_group() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", instances(2), now);
        load(&mut sup, "db", ok("/bin/sleep 1"), now);
        let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(sup.select(&all(&["web@1"])), Ok(all(&["web@1"])));
        assert_eq!(sup.select(&all(&["web"])), Ok(all(&["web@0", "web@1"])));
        assert_eq!(
            sup.select(&all(&["front", "web@0"])),
            Ok(all(&["web@0", "web@1"]))
        );
        assert_eq!(
            sup.select(&all(&["nope"])),
            Err("unknown service or group: nope".into())
        );
        assert!(
            sup.command(Command::Stop, &all(&["db", "nope"]), now)
                .is_err()
        );
        assert!(sup.services().all(|s| !s.is_admin_down()));
        assert!(sup.command(Command::Stop, &all(&["front"]), now).is_ok());
        let down: Vec<&str> = sup
            .services()
            .filter(|s| s.is_admin_down())
            .map(|s| s.name())
            .collect();
        assert_eq!(down, ["web@0", "web@1"]);
    }

    #[test]
    fn deadlines_are_found() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", ok("/bin/false"), now);
        running(&mut sup, now);
        let exited = Event::Exited {
            status: crate::service::Exit::Code(1),
            exec_error: None,
        };
        sup.event("web", exited, now);
        sup.event("web", Event::GroupGone, now);
        let at = now + Duration::from_millis(50);
        assert_eq!(sup.next_deadline(), Some(at));
        assert!(sup.due(now).is_empty());
        assert_eq!(sup.due(at), vec!["web".to_string()]);
    }

    fn named(name: &str) -> Loaded {
        let spec = ServiceSpec::new(name, vec!["/bin/sleep".into(), "9".into()]);
        Loaded::Ok(spec, Origin::default())
    }

    #[test]
    fn a_file_names_itself_and_its_instances_only() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "web", instances(2), now);
        for name in ["web-x", "webx", "we", "web_"] {
            load(&mut sup, name, named(name), now);
        }
        assert_eq!(sup.units_of("web"), ["web@0", "web@1"]);
        assert_eq!(sup.units_of("webx"), ["webx"]);
        assert_eq!(sup.units_of("we"), ["we"]);
        assert!(sup.units_of("w").is_empty());
        // A file that lost its instances is found as well.
        load(&mut sup, "web", named("web"), now);
        assert!(sup.units_of("web").contains(&"web".to_string()));
    }

    #[test]
    fn a_batch_starts_its_new_services_at_its_end() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "a", named("a"), now);
        for announce in [false, true] {
            let name = if announce { "c" } else { "b" };
            sup.begin_batch(announce);
            assert_eq!(sup.reconcile(name, named(name), now), vec![]);
            // A removal waits for the end of the batch too.
            let work = sup.reconcile("a", Loaded::Missing, now);
            assert!(work.is_empty(), "{work:?}");
            let work = sup.end_batch(now);
            assert_eq!(spawned(&work), [name]);
            assert!(sup.services().all(|s| s.name() != "a" || s.is_removable()));
            load(&mut sup, "a", named("a"), now);
        }
    }

    fn adoption(pid: i32, fingerprint: u64) -> Adoption {
        Adoption {
            name: "web".into(),
            pid,
            age: std::time::Duration::from_secs(60),
            restarts: 4,
            fingerprint,
        }
    }

    #[test]
    fn a_recorded_process_is_taken_over_not_started_again() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.take_over(vec![adoption(42, 0)], vec![]);
        let work = load(&mut sup, "web", ok("/bin/sleep 1"), now);
        assert!(work.is_empty(), "{work:?}");
        let web = sup.services().next().unwrap();
        assert_eq!(
            (web.state(), web.pid(), web.restarts()),
            (State::Running, Some(42), 4)
        );
        assert!(web.is_ready());
        assert!(sup.unclaimed().is_empty());
    }

    #[test]
    fn a_definition_changed_meanwhile_restarts_the_adopted_process() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.take_over(vec![adoption(42, 1)], vec![]);
        let work = load(&mut sup, "web", ok("/bin/sleep 2"), now);
        assert!(work.contains(&(
            "web".to_string(),
            Action::Signal {
                pid: 42,
                signal: libc::SIGTERM
            }
        )));
        assert_eq!(state(&sup), Some(State::Stopping));
    }

    #[test]
    fn unclaimed_adoptions_and_remembered_stops() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        let mut other = adoption(7, 0);
        other.name = "gone".into();
        sup.take_over(vec![other.clone()], vec!["web".into()]);
        let work = load(&mut sup, "web", ok("/bin/sleep 1"), now);
        assert!(work.is_empty(), "a stopped service was started: {work:?}");
        assert!(sup.services().next().unwrap().is_admin_down());
        assert_eq!(sup.unclaimed(), vec![other]);
    }

    #[test]
    fn a_dependency_held_for_its_dependents_at_shutdown_is_not_restarted() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        load(&mut sup, "db", named("db"), now);
        sup.event("db", Event::Spawned(1), now);
        sup.event("db", Event::ExecOk, now);
        let mut web = ServiceSpec::new("web", vec!["/bin/sleep".into(), "9".into()]);
        web.depends_on = vec!["db".into()];
        load(&mut sup, "web", Loaded::Ok(web, Origin::default()), now);
        sup.event("web", Event::Spawned(2), now);
        sup.event("web", Event::ExecOk, now);
        let work = sup.shutdown(now);
        // web stops first; db waits for it.
        assert!(work.iter().all(|(name, _)| name == "web"), "{work:?}");
        let crashed = Event::Exited {
            status: Exit::Code(1),
            exec_error: None,
        };
        // What it left in its group is stopped, and nothing starts again.
        let work = sup.event("db", crashed, now + Duration::from_secs(60));
        assert_eq!(
            work.last(),
            Some(&("db".into(), Action::CheckGroup { pid: 1 }))
        );
        assert_eq!(sup.event("db", Event::GroupGone, now), vec![]);
        assert_eq!(load(&mut sup, "new", named("new"), now), vec![]);
        assert!(sup.services().all(|s| s.name() == "web" || !s.is_active()));
    }
}
