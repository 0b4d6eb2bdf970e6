//! The set of services: reconciles what the directory says with what
//! runs, routes a reaped pid to its service, knows the nearest deadline and
//! drives an orderly shutdown. Like `service.rs` it decides and never calls
//! the kernel: it returns the actions for the event loop to carry out.

use crate::config::{Loaded, Located};
use crate::service::{Action, Event, Service, State};
use std::time::Instant;

/// An action and the service it is for.
pub type Work = Vec<(String, Action)>;

#[derive(Default)]
pub struct Supervisor {
    /// Sorted by name.
    services: Vec<Service>,
    shutting_down: bool,
}

impl Supervisor {
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(Service::name)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    fn index(&self, name: &str) -> Result<usize, usize> {
        self.services.binary_search_by(|s| s.name().cmp(name))
    }

    /// Brings the service `name` in line with its file.
    pub fn reconcile(&mut self, name: &str, loaded: Loaded, now: Instant) -> Work {
        let found = self.index(name);
        let actions = match (found, loaded) {
            (Err(_), Loaded::Missing) => return Vec::new(),
            (Ok(index), Loaded::Missing) => {
                let Some(service) = self.services.get_mut(index) else {
                    return Vec::new();
                };
                if service.is_removable() {
                    return Vec::new();
                }
                log::info!(target: name, "file removed, stopping");
                service.remove(now)
            }
            (_, Loaded::Broken { file, problems }) => {
                let more = match problems.len() {
                    0 | 1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                if let Some(first) = problems.first() {
                    log::error!(target: name, "{}{more}, nothing changed", Located(&file, first));
                }
                return Vec::new();
            }
            (Err(index), Loaded::Ok(spec, _)) => {
                log::info!(target: name, "new service");
                self.services.insert(index, Service::new(spec));
                let Some(service) = self.services.get_mut(index) else {
                    return Vec::new();
                };
                if self.shutting_down {
                    return Vec::new();
                }
                service.on(Event::Start, now)
            }
            (Ok(index), Loaded::Ok(spec, _)) => {
                let Some(service) = self.services.get_mut(index) else {
                    return Vec::new();
                };
                if service.spec == spec && !service.is_removable() && !self.shutting_down {
                    if service.is_being_removed() {
                        log::info!(target: name, "file back, keeping it");
                        service.keep();
                    }
                    return Vec::new();
                }
                if self.shutting_down {
                    return Vec::new();
                }
                log::info!(target: name, "definition changed, restarting");
                service.replace(spec, now)
            }
        };
        self.sweep();
        tag(name, actions)
    }

    /// Feeds one event to the service `name`.
    pub fn event(&mut self, name: &str, event: Event, now: Instant) -> Work {
        let Ok(index) = self.index(name) else {
            return Vec::new();
        };
        let Some(service) = self.services.get_mut(index) else {
            return Vec::new();
        };
        let mut actions = service.on(event, now);
        if self.shutting_down {
            // Nothing starts again once going is on its way out.
            actions.retain(|action| *action != Action::Spawn);
            if matches!(service.state, State::Backoff) {
                actions.extend(service.on(Event::Stop, now));
            }
        }
        self.sweep();
        tag(name, actions)
    }

    /// The service whose process (group leader) is `pid`.
    pub fn by_pid(&self, pid: i32) -> Option<&str> {
        self.services
            .iter()
            .find(|s| s.pid == Some(pid))
            .map(Service::name)
    }

    /// Services stopping whose leader is gone but whose group may not be.
    pub fn awaiting_group(&self) -> Work {
        self.services
            .iter()
            .filter(|s| s.state == State::Stopping && s.leader_gone())
            .filter_map(|s| Some((s.name().to_string(), Action::CheckGroup { pid: s.pid? })))
            .collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.services.iter().filter_map(|s| s.deadline).min()
    }

    /// Names of the services whose deadline has come.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| s.deadline.is_some_and(|at| at <= now))
            .map(|s| s.name().to_string())
            .collect()
    }

    /// Stops every service; going exits once [`Supervisor::all_stopped`].
    pub fn shutdown(&mut self, now: Instant) -> Work {
        self.shutting_down = true;
        let mut work = Vec::new();
        for service in &mut self.services {
            let actions = service.on(Event::Stop, now);
            work.extend(tag(service.name(), actions));
        }
        work
    }

