#!/usr/bin/env python3
"""going against its peers: the benchmark behind `make bench` (issue 6).

Runs every scenario for going and for each peer it applies to (runit, s6,
supervisor; tini, tini-static, dumb-init, catatonit as container inits), in
one run on one machine, and writes BENCH.md.  Python 3 standard library only.

Every latency comes from CLOCK_MONOTONIC stamps: the service is the tiny
static helper bench/stamp.c, which appends "<ns> <pid> <tag>" to a shared
file as the first thing its main() does; the driver takes its own stamp
right before the kill(2), rename(2), exec or signal that causes the event.
The driver only polls the stamp file to know when to go on: how often it
polls never changes a figure.  What it does on its core right after the
cause can: for the container's signals, which take tens of microseconds,
the sender is the helper itself (`stamp ... send`), blocked in inotify
right after each kill, and the Python driver's figure is kept beside it.

Environment knobs (defaults in brackets):
  GOING            binary to measure [./going]
  OUT              report to write [BENCH.md]
  SCENARIOS        comma-separated subset of: memory, respawn, crash, reload,
                   startup, container, scale, leak, schedule [all]
  PEERS            comma-separated subset of: runit, s6, supervisor, tini,
                   tini-static, dumb-init, catatonit, and floor and
                   floor-sigwait (the references of bench/floor.c) [all
                   that are installed]
  ROUNDS           if set, the number of rounds of every scenario
  QUICK=1          a quick run: fewer rounds and samples (about 6 minutes)
  NO_INSTALL=1     do not apt-get install missing peers
  MEM_ROUNDS [3]   COUNTS [1,100,1000]   IDLE_SECS [10]
  RESPAWN_ROUNDS [3]   RESPAWN_SERVICES [15]
  CRASH_ROUNDS [2]     CRASH_SECS [30]
  RELOAD_ROUNDS [3]    RELOAD_SAMPLES [10]
  STARTUP_ROUNDS [5]   STARTUP_N [100]
  CONTAINER_ROUNDS [9] ORPHANS [10000] WALL_SAMPLES [50] (per round)
  SIGNAL_ROUNDS [15]   SIG_SAMPLES [50] (per round and sender)
  SCALE_ROUNDS [3]     SCALE_N [1000]
  LEAK_COUNT [10000]

Text of an existing BENCH.md after the line "<!-- kept by scripts/bench.sh -->"
is carried over to the new one.  Raw results also go to target/bench/results.json.
"""

import ctypes
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "target", "bench")
STAMP = os.path.join(BUILD, "stamp")
FLOOR = os.path.join(BUILD, "floor")
KEEP_MARK = "<!-- kept by scripts/bench.sh -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


QUICK = os.environ.get("QUICK") == "1"
ROUNDS = os.environ.get("ROUNDS")


def rounds(name, default, quick):
    if ROUNDS:
        return int(ROUNDS)
    return env_int(name, quick if QUICK else default)


CFG = {
    "mem_rounds": rounds("MEM_ROUNDS", 3, 1),
    "counts": [int(c) for c in os.environ.get("COUNTS", "1,100,1000").replace(",", " ").split()],
    "idle_secs": env_int("IDLE_SECS", 10),
    "respawn_rounds": rounds("RESPAWN_ROUNDS", 3, 1),
    "respawn_services": env_int("RESPAWN_SERVICES", 10 if QUICK else 15),
    "crash_rounds": rounds("CRASH_ROUNDS", 2, 1),
    "crash_secs": env_int("CRASH_SECS", 15 if QUICK else 30),
    "reload_rounds": rounds("RELOAD_ROUNDS", 3, 1),
    "reload_samples": env_int("RELOAD_SAMPLES", 5 if QUICK else 10),
    "startup_rounds": rounds("STARTUP_ROUNDS", 5, 2),
    "startup_n": env_int("STARTUP_N", 100),
    "container_rounds": rounds("CONTAINER_ROUNDS", 9, 2),
    "signal_rounds": rounds("SIGNAL_ROUNDS", 15, 3),
    "sig_samples": env_int("SIG_SAMPLES", 50),
    "orphans": env_int("ORPHANS", 10000),
    "wall_samples": env_int("WALL_SAMPLES", 20 if QUICK else 50),
    "scale_rounds": rounds("SCALE_ROUNDS", 3, 1),
    "scale_n": env_int("SCALE_N", 1000),
    "leak_count": env_int("LEAK_COUNT", 1000 if QUICK else 10000),
    "schedule_samples": env_int("SCHEDULE_SAMPLES", 5 if QUICK else 10),
}

SCENARIOS = ["memory", "respawn", "crash", "reload", "startup", "container", "scale", "leak",
             "schedule"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def now():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Timeout(Exception):
    pass


def wait_until(cond, timeout, what, interval=0.001):
    """Polls cond() until true; Timeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout(what() if callable(what) else what)
        time.sleep(interval)


# --- /proc ------------------------------------------------------------------

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def children(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        out.extend(int(p) for p in read(f"/proc/{pid}/task/{tid}/children").split())
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


def comm(pid):
    return read(f"/proc/{pid}/comm").strip()


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    text = read(f"/proc/{pid}/stat")
    return text[text.rfind(")") + 2:].split() if text else []


def pstate(pid):
    fields = stat_fields(pid)
    return fields[0] if fields else ""


def cpu_ticks(pid):
    """utime + stime of PID (all its threads), in clock ticks."""
    fields = stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def status_kb(pid, key):
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pss_kb(pid):
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def ctxt(pid):
    """Voluntary + nonvoluntary context switches of every thread of PID."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        for line in read(f"/proc/{pid}/task/{tid}/status").splitlines():
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def memory(pids):
    return {
        "peak": sum(status_kb(p, "VmPeak") for p in pids),
        "rss": sum(status_kb(p, "VmRSS") for p in pids),
        "pss": sum(pss_kb(p) for p in pids),
        "procs": len(pids),
    }


def on_cpu_ns(pid):
    """Time the process has spent on a CPU (/proc/PID/schedstat), in ns."""
    fields = read(f"/proc/{pid}/schedstat").split()
    return int(fields[0]) if fields else 0


def settle(procs, timeout=30):
    """Waits until every process procs() names is asleep, with no context
    switch in between, on 5 samples 20 ms apart in a row."""
    deadline = time.monotonic() + timeout
    streak = 0
    last = None
    while streak < 5:
        pids = procs()
        switches = (tuple(pids), sum(ctxt(p) for p in pids))
        if pids and all(pstate(p) in ("S", "I") for p in pids) and switches == last:
            streak += 1
        else:
            streak = 0
        last = switches
        if time.monotonic() > deadline:
            raise Timeout("supervisor never went idle")
        time.sleep(0.02)


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_all_descendants():
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [p for p in descendants(os.getpid()) if pstate(p) not in ("", "Z")]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
        reap_all()
    reap_all()


# --- stamps -----------------------------------------------------------------

class Stamps:
    """The shared stamp file: "<ns> <pid> <tag>" lines, read as they come."""

    def __init__(self, path):
        self.path = path
        open(path, "w").close()
        self.fd = os.open(path, os.O_RDONLY)
        self.offset = 0
        self.rest = b""
        self.lines = []          # (ns, pid, tag) in file order
        self.by_tag = {}         # tag -> [(ns, pid)]

    def close(self):
        os.close(self.fd)

    def poll(self):
        while True:
            data = os.pread(self.fd, 1 << 20, self.offset)
            if not data:
                break
            self.offset += len(data)
            data = self.rest + data
            *complete, self.rest = data.split(b"\n")
            for raw in complete:
                ns, pid, tag = raw.decode().split(" ", 2)
                entry = (int(ns), int(pid), tag)
                self.lines.append(entry)
                self.by_tag.setdefault(tag, []).append(entry[:2])
        return len(self.lines)

    def count(self, tag):
        self.poll()
        return len(self.by_tag.get(tag, ()))

    def last(self, tag):
        self.poll()
        return self.by_tag[tag][-1]

    def wait_count(self, tag, n, timeout, interval=0.001):
        """Waits for the n-th stamp of tag; returns (ns, pid) of it."""
        wait_until(lambda: self.count(tag) >= n, timeout,
                   f"stamp {tag} #{n} not seen within {timeout} s", interval)
        return self.by_tag[tag][n - 1]

    def wait_tags(self, tags, timeout, interval=0.005):
        """Waits until every tag has at least one stamp."""
        tags = list(tags)

        def done():
            self.poll()
            return all(t in self.by_tag for t in tags)
        wait_until(done, timeout, lambda: f"{sum(t not in self.by_tag for t in tags)} of "
                   f"{len(tags)} services never started within {timeout} s", interval)


def svc_argv(stamps, tag, *mode):
    return [STAMP, stamps.path, tag] + list(mode)


# --- the supervisors ----------------------------------------------------------

def write_atomic(path, text, mode=0o644):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


class Supervisor:
    """One supervisor under test, in its own work directory."""
    name = "?"
    add_how = change_how = ""

    def __init__(self, work):
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.proc = None
        self.log = open(os.path.join(work, "supervisor.log"), "wb")
        self.clients = []

    def command(self):
        raise NotImplementedError

    def start(self, exec_stamps=None):
        """Starts it; with exec_stamps, through `stamp exec` so that the
        exec of the supervisor is stamped ("supervisor-exec")."""
        cmd = self.command()
        if exec_stamps is not None:
            cmd = [STAMP, exec_stamps.path, "supervisor-exec", "exec"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, start_new_session=True, cwd=self.work)

    @property
    def pid(self):
        return self.proc.pid

    def procs(self):
        return [self.pid]

    def client(self, argv):
        """Runs the peer's own control command without waiting for it."""
        self.clients.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                             stdout=self.log, stderr=self.log))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        kill_all_descendants()
        for c in self.clients:
            try:
                c.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        self.log.close()


