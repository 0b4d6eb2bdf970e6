//! The service directory as a part of the loop: its inotify watch
//! (`watch.rs`), the files read again when it says they changed, the full
//! rescan (start, SIGHUP, `going reload`), and files that could not be
//! read for want of a resource, read again later. A change of a template
//! reloads the files that use it; one of `Procfile` or `.env`, the
//! Procfile's services (whose unchanged lines then change nothing).

use crate::config;
use crate::part::{Cx, Notice, Part, PollSet};
use crate::watch::DirWatch;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Directory {
    pub dir: PathBuf,
    watch: DirWatch,
    retry: ReadRetry,
    /// With a main command, when the watch is to be made (see `new`).
    watch_at: Option<Instant>,
    /// (service file, template it names), sorted: who a template's
    /// change reloads.
    uses: Vec<(String, String)>,
    /// The names the Procfile defined when it last read: a line removed
    /// stops its service only once the Procfile reads again.
    procfile: Vec<String>,
    /// The Procfile's (or `.env`'s) problem was logged: once per breakage.
    procfile_said: bool,
}

/// With a main command the directory is watched only once it has run this
/// long: a watch costs 6 to 20 ms of the kernel's at exit, three times
/// what all of `going -- /bin/true` costs without it. Nothing is missed:
/// the directory is read again once watched.
const WATCH_DELAY: Duration = Duration::from_millis(100);

/// Service files, and the directory, that could not be read for want of a
/// resource (EMFILE, ENOMEM...): each said so once, and is read again after
/// a delay that doubles while the want lasts.
#[derive(Default)]
struct ReadRetry {
    names: Vec<String>,
    rescan: bool,
    at: Option<Instant>,
    delay: Duration,
}

const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

impl Directory {
    /// Watches `dir`; with a main command (`has_main`) a missing `dir` is
    /// normal, and the watch waits [`WATCH_DELAY`].
    pub fn new(dir: &Path, has_main: bool) -> Result<Directory, String> {
        let mut watch = DirWatch::new(dir, has_main)?;
        if !has_main {
            watch.arm()?;
        }
        Ok(Directory {
            dir: dir.to_path_buf(),
            watch,
            retry: ReadRetry {
                delay: RETRY_FIRST,
                ..ReadRetry::default()
            },
            watch_at: has_main.then(|| Instant::now() + WATCH_DELAY),
            uses: Vec::new(),
            procfile: Vec::new(),
            procfile_said: false,
        })
    }

