//! Follows the service directory with inotify: which service names may
//! have changed, or that everything must be rescanned (queue overflow, the
//! directory replaced or back). Also watches the parent directory, so a
//! deleted, renamed or re-linked DIR is noticed when it returns.

use crate::config;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

pub struct DirWatch {
    inotify: Inotify,
    dir: PathBuf,
    dir_watch: Option<WatchDescriptor>,
    parent_watch: Option<WatchDescriptor>,
    /// With a main command, a missing DIR is normal: say so only at info.
    missing_is_normal: bool,
}

const PARENT_EVENTS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_ONLYDIR);

const DIR_EVENTS: AddWatchFlags = PARENT_EVENTS
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

impl DirWatch {
    /// The inotify instance alone, without a watch (until [`DirWatch::arm`]):
    /// it costs nothing at exit (the kernel's teardown of a watch at close
    /// takes 6 to 20 ms).
    pub fn new(dir: &Path, missing_is_normal: bool) -> Result<DirWatch, String> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|errno| format!("cannot use inotify: {}", errno.desc()))?;
        Ok(DirWatch {
            inotify,
            dir: dir.to_path_buf(),
            dir_watch: None,
            parent_watch: None,
            missing_is_normal,
        })
    }

    /// Watches the parent of `dir`, then `dir` itself. A missing `dir` is
    /// logged and waited for; a missing parent is an error, as nothing
    /// could bring `dir` back.
    pub fn arm(&mut self) -> Result<(), String> {
        let parent = self
            .dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let parent_watch = self
            .inotify
            .add_watch(parent, PARENT_EVENTS)
            .map_err(|errno| format!("cannot watch {}: {}", parent.display(), errno.desc()))?;
        self.parent_watch = Some(parent_watch);
        self.rewatch_dir();
        Ok(())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// (Re)attaches the watch to whatever `dir` names now; true on success.
    fn rewatch_dir(&mut self) -> bool {
        match self.inotify.add_watch(&self.dir, DIR_EVENTS) {
            Ok(wd) => {
                if let Some(old) = self.dir_watch.replace(wd).filter(|old| *old != wd) {
                    let _ = self.inotify.rm_watch(old);
                }
                true
            }
            Err(errno) => {
                let level = if self.missing_is_normal && errno == nix::errno::Errno::ENOENT {
                    log::Level::Info
                } else {
                    log::Level::Warn
                };
                log::log!(
                    level,
                    "cannot watch {}: {}; services keep running until it is back",
                    self.dir.display(),
                    errno.desc()
                );
                self.dir_watch = None;
                false
            }
        }
    }

    /// Watches DIR again if the watch was lost and nothing announced its
    /// return (the target of a symlink back, a mount): for a rescan.
    pub fn rewatch_if_lost(&mut self) {
        // Not armed yet: `arm` watches it.
        if self.dir_watch.is_some() || self.parent_watch.is_none() {
            return;
        }
        if let Ok(wd) = self.inotify.add_watch(&self.dir, DIR_EVENTS) {
            self.dir_watch = Some(wd);
            log::info!("{} is back, watching it again", self.dir.display());
        }
    }

    /// Reads every pending event into `names`, the services whose file may
    /// have been written, renamed or removed (the loader sorts them and
    /// drops repeats); true when the whole directory is to be read again.
    pub fn read(&mut self, names: &mut Vec<String>) -> bool {
        let mut rescan = false;
        loop {
            match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    for event in events {
                        rescan |= self.interpret(&event, names);
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                _ => break,
            }
        }
        rescan
    }

    /// One event: a name for `names`, or true for a rescan.
    fn interpret(&mut self, event: &InotifyEvent, names: &mut Vec<String>) -> bool {
        let mask = event.mask;
        if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            // Events were lost: only a full rescan knows what changed.
            log::warn!("inotify queue overflow, rescanning {}", self.dir.display());
            return true;
        }
        if Some(event.wd) == self.parent_watch && self.parent_watch != self.dir_watch {
            // DIR created, renamed onto, re-linked or removed.
            let back = event.name.as_deref() == self.dir.file_name()
                && mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                && self.rewatch_dir();
            if back {
                log::info!("{} is back, rescanning", self.dir.display());
            }
            return back;
        }
        // After IN_DELETE_SELF, IN_IGNORED follows.
        if Some(event.wd) != self.dir_watch || mask.contains(AddWatchFlags::IN_DELETE_SELF) {
            return false;
        }
        if mask.intersects(AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_IGNORED) {
            // DIR was renamed away or removed; whatever DIR names now, if
            // anything, is what going follows.
            if mask.contains(AddWatchFlags::IN_MOVE_SELF) {
                let _ = self.inotify.rm_watch(event.wd);
            }
            self.dir_watch = None;
            return self.rewatch_dir();
        }
        if mask.contains(AddWatchFlags::IN_ATTRIB) {
            // DIR's own mode or owner changed: it may be readable again.
            // A file's are ignored (they change while it is being written).
            return event.name.is_none();
        }
        let file_name = event.name.as_ref().and_then(|n| n.to_str());
        let Some(file_name) = file_name.filter(|_| !mask.contains(AddWatchFlags::IN_ISDIR)) else {
            return false;
        };
        // A new regular file is still being written: its close will come.
        // Symlinks and hard links are complete when they appear. An
        // editor's save is several events for one file.
        if let Some(name) = config::watched(file_name)
            && (mask != AddWatchFlags::IN_CREATE || self.is_complete_on_creation(file_name))
            && names.last().is_none_or(|last| last != name)
        {
            names.push(name.to_string());
        }
        false
    }

    fn is_complete_on_creation(&self, file_name: &str) -> bool {
        std::fs::symlink_metadata(self.dir.join(file_name)).is_ok_and(|meta| {
            use std::os::unix::fs::MetadataExt;
            meta.file_type().is_symlink() || (meta.is_file() && meta.nlink() > 1)
        })
    }
}