class Going(Supervisor):
    name = "going"
    add_how = "rename NAME.toml into DIR (inotify; nothing else)"
    change_how = "rename a new NAME.toml over the old one (inotify; nothing else)"

    def __init__(self, work):
        super().__init__(work)
        self.dir = os.path.join(work, "going.d")
        os.makedirs(self.dir, exist_ok=True)
        # The socket and the state file beside it go to a runtime dir, as
        # /run/going.sock would: on tmpfs, and not in the parent of the
        # service dir (which going watches, so that its own state writes
        # would wake it up).
        self.sock = os.path.join(RUNDIR, f"going-{time.monotonic_ns()}.sock")

    def command(self):
        return [GOING, "-l", "stderr", "-d", self.dir, "-s", self.sock]

    def text(self, argv):
        return "cmd = [" + ", ".join(json.dumps(a) for a in argv) + "]\n"

    def define(self, name, argv):
        with open(os.path.join(self.dir, name + ".toml"), "w") as f:
            f.write(self.text(argv))

    def add(self, name, argv):
        tmp = os.path.join(self.dir, "." + name + ".new")
        with open(tmp, "w") as f:
            f.write(self.text(argv))
        t0 = now()
        os.rename(tmp, os.path.join(self.dir, name + ".toml"))
        return t0

    change = add

    def request(self, line):
        """One request on the control socket; going's reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode()


class Floor(Supervisor):
    """bench/floor.c: the least a supervisor of going's design does; a
    reference, used in the respawn scenario only."""
    name = "floor"

    def __init__(self, work):
        super().__init__(work)
        self.dir = os.path.join(work, "floor.d")
        os.makedirs(self.dir, exist_ok=True)

    def command(self):
        return [FLOOR, "respawn", self.dir]

    def define(self, name, argv):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write("\n".join(argv) + "\n")


def run_script(argv):
    return "#!/bin/sh\nexec " + " ".join(argv) + "\n"


class Runit(Supervisor):
    name = "runit"
    add_how = "rename the service dir into the scanned dir; runsvdir rescans every 5 s"
    change_how = "rename a new `run` over the old one, then `sv restart DIR/NAME`"

    def __init__(self, work):
        super().__init__(work)
        self.scan = os.path.join(work, "service")
        self.stage = os.path.join(work, "stage")
        os.makedirs(self.scan, exist_ok=True)
        os.makedirs(self.stage, exist_ok=True)

    def command(self):
        return [shutil.which("runsvdir"), self.scan]

    def procs(self):
        return [self.pid] + [c for c in children(self.pid) if comm(c) == "runsv"]

    def define(self, name, argv, where=None):
        d = os.path.join(where or self.scan, name)
        os.makedirs(d, exist_ok=True)
        write_atomic(os.path.join(d, "run"), run_script(argv), 0o755)

    def add(self, name, argv):
        self.define(name, argv, self.stage)
        t0 = now()
        os.rename(os.path.join(self.stage, name), os.path.join(self.scan, name))
        return t0

    def change(self, name, argv):
        d = os.path.join(self.scan, name)
        tmp = os.path.join(d, "run.new")
        with open(tmp, "w") as f:
            f.write(run_script(argv))
        os.chmod(tmp, 0o755)
        t0 = now()
        os.rename(tmp, os.path.join(d, "run"))
        self.client([shutil.which("sv"), "restart", d])
        return t0


class S6(Supervisor):
    name = "s6"
    add_how = "rename the service dir into the scan dir, then `s6-svscanctl -a`"
    change_how = "rename a new `run` over the old one, then `s6-svc -r DIR/NAME`"

    def __init__(self, work):
        super().__init__(work)
        self.scan = os.path.join(work, "scan")
        self.stage = os.path.join(work, "stage")
        os.makedirs(self.scan, exist_ok=True)
        os.makedirs(self.stage, exist_ok=True)

    def command(self):
        # s6-svscan refuses more than 500 services unless told (-c).
        n = len(os.listdir(self.scan))
        return [shutil.which("s6-svscan")] + (["-c", str(2 * n)] if n > 400 else []) + [self.scan]

    def procs(self):
        return [self.pid] + [c for c in children(self.pid) if comm(c) == "s6-supervise"]

    define = Runit.define

    def add(self, name, argv):
        self.define(name, argv, self.stage)
        t0 = now()
        os.rename(os.path.join(self.stage, name), os.path.join(self.scan, name))
        self.client([shutil.which("s6-svscanctl"), "-a", self.scan])
        return t0

    def change(self, name, argv):
        d = os.path.join(self.scan, name)
        tmp = os.path.join(d, "run.new")
        with open(tmp, "w") as f:
            f.write(run_script(argv))
        os.chmod(tmp, 0o755)
        t0 = now()
        os.rename(tmp, os.path.join(d, "run"))
        self.client([shutil.which("s6-svc"), "-r", d])
        return t0


class Supervisord(Supervisor):
    name = "supervisor"
    add_how = "rename NAME.conf into the [include] dir, then `supervisorctl update`"
    change_how = "rename a new NAME.conf over the old one, then `supervisorctl update`"
    SETTINGS = "autorestart=true, startsecs=0, stdout/stderr_logfile=NONE"

    def __init__(self, work):
        super().__init__(work)
        self.confd = os.path.join(work, "conf.d")
        os.makedirs(self.confd, exist_ok=True)
        self.conf = os.path.join(work, "supervisord.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[unix_http_server]
file={work}/supervisor.sock

[supervisord]
nodaemon=true
logfile={work}/supervisord.log
pidfile={work}/supervisord.pid
childlogdir={work}
minfds=8192
minprocs=4096

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{work}/supervisor.sock

[include]
files = {self.confd}/*.conf
""")

    def command(self):
        return [shutil.which("supervisord"), "-n", "-c", self.conf]

    def text(self, name, argv):
        return (f"[program:{name}]\ncommand={' '.join(argv)}\nautostart=true\n"
                "autorestart=true\nstartsecs=0\nstopsignal=TERM\nstopwaitsecs=2\n"
                "stdout_logfile=NONE\nstderr_logfile=NONE\n")

    def define(self, name, argv):
        with open(os.path.join(self.confd, name + ".conf"), "w") as f:
            f.write(self.text(name, argv))

    def add(self, name, argv):
        tmp = os.path.join(self.confd, "." + name + ".new")
        with open(tmp, "w") as f:
            f.write(self.text(name, argv))
        t0 = now()
        os.rename(tmp, os.path.join(self.confd, name + ".conf"))
        self.client([shutil.which("supervisorctl"), "-c", self.conf, "update"])
        return t0

    change = add


SUPERVISORS = {"going": Going, "runit": Runit, "s6": S6, "supervisor": Supervisord}
# References, not peers: in the scenarios that say so, never the best peer.
REFERENCES = {"floor": Floor}


# --- peers: install, versions --------------------------------------------------

PACKAGES = {  # Debian package -> (peer names, binaries)
    "tini": (["tini", "tini-static"], ["tini", "tini-static"]),
    "dumb-init": (["dumb-init"], ["dumb-init"]),
    "catatonit": (["catatonit"], ["catatonit"]),
    "runit": (["runit"], ["runsvdir", "runsv", "sv"]),
    "s6": (["s6"], ["s6-svscan", "s6-supervise", "s6-svscanctl", "s6-svc"]),
    "supervisor": (["supervisor"], ["supervisord", "supervisorctl"]),
}
NOT_PACKAGED = {"horust": "not packaged in Debian 12 (bookworm); not measured"}
SKIPPED = {}      # peer -> why