    /// Loads the files `names` (one inotify read's worth, or a rescan's),
    /// each before anything new starts.
    fn load(&mut self, names: &[String], announce: bool, cx: &mut Cx<'_>) {
        let mut files: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if name == config::PROCFILE || name == config::DOT_ENV {
                files.extend(self.procfile_names(false).unwrap_or_default());
            } else if let Some(template) = name.strip_suffix(config::TEMPLATE_SUFFIX) {
                let users = self.uses.iter().filter(|(_, t)| t == template);
                files.extend(users.map(|(user, _)| user.clone()));
            } else {
                files.push(name.clone());
            }
        }
        crate::util::sort(&mut files);
        files.dedup();
        cx.supervisor.begin_batch(announce);
        for name in &files {
            self.reload(name, cx);
        }
        cx.out.work.extend(cx.supervisor.end_batch(cx.now));
    }

    /// The names to read again for the Procfile: those it defines now and
    /// those it defined before. While it (or `.env`) does not read, none
    /// (`Err` with those it still defines): nothing changes, and one line
    /// says why. `rescan` keeps that line for the rescan's own report.
    fn procfile_names(&mut self, rescan: bool) -> Result<Vec<String>, Vec<String>> {
        let (now, broken) = config::procfile_names(&self.dir).unwrap_or_default();
        if let Some((file, problem)) = broken {
            if !std::mem::replace(&mut self.procfile_said, true) || rescan {
                let at = config::Located(&file, &problem);
                log::error!("{at}, the Procfile's services are left as they are");
            }
            return Err(now);
        }
        self.procfile_said = false;
        let mut names = std::mem::replace(&mut self.procfile, now.clone());
        names.extend(now);
        Ok(names)
    }

    fn reload(&mut self, name: &str, cx: &mut Cx<'_>) {
        let (loaded, template) = config::load_noting(&self.dir, name);
        let known = self
            .uses
            .binary_search_by(|(user, _)| user.as_str().cmp(name));
        if let Ok(at) = known {
            self.uses.remove(at);
        }
        if let Some(template) = template {
            let at = known.unwrap_or_else(|at| at);
            self.uses.insert(at, (name.to_string(), template));
        }
        if matches!(loaded, config::Loaded::Broken { retry: true, .. }) {
            let reported = self.retry.names.iter().any(|n| n == name);
            self.retry.at.get_or_insert(cx.now + self.retry.delay);
            if reported {
                return; // said once; nothing changes until it reads
            }
            self.retry.names.push(name.to_string());
        } else {
            self.retry.names.retain(|n| n != name);
        }
        let work = cx.supervisor.reconcile(name, loaded, cx.now);
        cx.out.work.extend(work);
    }

    /// Rereads every file, and forgets services whose file is gone;
    /// `announce`: each waiting service says again why.
    fn rescan(&mut self, announce: bool, cx: &mut Cx<'_>) {
        self.watch.rewatch_if_lost();
        let on_disk = match config::service_names(&self.dir) {
            Ok(names) => names,
            // The watch has said so already, once.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                if config::is_transient(&err) {
                    self.retry.at.get_or_insert(cx.now + self.retry.delay);
                    if std::mem::replace(&mut self.retry.rescan, true) {
                        return; // said once
                    }
                }
                let why = crate::util::describe_io(&err);
                let dir = self.dir.display();
                log::warn!("cannot read {dir}: {why}; services keep running");
                return;
            }
        };
        self.retry.rescan = false;
        let mut names: Vec<String> = cx.supervisor.names().map(str::to_string).collect();
        names.extend(on_disk);
        // What a Procfile that does not read may define stays as it is.
        if let Err(defined) = self.procfile_names(true) {
            let dir = &self.dir;
            let own_file =
                |n: &str| dir.join(n).is_file() || dir.join(format!("{n}.toml")).is_file();
            let procfile = &self.procfile;
            names.retain(|n| !(defined.contains(n) || procfile.contains(n)) || own_file(n));
        }
        self.load(&names, announce, cx);
    }

    /// The files of the services whose version in effect may have changed:
    /// with `due`, those whose next switch has come; else every one with
    /// versions (the clock was set, maybe back).
    fn reload_versions(&mut self, due: bool, cx: &mut Cx<'_>) {
        let now = config::wall_now();
        let switching = |v: config::VersionState| !due || v.next.is_some_and(|at| at <= now);
        let names: Vec<String> = cx
            .supervisor
            .services()
            .filter(|s| s.spec.extras().versions.is_some_and(switching))
            .map(|s| s.base_name().to_string())
            .collect();
        if !names.is_empty() {
            self.load(&names, false, cx);
        }
    }
}

impl Part for Directory {
    fn fds<'a>(&'a self, set: &mut PollSet<'a>) {
        set.read(self.watch.fd(), 0);
    }

    fn ready(&mut self, _token: u32, _revents: nix::poll::PollFlags, cx: &mut Cx<'_>) {
        let mut names = Vec::new();
        if self.watch.read(&mut names) {
            self.rescan(true, cx);
        } else if !names.is_empty() {
            // One batch for all the files of one read: thousands of new
            // files cost one pass over the services, not one each.
            self.load(&names, false, cx);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [self.retry.at, self.watch_at].into_iter().flatten().min()
    }

    /// Makes the delayed watch; reads again what could not be read for
    /// want of a resource.
    fn due(&mut self, cx: &mut Cx<'_>) {
        if self.watch_at.take_if(|at| *at <= cx.now).is_some() {
            if let Err(why) = self.watch.arm() {
                let dir = self.dir.display();
                log::warn!("{why}; {dir} is read again only on SIGHUP or going reload");
            }
            // What changed before the watch existed.
            self.rescan(false, cx);
        }
        if self.retry.at.take_if(|at| *at <= cx.now).is_none() {
            return;
        }
        // What fails again waits twice as long; once all reads, 1 s again.
        self.retry.delay = (self.retry.delay * 2).min(RETRY_MAX);
        if self.retry.rescan {
            self.rescan(true, cx);
        } else {
            let names = self.retry.names.clone();
            self.load(&names, false, cx);
        }
        if self.retry.at.is_none() {
            self.retry.delay = RETRY_FIRST;
        }
    }

    fn notice(&mut self, notice: Notice, cx: &mut Cx<'_>) {
        match notice {
            Notice::Rescan => self.rescan(true, cx),
            Notice::VersionsDue => self.reload_versions(true, cx),
            Notice::ClockChanged => self.reload_versions(false, cx),
            _ => {}
        }
    }
}
