//! Hook processes: a service's `before`, `stop`, `on-exit`, health-check
//! and ready commands, each a child of the loop with a deadline after
//! which it is killed. A hook whose service moved on is cancelled: killed,
//! and its end is no news for the service.

use crate::config::Readiness;
use crate::part::{Cx, Notice, Part, Started};
use crate::service::{Action, Event, Exit, Hook};
use crate::spawn;
use crate::util::signal_group;
use std::time::Instant;

#[derive(Default)]
pub struct Hooks {
    jobs: Vec<Job>,
}

/// One hook process.
struct Job {
    pid: i32,
    service: String,
    hook: Hook,
    /// When it is killed if still running; `None` once it was.
    kill_at: Option<Instant>,
    /// Killed because its service moved on: its end is not reported.
    cancelled: bool,
    /// Why it could not exec, if it could not.
    exec_failure: Option<String>,
}

impl Hooks {
    /// Starts a hook of `name`; an event for the service only when it
    /// could not even be started.
    fn run(&mut self, name: &str, hook: Hook, env: &[(String, String)], cx: &mut Cx<'_>) {
        if let Err(why) = self.try_run(name, hook, env, cx) {
            if !why.is_empty() {
                log::warn!(target: name, "cannot run {} hook: {why}", hook.name());
            }
            let status = Exit::Code(127);
            cx.event(name, Event::HookDone { hook, status });
        }
    }

    fn try_run(
        &mut self,
        name: &str,
        hook: Hook,
        env: &[(String, String)],
        cx: &mut Cx<'_>,
    ) -> Result<(), String> {
        let spec = &cx.supervisor.get(name).ok_or_else(String::new)?.spec;
        let extras = spec.extras();
        let (argv, timeout) = match hook {
            Hook::Before => (extras.before.clone(), extras.hook_timeout),
            Hook::Stop => (extras.stop_command.clone(), spec.stop_timeout),
            Hook::OnExit => (extras.on_exit.clone(), extras.hook_timeout),
            Hook::Health => match &extras.health_check {
                Some(check) => (Some(check.argv.clone()), check.timeout),
                None => (None, extras.hook_timeout),
            },
            Hook::Ready => match &extras.readiness {
                Some(Readiness::Command { argv, .. }) => (Some(argv.clone()), extras.hook_timeout),
                _ => (None, extras.hook_timeout),
            },
        };
        let argv = argv.ok_or_else(String::new)?;
        // A hook runs as its service does: same user, directory, output.
        let mut hook_spec = spec.clone();
        hook_spec.argv = argv;
        hook_spec.env.extend(env.iter().cloned());
        let mut child = spawn::spawn(&hook_spec, cx.spawn)?;
        let exec_failure = child
            .exec_failure
            .map(|(step, errno)| spawn::describe_failure(step, errno, &hook_spec));
        // Its ready pipe (a copy of the service's settings) means nothing.
        child.ready_pipe = None;
        self.jobs.push(Job {
            pid: child.pid,
            service: name.to_string(),
            hook,
            kill_at: Some(cx.now + timeout),
            cancelled: false,
            exec_failure,
        });
        let name = name.to_string();
        cx.out.started.push(Started {
            name,
            hook: true,
            child,
        });
        Ok(())
    }

    fn cancel(&mut self, name: &str, hook: Hook) {
        for job in &mut self.jobs {
            if job.service == name && job.hook == hook {
                signal_group(job.pid, libc::SIGKILL);
                job.cancelled = true;
            }
        }
    }
}

impl Part for Hooks {
    fn deadline(&self) -> Option<Instant> {
        self.jobs.iter().filter_map(|j| j.kill_at).min()
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        for job in &mut self.jobs {
            if job.kill_at.is_some_and(|at| at <= cx.now) {
                log::warn!(target: &job.service, "{} hook timed out, pid {}, killing it", job.hook.name(), job.pid);
                signal_group(job.pid, libc::SIGKILL);
                job.kill_at = None;
            }
        }
    }

    fn act(&mut self, name: &str, action: &Action, cx: &mut Cx<'_>) -> bool {
        match action {
            Action::RunHook { hook, env } => self.run(name, *hook, env, cx),
            Action::CancelHook { hook } => self.cancel(name, *hook),
            _ => return false,
        }
        true
    }

    fn reaped(&mut self, pid: i32, status: Exit, cx: &mut Cx<'_>) -> bool {
        let Some(index) = self.jobs.iter().position(|j| j.pid == pid) else {
            return false;
        };
        let job = self.jobs.swap_remove(index);
        if let Some(why) = job.exec_failure {
            log::warn!(target: &job.service, "cannot run {} hook: {why}", job.hook.name());
        }
        if !job.cancelled {
            let hook = job.hook;
            cx.event(&job.service, Event::HookDone { hook, status });
        }
        true
    }

    fn notice(&mut self, notice: Notice, _cx: &mut Cx<'_>) {
        if notice == Notice::KillAll {
            for job in &mut self.jobs {
                signal_group(job.pid, libc::SIGKILL);
                job.kill_at = None;
            }
        }
    }

    fn busy(&mut self, _cx: &mut Cx<'_>) -> bool {
        !self.jobs.is_empty()
    }
}