def daemon_pids():
    """Pids of system-wide supervisors that a package's postinst may start."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit() and comm(int(d)) in ("runsvdir", "runsv", "supervisord", "s6-svscan"):
            out.add(int(d))
    return out


def apt_install(packages, present):
    """apt-get install of those packages that present(pkg) says are missing,
    one at a time (one that cannot be had does not stop the others); once
    more after an `apt-get update` if some are still missing."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        if attempt:
            subprocess.run(["apt-get", "-q", "update"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        still = [p for p in packages if not present(p)]
        if not still:
            return
        for pkg in still:
            subprocess.run(["apt-get", "-q", "-o", "Dpkg::Use-Pty=0", "install", "-y",
                            "--no-install-recommends", pkg], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_peers():
    missing = [pkg for pkg, (_, bins) in PACKAGES.items()
               if not all(shutil.which(b) for b in bins)]
    if missing and os.environ.get("NO_INSTALL") != "1":
        if os.geteuid() != 0:
            log(f"not root: cannot install {' '.join(missing)}")
        else:
            log(f"installing {' '.join(missing)} (apt-get)")
            # No package may start a system-wide daemon during the install.
            policy = "/usr/sbin/policy-rc.d"
            made_policy = not os.path.exists(policy)
            if made_policy:
                with open(policy, "w") as f:
                    f.write("#!/bin/sh\n# bench/bench.py: no daemon starts during its install\nexit 101\n")
                os.chmod(policy, 0o755)
            before = daemon_pids()
            try:
                apt_install(missing, lambda p: all(shutil.which(b) for b in PACKAGES[p][1]))
            finally:
                if made_policy:
                    os.unlink(policy)
            for pid in daemon_pids() - before:
                log(f"stopping {comm(pid)} (pid {pid}) that a package started")
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    for pkg, (peers, bins) in PACKAGES.items():
        if not all(shutil.which(b) for b in bins):
            for peer in peers:
                SKIPPED[peer] = f"Debian package {pkg} could not be installed"
    strays = daemon_pids()
    if strays:
        log("warning: other supervisors are running on this machine: "
            + ", ".join(f"{comm(p)} ({p})" for p in sorted(strays)))


def version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "not installed"


def wanted(peer):
    if peer in SKIPPED:
        return False
    names = os.environ.get("PEERS")
    return peer == "going" or not names or peer in names.split(",")


def helper_compiler():
    """musl-gcc when it is there or can be installed: a musl static helper
    starts in about a quarter of the time of a glibc static one, and that
    start-up is part of every latency here."""
    if not shutil.which("musl-gcc") and os.environ.get("NO_INSTALL") != "1" and os.geteuid() == 0:
        log("installing musl-tools (apt-get) for the stamp helper")
        apt_install(["musl-tools"], lambda _: shutil.which("musl-gcc"))
    if shutil.which("musl-gcc"):
        return "musl-gcc"
    log("musl-gcc not available: the stamp helper is a glibc static build, "
        "which adds about 0.35 ms to every latency")
    return os.environ.get("CC", "cc")


def build_stamp():
    """The stamp helper and the floor reference (bench/*.c), static; the
    compiler used is remembered beside them, and a change rebuilds them."""
    os.makedirs(BUILD, exist_ok=True)
    cc = helper_compiler()
    made_with = os.path.join(BUILD, "cc")
    rebuild = read(made_with).strip() != cc
    for name, out in (("stamp", STAMP), ("floor", FLOOR)):
        src = os.path.join(ROOT, "bench", name + ".c")
        if rebuild or not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            log(f"building bench/{name}.c ({cc} -O2 -static)")
            subprocess.run([cc, "-O2", "-static", "-o", out, src], check=True)
    with open(made_with, "w") as f:
        f.write(cc + "\n")
    return cc


def helper_cost(samples=200):
    """The helper's own share of every latency: a C parent's clock read
    before vfork(2) + exec of the helper -> the helper's stamp; median and
    p10-p90 in ms."""
    path = os.path.join(WORK, "self-stamps")
    r = subprocess.run([STAMP, path, "h", "self", str(samples)])
    before, after = [], []
    for line in read(path).splitlines():
        ns, _, tag = line.split()
        if tag in ("h-before", "h-self"):
            (before if tag == "h-before" else after).append(int(ns))
    os.unlink(path)
    if r.returncode != 0 or len(before) != len(after) or not before:
        return None
    d = [(a - b) / 1e6 for a, b in zip(after, before)]
    return {"median": statistics.median(d), "p10": pct(d, 10), "p90": pct(d, 90), "n": len(d)}


# --- statistics and formatting ----------------------------------------------------

def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "p10": pct(values, 10), "p90": pct(values, 90), "n": len(values)}


def ms(ns):
    return ns / 1e6


# --- scenarios ----------------------------------------------------------------

class Run:
    """A supervisor started on a fresh work dir and stopped on exit."""

    def __init__(self, kind, tag):
        self.work = os.path.join(WORK, f"{kind}-{tag}-{time.monotonic_ns()}")
        os.makedirs(self.work)
        self.stamps = Stamps(os.path.join(self.work, "stamps"))
        self.sup = {**SUPERVISORS, **REFERENCES}[kind](os.path.join(self.work, "sup"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sup.stop()
        self.stamps.close()
        shutil.rmtree(self.work, ignore_errors=True)


def start_with(kind, tag, n, mode=("pause",), exec_stamp=False):
    """A Run of kind with services s0..s{n-1}, started; all running."""
    run = Run(kind, tag)
    for i in range(n):
        run.sup.define(f"s{i}", svc_argv(run.stamps, f"s{i}", *mode))
    run.sup.start(run.stamps if exec_stamp else None)
    return run


def rounds_of(kinds, count, label, one):
    """Runs one(kind, round) for every kind in every round, the kinds
    interleaved, so that a change of load on the machine hits them alike,
    and each round starting one further along the list, so that no kind is
    always the one right after another's teardown."""
    for r in range(count):
        shift = r % len(kinds) if kinds else 0
        for kind in kinds[shift:] + kinds[:shift]:
            t = time.monotonic()
            one(kind, r)
            log(f"{label} {kind} round {r + 1}/{count} done in {time.monotonic() - t:.1f} s")


def sc_memory(kinds):
    """memory + idle: VmPeak, VmRSS (and Pss) summed over all supervisor
    processes with 1, 100, 1000 sleeping services, once all have exec'd and
    the supervisor is asleep; with 100 services, also the context switches
    (all threads, voluntary + nonvoluntary) and CPU ticks over IDLE_SECS."""
    res = {kind: {n: [] for n in CFG["counts"]} for kind in kinds}
    for n in CFG["counts"]:
        def one(kind, r):
            with start_with(kind, f"mem{n}", n) as run:
                run.stamps.wait_tags([f"s{i}" for i in range(n)], 60 + n / 10)
                settle(run.sup.procs, 60)
                m = memory(run.sup.procs())
                if n == 100:
                    # The window starts 1 s after the supervisor went to
                    # sleep, once what startup leaves behind is done.
                    time.sleep(1.0)
                    pids = run.sup.procs()
                    c0, t0 = sum(ctxt(p) for p in pids), sum(cpu_ticks(p) for p in pids)
                    time.sleep(CFG["idle_secs"])  # the observation window
                    m["ctxt"] = sum(ctxt(p) for p in pids) - c0
                    m["idle_ticks"] = sum(cpu_ticks(p) for p in pids) - t0
                res[kind][n].append(m)
                log(f"memory {kind} N={n}: {m}")
        rounds_of(kinds, CFG["mem_rounds"], f"memory N={n}", one)
    return res


def sc_respawn(kinds):
    """respawn: RESPAWN_SERVICES services run for 6.5 s (going counts a run
    of 5 s or more as long); then, one at a time, the driver stamps and
    SIGKILLs one and waits for its new instance's stamp.  The figure is
    driver stamp before kill(2) -> stamp of the new exec, an upper bound on
    death -> exec (it includes the kernel delivering the kill)."""
    res = {kind: [] for kind in kinds}
    n = CFG["respawn_services"]

    def one(kind, r):
        with start_with(kind, "respawn", n) as run:
            tags = [f"s{i}" for i in range(n)]
            run.stamps.wait_tags(tags, 60)
            settle(run.sup.procs)
            time.sleep(6.5)
            for tag in tags:
                seen = run.stamps.count(tag)
                _, pid = run.stamps.last(tag)
                t0 = now()
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    log(f"respawn {kind}: {tag} (pid {pid}) had already ended; sample skipped")
                    continue
                ns, _ = run.stamps.wait_count(tag, seen + 1, 20)
                res[kind].append(ns - t0)
                time.sleep(0.05)
        log(f"respawn {kind}: median so far {ms(statistics.median(res[kind])):.3f} ms")
    rounds_of(kinds, CFG["respawn_rounds"], "respawn", one)
    return res


def sc_crash(kinds):
    """crash loop: one service that exits 1 at once.  From its first stamp,
    CRASH_SECS seconds: the number of starts, and the supervisor processes'
    utime+stime (/proc/PID/stat) as % of one core.  Also the first restart:
    first stamp -> second stamp (the run itself lasts microseconds)."""
    res = {kind: [] for kind in kinds}
    secs = CFG["crash_secs"]

    def one(kind, r):
        with Run(kind, "crash") as run:
            run.sup.define("crash", svc_argv(run.stamps, "crash", "exit", "1"))
            run.sup.start()
            first, _ = run.stamps.wait_count("crash", 1, 30)
            pids = run.sup.procs()
            c0, w0 = sum(cpu_ticks(p) for p in pids), now()
            end = first + secs * 10**9
            while now() < end:
                time.sleep(min(0.5, max(0.001, (end - now()) / 1e9)))
            pids = set(pids) | set(run.sup.procs())
            c1, w1 = sum(cpu_ticks(p) for p in pids), now()
            run.stamps.poll()
            starts = [ns for ns, _ in run.stamps.by_tag["crash"] if ns <= end]
            row = {"starts": len(starts),
                   "cpu_pct": 100.0 * (c1 - c0) / CLK_TCK / ((w1 - w0) / 1e9),
                   "first_restart": starts[1] - starts[0] if len(starts) > 1 else None}
            res[kind].append(row)
            log(f"crash {kind}: {row}")
    rounds_of(kinds, CFG["crash_rounds"], "crash", one)
    return res


def sc_reload(kinds):
    """reload: RELOAD_SAMPLES new services added one at a time, each the
    peer's own way (add_how); driver stamp before the rename -> the new
    service's stamp.  Then (once each has run over 1 s, since runsv and
    s6-supervise wait 1 s between two starts) each definition is changed
    (change_how): driver stamp before the rename -> stamp of the new
    definition's tag."""
    res = {kind: {"add": [], "change": []} for kind in kinds}

    def one(kind, r):
        add, change = res[kind]["add"], res[kind]["change"]
        with Run(kind, "reload") as run:
            run.sup.define("base", svc_argv(run.stamps, "base", "pause"))
            run.sup.start()
            run.stamps.wait_count("base", 1, 30)
            settle(run.sup.procs)
            names = [f"add{i}" for i in range(CFG["reload_samples"])]
            for name in names:
                t0 = run.sup.add(name, svc_argv(run.stamps, name, "pause"))
                ns, _ = run.stamps.wait_count(name, 1, 30)
                add.append(ns - t0)
                time.sleep(0.05)
            time.sleep(1.2)
            for name in names:
                t0 = run.sup.change(name, svc_argv(run.stamps, name + "-v2", "pause"))
                ns, _ = run.stamps.wait_count(name + "-v2", 1, 30)
                change.append(ns - t0)
                time.sleep(0.05)
        log(f"reload {kind}: add median so far {ms(statistics.median(add)):.3f} ms, "
            f"change median {ms(statistics.median(change)):.3f} ms")
    rounds_of(kinds, CFG["reload_rounds"], "reload", one)
    return res


def sc_startup(kinds):
    """startup: exec of the supervisor (stamped by `stamp exec`) until the
    last of STARTUP_N services has stamped."""
    res = {kind: [] for kind in kinds}
    n = CFG["startup_n"]

    def one(kind, r):
        with start_with(kind, "startup", n, exec_stamp=True) as run:
            tags = [f"s{i}" for i in range(n)]
            run.stamps.wait_tags(tags, 60)
            t0, _ = run.stamps.last("supervisor-exec")
            res[kind].append(max(run.stamps.by_tag[t][0][0] for t in tags) - t0)
        log(f"startup {kind}: {ms(res[kind][-1]):.2f} ms")
    rounds_of(kinds, CFG["startup_rounds"], "startup", one)
    return res


def sc_scale(kinds):
    """scale: SCALE_N services run for 6.5 s; the driver stamps, then
    SIGKILLs all of them (one kill(2) each, in a loop); the figure is the
    stamp of the last new instance minus the driver's stamp."""
    res = {kind: [] for kind in kinds}
    n = CFG["scale_n"]

    def one(kind, r):
        with start_with(kind, "scale", n) as run:
            tags = [f"s{i}" for i in range(n)]
            run.stamps.wait_tags(tags, 120)
            settle(run.sup.procs, 60)
            time.sleep(6.5)
            run.stamps.poll()
            seen = {t: len(run.stamps.by_tag[t]) for t in tags}
            pids = [run.stamps.last(t)[1] for t in tags]
            t0 = now()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            t1 = now()

            def back():
                run.stamps.poll()
                return all(len(run.stamps.by_tag[t]) > seen[t] for t in tags)
            wait_until(back, 120, f"not all {n} services came back", 0.005)
            news = [run.stamps.by_tag[t][seen[t]][0] - t0 for t in tags]
            res[kind].append({"all": max(news), "median": statistics.median(news), "kill_loop": t1 - t0})
            log(f"scale {kind}: all back in {ms(max(news)):.1f} ms")
    rounds_of(kinds, CFG["scale_rounds"], "scale", one)
    return res


INITS = {
    "going": lambda empty, cmd: [GOING, "-l", "stderr", "-d", empty, "--"] + cmd,
    "tini": lambda empty, cmd: [shutil.which("tini") or "tini", "--"] + cmd,
    "tini-static": lambda empty, cmd: [shutil.which("tini-static") or "tini-static", "--"] + cmd,
    "dumb-init": lambda empty, cmd: [shutil.which("dumb-init") or "dumb-init"] + cmd,
    "catatonit": lambda empty, cmd: [shutil.which("catatonit") or "catatonit", "--"] + cmd,
    "floor": lambda empty, cmd: [FLOOR, "init"] + cmd,
    "floor-sigwait": lambda empty, cmd: [FLOOR, "sigwait"] + cmd,
}
# Reference rows (bench/floor.c), never counted as a peer.
NOT_PEERS = ("going", "floor", "floor-sigwait")


class Init:
    """INIT -- CMD as PID 1 of a new PID namespace (unshare --pid --fork --mount-proc)."""

    def __init__(self, kind, mode):
        self.work = os.path.join(WORK, f"init-{kind}-{time.monotonic_ns()}")
        os.makedirs(os.path.join(self.work, "empty"))
        self.stamps = Stamps(os.path.join(self.work, "stamps"))
        cmd = INITS[kind](os.path.join(self.work, "empty"), svc_argv(self.stamps, "main", *mode))
        self.log = open(os.path.join(self.work, "init.log"), "wb")
        self.unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc"] + cmd,
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                        start_new_session=True)
        self.stamps.wait_count("main", 1, 30)
        self.pid = wait_until(lambda: (children(self.unshare.pid) or [None])[0], 10, "no init")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.unshare.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        kill_all_descendants()
        self.stamps.close()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def sc_container(kinds):
    """container: each init as PID 1 of a new PID namespace with the stamp
    helper as its main command.
    - signals (SIGNAL_ROUNDS rounds, a new namespace each, since where the
      scheduler first puts the init and its child sets a round's level):
      the helper waits in sigwaitinfo; a sender stamps, sends SIGUSR1 to
      the init (its host pid), and the helper stamps on receipt.
      SIG_SAMPLES signals from `stamp ... send` (C, blocked in inotify
      right after each kill), then as many from this Python driver, which
      stays busy on its core after each kill.
    - orphans: the helper forks a child that forks ORPHANS grandchildren and
      exits, so they are reparented to the init; the helper stamps ("burst")
      and lets all of them exit at once, then checks each pid with
      kill(pid, 0) (a zombie still answers) and stamps ("reaped") once
      none is left: the init has reaped them all.
    - zombies: the same, but the grandchildren have exited before their
      parent does, so the init inherits ORPHANS zombies at once: this one
      is the init's reaping alone, without the kernel's work of the exits.
    - memory: VmPeak and VmRSS of the init with one sleeping child.
    - wall: `INIT -- /bin/true` as a plain process, as `hyperfine -N` runs
      it: from the spawn to the init reaped, WALL_SAMPLES a round after 10
      not counted; the round's median."""
    res = {kind: {"signal": [], "signal_rounds": [], "signal_py": [], "reap": [], "reap_cpu": [],
                  "zombies": [], "zombies_cpu": [], "memory": [], "wall": []} for kind in kinds}
    n = CFG["sig_samples"]

    def signals(kind, r):
        d = res[kind]
        with Init(kind, ("signals",)) as init:
            init.stamps.wait_count("main-ready", 1, 10)
            time.sleep(0.05)
            subprocess.run([STAMP, init.stamps.path, "sender", "send", str(init.pid), str(n), "5000"],
                           check=True, timeout=60 + n, stdin=subprocess.DEVNULL)
            init.stamps.wait_count("sender-sent", n, 10)
            got = [ns for ns, _ in init.stamps.by_tag["main-USR1"][:n]]
            this = [b - a for (a, _), b in zip(init.stamps.by_tag["sender-sent"], got)]
            d["signal"].extend(this)
            d["signal_rounds"].append(statistics.median(this))
            for i in range(n):
                t0 = now()
                os.kill(init.pid, signal.SIGUSR1)
                ns, _ = init.stamps.wait_count("main-USR1", n + i + 1, 10)
                d["signal_py"].append(ns - t0)
                time.sleep(0.005)
        log(f"container {kind}: signal median {ms(d['signal_rounds'][-1]):.3f} ms "
            f"(Python sender {ms(statistics.median(d['signal_py'][-n:])):.3f} ms)")

    def wall(kind):
        empty = os.path.join(WORK, f"wall-{kind}")
        os.makedirs(empty, exist_ok=True)
        argv = INITS[kind](empty, ["/bin/true"])
        quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
        took = []
        for i in range(10 + CFG["wall_samples"]):
            t0 = now()
            pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=quiet)
            os.waitpid(pid, 0)
            if i >= 10:
                took.append(now() - t0)
        return statistics.median(took)

    def reaping(kind, r):
        d = res[kind]
        d["wall"].append(wall(kind))
        for mode, key in (("orphans", "reap"), ("zombies", "zombies")):
            with Init(kind, (mode, str(CFG["orphans"]))) as init:
                # Once asleep, the init has nothing to do before the burst:
                # the helper is still forking, and the middle child is not
                # the init's.
                wait_until(lambda: pstate(init.pid) in ("S", "I"), 10, "the init never slept", 0.0005)
                cpu = on_cpu_ns(init.pid)
                burst, _ = init.stamps.wait_count("main-burst", 1, 120, 0.01)
                reaped, _ = init.stamps.wait_count("main-reaped", 1, 120, 0.01)
                d[key].append(reaped - burst)
                d[key + "_cpu"].append(on_cpu_ns(init.pid) - cpu)
        with Init(kind, ("pause",)) as init:
            settle(lambda: [init.pid])
            d["memory"].append(memory([init.pid]))
        log(f"container {kind}: reap {ms(d['reap'][-1]):.1f} ms, zombies {ms(d['zombies'][-1]):.1f} ms, "
            f"{d['memory'][-1]}, -- /bin/true {ms(d['wall'][-1]):.2f} ms")
    rounds_of(kinds, CFG["signal_rounds"], "container signals", signals)
    rounds_of(kinds, CFG["container_rounds"], "container", reaping)
    return res


def sc_leak():
    """leak (going only): 10 sleeping services; LEAK_COUNT reloads, each a
    `reload` request on the control socket (what `going reload` sends; going
    answers after the rescan, and the driver also waits for its "reload
    requested" log line), then LEAK_COUNT `restart s0` requests, each
    waited for until the new instance has stamped.  VmRSS/VmPeak before,
    after the first 100 of each (warm-up) and at the end."""
    count = CFG["leak_count"]
    points = []
    with start_with("going", "leak", 10) as run:
        sup = run.sup
        run.stamps.wait_tags([f"s{i}" for i in range(10)], 30)
        settle(sup.procs)

        def point(label):
            settle(sup.procs)
            points.append({"label": label, "rss": status_kb(sup.pid, "VmRSS"),
                           "peak": status_kb(sup.pid, "VmPeak")})
            log(f"leak: {points[-1]}")
        point("start")
        logpath = os.path.join(sup.work, "supervisor.log")
        logf = open(logpath, "rb")
        seen = 0

        def reloads_logged():
            nonlocal seen
            seen += logf.read().count(b"reload requested")
            return seen
        t_start = time.monotonic()
        for i in range(1, count + 1):
            reply = sup.request("reload")
            if not reply.startswith("0"):
                raise RuntimeError(f"reload {i}: going answered {reply!r}")
            wait_until(lambda: reloads_logged() >= i, 10, f"reload {i} not logged")
            if i == 100:
                point("after 100 reloads (warm-up)")
        reload_secs = time.monotonic() - t_start
        point(f"after {count} reloads")
        logf.close()
        t_start = time.monotonic()
        for i in range(1, count + 1):
            reply = sup.request("restart s0")
            if not reply.startswith("0"):
                raise RuntimeError(f"restart {i}: going answered {reply!r}")
            run.stamps.wait_count("s0", i + 1, 20)
            if i == 100:
                point("after 100 restarts (warm-up)")
        restart_secs = time.monotonic() - t_start
        point(f"after {count} restarts")
    return {"points": points, "count": count, "reload_secs": reload_secs,
            "restart_secs": restart_secs, "reloads_logged": seen}


def sc_schedule():
    """schedule (going only): SCHEDULE_SAMPLES services, each with a
    `[schedule]` window that opens at its own whole second (UTC; going runs
    with TZ=UTC0), 1 s apart from 3 s after the start, for an hour.  The
    figure is the window's start (its wall-clock second, as
    CLOCK_MONOTONIC) -> the stamp of the service's exec: how late going
    is at an edge."""
    n = CFG["schedule_samples"]
    res = []
    with Run("going", "schedule") as run:
        first = int(time.time()) + 3
        hms = lambda t: time.strftime("%H:%M:%S", time.gmtime(t))
        for i in range(n):
            start = first + i
            text = run.sup.text(svc_argv(run.stamps, f"w{i}", "pause"))
            text += f'[schedule]\nstart-time = "{hms(start)}"\nstop-time = "{hms(start + 3600)}"\n'
            write_atomic(os.path.join(run.sup.dir, f"w{i}.toml"), text)
        tz = os.environ.get("TZ")
        os.environ["TZ"] = "UTC0"
        try:
            run.sup.start()
        finally:
            if tz is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = tz
        # CLOCK_REALTIME - CLOCK_MONOTONIC, read as a pair.
        offset = time.time_ns() - time.monotonic_ns()
        run.stamps.wait_tags([f"w{i}" for i in range(n)], n + 10)
        for i in range(n):
            ns, _ = run.stamps.last(f"w{i}")
            res.append(ns - ((first + i) * 10**9 - offset))
    log(f"schedule: median lateness {ms(statistics.median(res)):.3f} ms")
    return res


# --- BENCH.md -------------------------------------------------------------------

def fmt_ms(v, digits=3):
    return "–" if v is None else f"{v / 1e6:.{digits}f}"


def lat_cell(values, digits=3):
    s = summary(values)
    return (f"{fmt_ms(s['median'], digits)} ({fmt_ms(s['p10'], digits)}–{fmt_ms(s['p90'], digits)}; "
            f"max {fmt_ms(s['max'], digits)})")


def num_cell(values, fmt="{:.0f}"):
    s = summary(values)
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def machine():
    cpu = "unknown CPU"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    debian = read("/etc/debian_version").strip() or "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "debian": debian, "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def git_head():
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def p_slower(going, other, draws=20000):
    """One-sided permutation test: the chance that going's median is this
    far above the other's if both sets of samples came from one
    distribution.  Samples are independent units (rounds, not the
    correlated samples within a round).  Seeded: the same data, the same
    p."""
    observed = statistics.median(going) - statistics.median(other)
    pooled, k = list(going) + list(other), len(going)
    rng = random.Random(6)
    hits = 0
    for _ in range(draws):
        rng.shuffle(pooled)
        if statistics.median(pooled[:k]) - statistics.median(pooled[k:]) >= observed:
            hits += 1
    return (hits + 1) / (draws + 1)


def ratio(g, p):
    if p is None or g is None:
        return "–"
    if p == 0:
        return "–" if g == 0 else "∞"
    return f"{g / p:.3g}"


def best(rows, key):
    """(peer, value) with the lowest value among the peers (not going,
    not the floor reference)."""
    cands = [(v, k) for k, v in rows.items() if k not in NOT_PEERS and v is not None]
    if not cands:
        return None, None
    v, k = min(cands)
    return k, v


def render(R, meta, elapsed):
    L = []
    w = L.append
    m = meta["machine"]
    w("# going against its peers: `make bench`")
    w("")
    w(f"- Date: {meta['date']}; the whole run took {elapsed / 60:.1f} min")
    w(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}, Debian {m['debian']}")
    w(f"- going: `{meta['going']}` at commit {meta['commit']}, {meta['going_size']} bytes, static musl release build")
    w("- Peers (Debian packages): " + ", ".join(f"{p} {v}" for p, v in meta["versions"].items()))
    for p, why in {**NOT_PACKAGED, **SKIPPED}.items():
        w(f"- {p}: {why}")
    w(f"- Rerun: `make bench` (builds ./going and the stamp helper, installs missing peers with "
      f"apt-get, runs everything, writes BENCH.md). Knobs in the environment: ROUNDS (every scenario), "
      f"QUICK=1 (about 6 minutes), SCENARIOS=memory,respawn,... , PEERS=runit,s6,..., "
      f"LEAK_COUNT, IDLE_SECS, CRASH_SECS and the others listed at the top of bench/bench.py.")
    h = meta.get("helper")
    w(f"- Stamp helper: built with `{meta['helper_cc']} -O2 -static`, {meta['helper_size']} bytes; "
      + (f"its own cost, vfork(2) + exec from a C parent to its stamp (`stamp FILE TAG self {h['n']}`), "
         f"is {h['median']:.3f} ms median ({h['p10']:.3f}–{h['p90']:.3f}): every latency that ends in "
         f"an exec of the helper includes it" if h else "its own cost could not be measured"))
    w(f"- Settings of this run: " + ", ".join(f"{k}={v}" for k, v in CFG.items()))
    w("")
    w("Every latency is from CLOCK_MONOTONIC stamps: each service is `bench/stamp.c`, a static "
      "helper whose first act in main() is to read the clock and append `<ns> <pid> <tag>` "
      "to a shared file with one write(2); the driver (bench/bench.py) stamps right before the "
      "kill(2), rename(2), signal or exec that causes the event. Cells are median "
      "(p10–p90; max) of all samples for latencies and median (min–max) over rounds otherwise. "
      "runit and s6 run each service through a `run` script `#!/bin/sh` + `exec stamp ...` "
      "(their usual form), so their figures include one exec of dash; going and supervisord exec "
      "the helper directly.")
    w("")
    S = meta["summary"]
    w("## Summary")
    w("")
    w("Ratio is going ÷ best peer (below 1: going is better; every row is lower-is-better).")
    w("")
    w("| scenario | target for going | going | best peer | ratio | target |")
    w("|---|---|---:|---|---:|---|")
    for row in S:
        w(f"| {row['scenario']} | {row['target']} | {row['going']} | {row['peer']} | {row['ratio']} | {row['verdict']} |")
    w("")
    missed = [row for row in S if row["verdict"].startswith("MISSED")]
    apart = [row for row in S if row["verdict"].startswith("not told apart")]
    if missed:
        w("**going misses:** " + "; ".join(f"{r['scenario']} ({r['going']} against {r['target']})" for r in missed) + ".")
    elif not apart:
        w("going meets every target it was measured against.")
    if apart:
        w("")
        w("**Above the reference, but within the rounds' spread** (a one-sided permutation test "
          "of going's rounds against the reference's finds no difference at p < 0.05): " +
          "; ".join(f"{r['scenario']} ({r['going']} against {r['target']})" for r in apart) + ".")
    behind = [row for row in S if row.get("behind")]
    if behind:
        w("")
        w("**A peer is ahead of going in:** " + "; ".join(f"{r['scenario']} ({r['peer']})" for r in behind) + ".")
    if meta.get("floor"):
        w("")
        w("The floor reference (bench/floor.c: the same design with nothing but the loop, "
          "measured in the same run): " + "; ".join(f"{k} {v}" for k, v in meta["floor"]) + ".")
    w("")
    L.extend(meta["sections"])
    return "\n".join(L) + "\n"


def build_report(R, meta):
    """Summary rows and one section per scenario."""
    S, sec = [], []
    w = sec.append

    def add(scenario, target, gval, peers, fmt, limit=None, samples=None):
        """A summary row; met when going's value <= limit.  With samples
        (going's and the reference's independent samples), a value above
        the limit is a miss only when a permutation test says so
        (p < 0.05); otherwise the two are not told apart."""
        peer, pval = best(peers, None)
        verdict = "–"
        if limit is not None and gval is not None:
            if gval <= limit:
                verdict = "met"
            elif samples and len(samples[0]) > 2 and len(samples[1]) > 2 and \
                    (pv := p_slower(*samples)) >= 0.05:
                verdict = f"not told apart (+{100 * (gval / limit - 1):.0f} %, p = {pv:.2f})"
            else:
                verdict = "MISSED"
        S.append({"scenario": scenario, "target": target,
                  "going": "n/a" if gval is None else fmt(gval),
                  "peer": "n/a" if peer is None else f"{fmt(pval)} ({peer})",
                  "ratio": ratio(gval, pval), "verdict": verdict,
                  "behind": gval is not None and pval is not None and pval < gval})

    floor_rows = meta.setdefault("floor", [])
    mb = lambda kb: f"{kb:.0f} kB"
    msf = lambda v: f"{v / 1e6:.3f} ms"
    ms1 = lambda v: f"{v / 1e6:.1f} ms"

    if "memory" in R:
        M = R["memory"]
        w("## Memory and idle cost")
        w("")
        w("Each service is `stamp FILE sN pause`. Figures are sums over all supervisor processes "
          "(going: 1; runit: runsvdir + one runsv per service; s6: s6-svscan + one s6-supervise per "
          "service; supervisor: the supervisord Python process), read from /proc/PID/status "
          "(VmPeak, VmRSS) and /proc/PID/smaps_rollup (Pss: shared pages divided among their "
          "users, the fairest sum for many small processes) once every service has stamped and "
          "every supervisor process is asleep. Median (min–max) over "
          f"{CFG['mem_rounds']} rounds.")
        w("")
        w("| supervisor | services | processes | VmPeak kB | VmRSS kB | Pss kB |")
        w("|---|---:|---:|---:|---:|---:|")
        for kind, byn in M.items():
            for n, rows in byn.items():
                w(f"| {kind} | {n} | {rows[0]['procs']} | {num_cell([r['peak'] for r in rows])} | "
                  f"{num_cell([r['rss'] for r in rows])} | {num_cell([r['pss'] for r in rows])} |")
        w("")
        w(f"Idle: with 100 sleeping services, context switches of all supervisor processes (every "
          f"thread, voluntary + nonvoluntary, /proc/PID/task/*/status) and their CPU ticks over "
          f"{CFG['idle_secs']} s, from 1 s after they went to sleep.")
        w("")
        w(f"| supervisor | context switches in {CFG['idle_secs']} s | CPU ticks (1/{CLK_TCK} s) |")
        w("|---|---:|---:|")
        for kind, byn in M.items():
            rows = byn.get(100)
            if rows:
                w(f"| {kind} | {num_cell([r['ctxt'] for r in rows])} | {num_cell([r['idle_ticks'] for r in rows])} |")
        w("")

        def med(kind, n, key):
            rows = M.get(kind, {}).get(n)
            return statistics.median([r[key] for r in rows]) if rows else None
        for n, key, target, limit in ((100, "peak", "≤ 1024 kB", 1024), (100, "rss", "≤ 700 kB", 700),
                                      (1000, "rss", "≤ 2048 kB", 2048), (1, "rss", "–", None)):
            if n in CFG["counts"]:
                add(f"memory, {n} service{'s' if n != 1 else ''}, {'VmPeak' if key == 'peak' else 'VmRSS'}", target,
                    med("going", n, key), {k: med(k, n, key) for k in M}, mb, limit)
        if 100 in CFG["counts"]:
            add(f"idle context switches, 100 services, {CFG['idle_secs']} s", "0",
                med("going", 100, "ctxt"), {k: med(k, 100, "ctxt") for k in M}, lambda v: f"{v:.0f}", 0)

    if "respawn" in R:
        P = R["respawn"]
        w("## Respawn after a long run")
        w("")
        w(f"{CFG['respawn_services']} services per round run for 6.5 s; then one at a time the driver "
          "stamps and sends SIGKILL to one, and waits for its new instance's stamp. The figure is "
          "driver stamp → new exec's stamp, an upper bound on death → exec since it includes the "
          f"kernel's delivery of the kill. {CFG['respawn_rounds']} rounds, "
          f"{CFG['respawn_rounds'] * CFG['respawn_services']} samples per supervisor.")
        w("")
        w("| supervisor | kill → exec, ms |")
        w("|---|---:|")
        for kind, s in P.items():
            w(f"| {kind} | {lat_cell(s)} |")
        w("")
        if "floor" in P:
            w("floor is bench/floor.c, not a peer: about 100 lines of C that block in poll(2) on a "
              "signalfd, reap, and start the service again at once with vfork + exec, and do "
              "nothing else (no log, no state file, no backoff). It is what this machine allows "
              "for the design, so going minus floor is what going's own work costs.")
            w("")
            floor_rows.append(("respawn after a long run", msf(statistics.median(P["floor"]))))
        add("respawn after a long run (kill → exec, median)", "≤ 1 ms",
            statistics.median(P["going"]) if "going" in P else None,
            {k: statistics.median(v) for k, v in P.items()}, msf, 1e6)

    if "crash" in R:
        C = R["crash"]
        w("## Crash loop")
        w("")
        w(f"One service that exits 1 at once (`stamp FILE crash exit 1`). Over {CFG['crash_secs']} s "
          "from its first stamp: how many times it was started, and utime+stime of all supervisor "
          "processes as % of one core. First restart: first stamp → second stamp (the run itself "
          f"lasts microseconds). {CFG['crash_rounds']} rounds. supervisor runs with "
          f"{Supervisord.SETTINGS} (with the default startsecs=1 it gives up for good after 4 starts, "
          "FATAL).")
        w("")
        w(f"| supervisor | starts in {CFG['crash_secs']} s | CPU % of a core | first restart, ms |")
        w("|---|---:|---:|---:|")
        for kind, rows in C.items():
            fr = [r["first_restart"] for r in rows if r["first_restart"] is not None]
            w(f"| {kind} | {num_cell([r['starts'] for r in rows])} | "
              f"{num_cell([r['cpu_pct'] for r in rows], '{:.2f}')} | "
              f"{num_cell([v / 1e6 for v in fr], '{:.1f}') if fr else '–'} |")
        w("")

        def cmed(kind, key):
            vals = [r[key] for r in C.get(kind, []) if r[key] is not None]
            return statistics.median(vals) if vals else None
        add("crash loop: first restart", "≤ 100 ms", cmed("going", "first_restart"),
            {k: cmed(k, "first_restart") for k in C}, ms1, 100e6)
        add(f"crash loop: CPU over {CFG['crash_secs']} s", "≤ 1 % of a core", cmed("going", "cpu_pct"),
            {k: cmed(k, "cpu_pct") for k in C}, lambda v: f"{v:.2f} %", 1.0)

    if "reload" in R:
        D = R["reload"]
        w("## Reload")
        w("")
        w(f"Per round, {CFG['reload_samples']} new services are added one at a time, each the "
          "supervisor's own way; driver stamp right before the rename → the new service's stamp. "
          "Then, once each has run over 1 s (runsv and s6-supervise keep 1 s between two starts "
          "of a service), each definition is changed (a new tag in its command line); driver "
          "stamp → stamp of the new definition, which includes stopping the old instance "
          f"(SIGTERM; the helper dies at once). {CFG['reload_rounds']} rounds.")
        w("")
        w("| supervisor | how a service is added | new service → runs, ms | how a definition is changed | changed → new definition runs, ms |")
        w("|---|---|---:|---|---:|")
        for kind, d in D.items():
            cls = SUPERVISORS[kind]
            w(f"| {kind} | {cls.add_how} | {lat_cell(d['add'])} | {cls.change_how} | {lat_cell(d['change'])} |")
        w("")
        add("reload: new file → service runs (median)", "≤ 2 ms, no trigger but the file",
            statistics.median(D["going"]["add"]) if "going" in D else None,
            {k: statistics.median(v["add"]) for k, v in D.items()}, msf, 2e6)
        add("reload: changed file → new definition runs (median)", "≤ 2 ms",
            statistics.median(D["going"]["change"]) if "going" in D else None,
            {k: statistics.median(v["change"]) for k, v in D.items()}, msf, 2e6)

    if "startup" in R:
        T = R["startup"]
        n = CFG["startup_n"]
        w("## Startup")
        w("")
        w(f"`stamp FILE supervisor-exec exec SUPERVISOR ...` stamps, then execs the supervisor with "
          f"{n} services defined; the figure is that stamp → the last of the {n} services' stamps. "
          f"{CFG['startup_rounds']} rounds.")
        w("")
        w(f"| supervisor | exec → all {n} started, ms |")
        w("|---|---:|")
        for kind, s in T.items():
            w(f"| {kind} | {num_cell([v / 1e6 for v in s], '{:.1f}')} |")
        w("")
        add(f"startup: {n} services started", "≤ 50 ms",
            statistics.median(T["going"]) if "going" in T else None,
            {k: statistics.median(v) for k, v in T.items()}, ms1, 50e6)

    if "container" in R:
        K = R["container"]
        w("## Container init")
        w("")
        w("Each init runs as PID 1 of a new PID namespace, `unshare --pid --fork --mount-proc INIT "
          "[--] stamp ...` (going: `going -l stderr -d EMPTY -- stamp ...`).")
        w("")
        w(f"- Signal forwarding: the helper waits in sigwaitinfo(2); a sender stamps and sends "
          f"SIGUSR1 to the init; the helper stamps on receipt. {CFG['signal_rounds']} rounds, each "
          f"a new namespace (where the scheduler first places the init and its child sets a "
          f"round's level), each with {CFG['sig_samples']} signals 5 ms apart from the C sender "
          "`stamp FILE sender send PID N 5000`, which waits in inotify(7) right after each kill, "
          f"then {CFG['sig_samples']} from the Python driver, which stays busy on its core after "
          "each kill (re-reading the stamp file) and so delays whichever of the init and its "
          "child the scheduler wakes there. The C sender's column is the init's own figure.")
        w(f"- Reaping, orphans: the helper forks a child that forks {CFG['orphans']} grandchildren "
          "blocked on a pipe and exits (so all are reparented to the init); the helper stamps and "
          "closes the pipe, and all exit at once; then it checks each of their pids with "
          "kill(pid, 0) (a zombie still answers; a pid lookup takes no lock the reaping init "
          "needs) every 0.1 ms and stamps once none is left: burst → all reaped. This includes "
          f"the kernel's work of {CFG['orphans']} exits on 2 cores, which is most of it. (Polling "
          "/proc/INIT/task/*/children from the host instead takes the tasklist lock that wait4 "
          "needs once per listed child, and slowed every init down.)")
        w(f"- Reaping, zombies: the same, but the {CFG['orphans']} have already exited (zombies "
          "of the middle child) when the middle child exits, so the init inherits them all at "
          "once: the init's reaping alone.")
        w("- The init on a CPU: its time on a CPU (/proc/PID/schedstat) from before the burst "
          "until all are reaped: the init's own share of the reaping; the rest is the kernel's "
          "exits and the helper's checks.")
        w("- Memory: VmPeak and VmRSS of the init with one sleeping child.")
        w(f"Reaping and memory: {CFG['container_rounds']} rounds. The inits take turns within "
          "each round.")
        w("")
        w(f"| init | signal → main command, ms | the same, Python sender, ms | "
          f"reap {CFG['orphans']} orphans, ms | the init on a CPU meanwhile, ms | "
          f"reap {CFG['orphans']} zombies, ms | the init on a CPU meanwhile, ms | VmPeak kB | VmRSS kB |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind, d in K.items():
            w(f"| {kind} | {lat_cell(d['signal'])} | {lat_cell(d['signal_py'])} | "
              f"{num_cell([v / 1e6 for v in d['reap']], '{:.1f}')} | "
              f"{num_cell([v / 1e6 for v in d['reap_cpu']], '{:.1f}')} | "
              f"{num_cell([v / 1e6 for v in d['zombies']], '{:.1f}')} | "
              f"{num_cell([v / 1e6 for v in d['zombies_cpu']], '{:.1f}')} | "
              f"{num_cell([m['peak'] for m in d['memory']])} | {num_cell([m['rss'] for m in d['memory']])} |")
        w("")
        if "going" in K:
            pairs = []
            for other in (k for k in K if k != "going"):
                diffs = [(g - o) / 1e3 for g, o in zip(K["going"]["signal_rounds"], K[other]["signal_rounds"])]
                if diffs:
                    pairs.append(f"going − {other} {statistics.median(diffs):+.1f} µs "
                                 f"({min(diffs):+.0f} to {max(diffs):+.0f})")
            w("Round by round (C sender; each init's median of the round, the inits of a round "
              "run one after another): median of the differences, and their range. " +
              "; ".join(pairs) + ".")
            w("")
        if "floor" in K:
            w("floor is `bench/floor.c init CMD`, not a peer: poll(2) on a signalfd, kill(2) of "
              "the main command for each signal read, a waitpid loop; the least an init of "
              "going's design does. tini waits in sigtimedwait(2) instead.")
            w("")
            floor_rows.append(("container: signal forwarding", msf(statistics.median(K["floor"]["signal"]))))
        if "floor-sigwait" in K:
            w("floor-sigwait is `bench/floor.c sigwait CMD`, not a peer either: the same as floor "
              "but waiting in sigwaitinfo(2), as tini does, instead of poll(2) + read(2) of a "
              "signalfd. floor-sigwait minus floor is what the wait of going's design costs; going "
              "must poll, as it also waits on inotify, its socket and its pipes.")
            w("")
            floor_rows.append(("container: signal forwarding, sigwaitinfo(2) floor",
                               msf(statistics.median(K["floor-sigwait"]["signal"]))))
        tini = [k for k in ("tini", "tini-static") if k in K]
        # The test's units are rounds: signals are compared by each round's median.
        for key, units, label, f in (
                ("signal", "signal_rounds", "container: signal forwarding (median)", msf),
                ("reap", "reap", f"container: reap {CFG['orphans']} orphans", ms1),
                ("zombies", "zombies", f"container: reap {CFG['orphans']} zombies", ms1)):
            tbest = min(tini, key=lambda k: statistics.median(K[k][key]), default=None)
            g = statistics.median(K["going"][key]) if "going" in K else None
            add(label, "no slower than tini", g, {k: statistics.median(v[key]) for k, v in K.items()},
                f, statistics.median(K[tbest][key]) if tbest else None,
                samples=(K["going"][units], K[tbest][units]) if tbest and "going" in K else None)
        w(f"`INIT -- /bin/true` as a plain process (as `hyperfine -N` runs it), spawn → reaped, "
          f"median of each round's {CFG['wall_samples']}: " +
          ", ".join(f"{k} {lat_cell(v['wall'])} ms" for k, v in K.items() if v["wall"]) + ".")
        w("")
        twall = min(tini, key=lambda k: statistics.median(K[k]["wall"]), default=None)
        add("container: `going -- /bin/true` wall time", "within 1 ms of tini",
            statistics.median(K["going"]["wall"]) if "going" in K else None,
            {k: statistics.median(v["wall"]) for k, v in K.items()}, msf,
            statistics.median(K[twall]["wall"]) + 1e6 if twall else None)
        add("container: VmRSS with one child", "–",
            statistics.median([m["rss"] for m in K["going"]["memory"]]) if "going" in K else None,
            {k: statistics.median([m["rss"] for m in v["memory"]]) for k, v in K.items()}, mb)
        w("runit, s6 and supervisor are not container inits of this kind (one main command, "
          "signals forwarded to it): n/a here. tini, tini-static, dumb-init and catatonit supervise "
          "one child and are n/a in every other scenario.")
        w("")

    if "scale" in R:
        A = R["scale"]
        n = CFG["scale_n"]
        w("## Scale: mass kill")
        w("")
        w(f"{n} services run for 6.5 s; the driver stamps, then sends SIGKILL to each in a loop "
          f"(the loop itself takes the time in the last column); the figure is driver stamp → the "
          f"last new instance's stamp. {CFG['scale_rounds']} rounds.")
        w("")
        w(f"| supervisor | all {n} back, ms | median service back, ms | kill loop, ms |")
        w("|---|---:|---:|---:|")
        for kind, rows in A.items():
            w(f"| {kind} | {num_cell([r['all'] / 1e6 for r in rows], '{:.1f}')} | "
              f"{num_cell([r['median'] / 1e6 for r in rows], '{:.1f}')} | "
              f"{num_cell([r['kill_loop'] / 1e6 for r in rows], '{:.1f}')} |")
        w("")
        add(f"scale: {n} services killed → all back", "≤ 1 s",
            statistics.median([r["all"] for r in A["going"]]) if "going" in A else None,
            {k: statistics.median([r["all"] for r in v]) for k, v in A.items()}, ms1, 1e9)

    if "leak" in R:
        Z = R["leak"]
        w("## Leak check (going only)")
        w("")
        w(f"going with 10 sleeping services. {Z['count']} reloads: each a `reload` request on the "
          "control socket (what `going reload -s SOCK` sends; going answers after its rescan), and "
          "the driver waits for the matching `reload requested` log line before the next "
          f"({Z['reloads_logged']} lines counted; {Z['reload_secs']:.1f} s). Then {Z['count']} "
          "`restart s0` requests (stop with SIGTERM, start again), each waited for until the new "
          f"instance has stamped ({Z['restart_secs']:.1f} s). VmRSS and VmPeak of going:")
        w("")
        w("| when | VmRSS kB | VmPeak kB |")
        w("|---|---:|---:|")
        for p in Z["points"]:
            w(f"| {p['label']} | {p['rss']} | {p['peak']} |")
        w("")
        pts = {p["label"]: p for p in Z["points"]}
        warm_r = pts["after 100 reloads (warm-up)"]["rss"]
        end_r = pts[f"after {Z['count']} reloads"]["rss"]
        warm_s = pts["after 100 restarts (warm-up)"]["rss"]
        end_s = pts[f"after {Z['count']} restarts"]["rss"]
        S.append({"scenario": f"leak: VmRSS growth, {Z['count']} reloads / {Z['count']} restarts after warm-up",
                  "target": "a few kB", "going": f"{end_r - warm_r:+d} kB / {end_s - warm_s:+d} kB",
                  "peer": "n/a (going only)", "ratio": "–",
                  "verdict": "met" if max(end_r - warm_r, end_s - warm_s) <= 16 else "MISSED",
                  "behind": False})
    if "schedule" in R:
        Y = R["schedule"]
        w("## Schedules: lateness of a window's start (going only)")
        w("")
        w(f"{len(Y)} services, each with a `[schedule]` window opening at its own whole second, "
          "1 s apart; the figure is the window's start (its wall-clock second, as CLOCK_MONOTONIC) "
          "→ the stamp of the service's exec, in ms: median (p10–p90; max).")
        w("")
        w("| supervisor | window start → exec, ms |")
        w("|---|---:|")
        w(f"| going | {lat_cell(Y)} |")
        w("")
        add("schedule: window start → exec (going only)", "≤ 2 ms median",
            statistics.median(Y), {"going": statistics.median(Y)}, msf, 2e6)
    w("## Notes on the method")
    w("")
    w("- runit: `runsvdir DIR`, one dir per service with `run` = `#!/bin/sh` + `exec stamp ...`. "
      "runsvdir looks at its directory every 5 s, so a new service waits 0–5 s; runsv waits until "
      "1 s after the previous start before starting a service again.")
    w("- s6: `s6-svscan DIR` (with `-c 2N` for more than 400 services, since it refuses more than "
      "500 by default); s6-svscan starts nothing new until told (`s6-svscanctl -a`), and "
      "s6-supervise keeps at least 1 s between two starts of a service, also after a long run.")
    w(f"- supervisor: `supervisord -n -c CONF`, one `[program:x]` file per service in an "
      f"`[include]` dir, {Supervisord.SETTINGS}; its main loop notices a dead child on its next "
      "1 s tick.")
    w(f"- going: `going -l stderr -d DIR -s SOCK`, its log to a file, SOCK (and so its state file, "
      f"rewritten when a service starts or stops) in {'a tmpfs directory, as /run is on most systems' if RUNDIR.startswith('/dev/shm') else 'the work directory'}.")
    w("- The driver and the helper only poll the stamp file to know when to go on; the figures "
      "come from the stamps alone, so the polling rate does not change them (it does add a "
      "little load on a 2-core machine, the same for every peer).")
    w("- Reaping orphans that exit after being reparented is mostly the kernel's work of the "
      "exits. It also depends on where the init puts its child: an exiting process whose parent "
      "is in another process group of the same session makes the kernel look through its "
      "process group (will_become_orphaned_pgrp, which walks past every unreaped zombie). "
      "going, tini and catatonit run the main command in its own process group of their "
      "session; dumb-init runs it in a new session, which skips that walk. The zombies column "
      "(reaping alone) is the one that compares the inits themselves.")
    w("")
    meta["summary"] = S
    meta["sections"] = sec


# --- main ---------------------------------------------------------------------------

WORK = None
RUNDIR = None
GOING = None


def main():
    global WORK, RUNDIR, GOING
    t_begin = time.monotonic()
    GOING = os.path.abspath(os.environ.get("GOING", os.path.join(ROOT, "going")))
    out = os.path.join(ROOT, os.environ.get("OUT", "BENCH.md"))
    if not os.access(GOING, os.X_OK):
        sys.exit(f"bench: {GOING} not found; run 'make' first")
    scen = os.environ.get("SCENARIOS")
    scen = scen.split(",") if scen else SCENARIOS
    for s in scen:
        if s not in SCENARIOS:
            sys.exit(f"bench: unknown scenario {s}; one of {', '.join(SCENARIOS)}")
    # Orphans of anything started here come back to the driver, so that
    # nothing outlives it.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    WORK = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"going-bench.{os.getpid()}")
    os.makedirs(WORK)
    shm = "/dev/shm"
    tmpfs = any(line.split()[1:3] == [shm, "tmpfs"] for line in read("/proc/mounts").splitlines())
    RUNDIR = os.path.join(shm if tmpfs else WORK, f"going-bench-run.{os.getpid()}")
    os.makedirs(RUNDIR)
    R = {}
    helper_cc, helper = "?", None
    try:
        ensure_peers()
        helper_cc = build_stamp()
        helper = helper_cost()
        if helper:
            log(f"helper: exec -> stamp {helper['median']:.3f} ms median ({helper_cc})")
        sups = [k for k in SUPERVISORS if wanted(k)]
        inits = [k for k in INITS if wanted(k)]
        log(f"supervisors: {' '.join(sups)}; inits: {' '.join(inits)}")
        for s in scen:
            t = time.monotonic()
            log(f"--- {s}")
            if s == "memory":
                R[s] = sc_memory(sups)
            elif s == "respawn":
                R[s] = sc_respawn(sups + [k for k in REFERENCES if wanted(k)])
            elif s == "crash":
                R[s] = sc_crash(sups)
            elif s == "reload":
                R[s] = sc_reload(sups)
            elif s == "startup":
                R[s] = sc_startup(sups)
            elif s == "container":
                R[s] = sc_container(inits)
            elif s == "scale":
                R[s] = sc_scale(sups)
            elif s == "leak":
                R[s] = sc_leak()
            elif s == "schedule":
                R[s] = sc_schedule()
            log(f"--- {s} took {time.monotonic() - t:.0f} s")
    finally:
        kill_all_descendants()
        shutil.rmtree(WORK, ignore_errors=True)
        shutil.rmtree(RUNDIR, ignore_errors=True)
    elapsed = time.monotonic() - t_begin
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "going": os.path.relpath(GOING, ROOT) if GOING.startswith(ROOT) else GOING,
        "going_size": os.path.getsize(GOING),
        "commit": git_head(),
        "versions": {p: version(p) for p in PACKAGES},
        "helper_cc": helper_cc,
        "helper": helper,
        "helper_size": os.path.getsize(STAMP),
    }
    with open(os.path.join(BUILD, "results.json"), "w") as f:
        json.dump({"cfg": CFG, "meta": meta, "results": R}, f, indent=1, default=str)
    build_report(R, meta)
    kept = ""
    if os.path.exists(out):
        text = open(out).read()
        if KEEP_MARK in text:
            kept = text[text.index(KEEP_MARK):]
    report = render(R, meta, elapsed)
    if kept:
        report += "\n" + kept
    with open(out + ".tmp", "w") as f:
        f.write(report)
    os.rename(out + ".tmp", out)
    log(f"wrote {out} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