    /// A second request to stop: kill what is still there.
    pub fn kill_all(&self) -> Work {
        self.services
            .iter()
            .filter(|s| s.is_active())
            .filter_map(|s| {
                Some((
                    s.name().to_string(),
                    Action::Signal {
                        pid: s.pid?,
                        signal: libc::SIGKILL,
                    },
                ))
            })
            .collect()
    }

    pub fn all_stopped(&self) -> bool {
        !self.services.iter().any(Service::is_active)
    }

    fn sweep(&mut self) {
        self.services.retain(|s| !s.is_removable());
    }
}

fn tag(name: &str, actions: Vec<crate::service::Action>) -> Work {
    actions
        .into_iter()
        .map(|action| (name.to_string(), action))
        .collect()
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

    fn running(sup: &mut Supervisor, now: Instant) {
        sup.event("web", Event::Spawned(42), now);
        sup.event("web", Event::ExecOk, now);
    }

    fn state(sup: &Supervisor) -> Option<State> {
        sup.services().first().map(|s| s.state)
    }

    #[test]
    fn a_new_file_starts_and_an_unchanged_one_does_nothing() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        assert_eq!(
            sup.reconcile("web", ok("/bin/sleep 1"), now),
            vec![("web".into(), Action::Spawn)]
        );
        running(&mut sup, now);
        assert_eq!(sup.reconcile("web", ok("/bin/sleep 1"), now), vec![]);
        assert_eq!(sup.by_pid(42), Some("web"));
    }

    #[test]
    fn a_changed_file_restarts() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.reconcile("web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let work = sup.reconcile("web", ok("/bin/sleep 2"), now);
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
        sup.reconcile("web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let broken = Loaded::Broken {
            file: PathBuf::from("/etc/going.d/web.toml"),
            problems: vec![Problem::new(3, "unknown key \"x\"")],
        };
        assert_eq!(sup.reconcile("web", broken, now), vec![]);
        assert_eq!(state(&sup), Some(State::Running));
        let broken_new = Loaded::Broken {
            file: PathBuf::from("/x/db"),
            problems: vec![],
        };
        assert_eq!(sup.reconcile("db", broken_new, now), vec![]);
        assert_eq!(sup.services().len(), 1);
    }

    #[test]
    fn a_removed_file_stops_then_forgets() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.reconcile("web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let work = sup.reconcile("web", Loaded::Missing, now);
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
        assert_eq!(sup.services().len(), 1);
        let exited = Event::Exited {
            status: crate::service::Exit::Code(0),
            exec_error: None,
        };
        sup.event("web", exited, now);
        sup.event("web", Event::GroupGone, now);
        assert!(sup.services().is_empty());
    }

    #[test]
    fn a_file_put_back_while_stopping_keeps_the_service() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.reconcile("web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        sup.reconcile("web", Loaded::Missing, now);
        assert_eq!(sup.reconcile("web", ok("/bin/sleep 1"), now), vec![]);
        let exited = Event::Exited {
            status: crate::service::Exit::Code(0),
            exec_error: None,
        };
        sup.event("web", exited, now);
        assert_eq!(
            sup.event("web", Event::GroupGone, now),
            vec![("web".into(), Action::Spawn)]
        );
        assert_eq!(sup.services().len(), 1);
    }

    #[test]
    fn shutdown_stops_everything_and_starts_nothing() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.reconcile("web", ok("/bin/sleep 1"), now);
        running(&mut sup, now);
        let work = sup.shutdown(now);
        assert_eq!(work.len(), 2);
        assert!(!sup.all_stopped());
        assert_eq!(sup.reconcile("db", ok("/bin/true"), now), vec![]);
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

    #[test]
    fn deadlines_are_found() {
        let now = Instant::now();
        let mut sup = Supervisor::default();
        sup.reconcile("web", ok("/bin/false"), now);
        running(&mut sup, now);
        let exited = Event::Exited {
            status: crate::service::Exit::Code(1),
            exec_error: None,
        };
        sup.event("web", exited, now);
        let at = now + Duration::from_millis(100);
        assert_eq!(sup.next_deadline(), Some(at));
        assert!(sup.due(now).is_empty());
        assert_eq!(sup.due(at), vec!["web".to_string()]);
    }
}
