/* stamp: the benchmark's helper, run as a service or main command.
 *
 * First thing in main it reads CLOCK_MONOTONIC; then it appends one line
 * "<ns> <pid> <tag>\n" to FILE with a single write(2) (O_APPEND, so many
 * instances can share one file), and does what MODE says:
 *
 *   stamp FILE TAG pause            sleep until killed
 *   stamp FILE TAG exit CODE        exit at once with CODE
 *   stamp FILE TAG signals          block SIGUSR1, SIGUSR2, SIGHUP, SIGINT,
 *                                   SIGTERM, stamp "TAG-ready", then stamp
 *                                   "TAG-SIGNAME" on each one received
 *                                   (sigwaitinfo); exit 0 after SIGTERM
 *   stamp FILE TAG orphans N        fork a child that forks N grandchildren
 *                                   blocked reading a pipe, and exits: they
 *                                   are reparented to the init; stamp
 *                                   "TAG-burst" and close the pipe, so that
 *                                   all N exit at once; then "TAG-reaped"
 *   stamp FILE TAG zombies N        the same, but the N have exited (zombies
 *                                   of the child, not reaped) before the
 *                                   child exits: stamp "TAG-burst", let the
 *                                   child exit, so the init inherits N
 *                                   zombies at once; then "TAG-reaped"
 *   stamp FILE TAG exec CMD ARG...  exec CMD (stamps the exec of a supervisor)
 *   stamp FILE TAG send PID N GAP   the sender of the container's signals,
 *                                   N times, GAP microseconds apart: read the
 *                                   clock, kill(PID, SIGUSR1), wait in
 *                                   inotify until FILE has grown (the
 *                                   receiver's stamp), then stamp "TAG-sent"
 *                                   with the clock read before the kill
 *   stamp FILE TAG self N           the helper's own cost, N times: read the
 *                                   clock, vfork + exec this helper as
 *                                   "TAG-self exit 0", reap it, then stamp
 *                                   "TAG-before" with the clock read before
 *                                   the vfork (the pairs' difference is what
 *                                   every latency here includes of the helper)
 *
 * "TAG-reaped" is stamped once kill(pid, 0) fails for every one of the N
 * (a zombie still answers it, so this is when the init has reaped them
 * all); it is a pid lookup, checked every 0.1 ms, and takes no lock the
 * reaping init needs. Then the helper sleeps until killed.
 *
 * Built static by bench/bench.py, with musl (musl-gcc) when it can be had:
 * the time from exec to the stamp is then short (about 0.1 ms here, against
 * 0.45 ms for a glibc static build, whose start-up faults in far more
 * pages), and the same under every supervisor.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *file;

static void put(const struct timespec *ts, const char *tag, const char *suffix)
{
	char line[256];
	int fd, n;

	n = snprintf(line, sizeof line, "%lld %d %s%s%s\n",
		     (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec, (int)getpid(),
		     tag, suffix ? "-" : "", suffix ? suffix : "");
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, n) != n)
		_exit(111);
	close(fd);
}

static void stamp(const char *tag, const char *suffix)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	put(&ts, tag, suffix);
}

static const char *signame(int sig)
{
	switch (sig) {
	case SIGUSR1: return "USR1";
	case SIGUSR2: return "USR2";
	case SIGHUP: return "HUP";
	case SIGINT: return "INT";
	case SIGTERM: return "TERM";
	}
	return "other";
}

static int signals(const char *tag)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	stamp(tag, "ready");
	for (;;) {
		sig = sigwaitinfo(&set, NULL);
		if (sig < 0)
			continue;
		stamp(tag, signame(sig));
		if (sig == SIGTERM)
			return 0;
	}
}

/* orphans (zombies == 0) and zombies (zombies == 1) modes. */
static int orphans(const char *tag, int n, int zombies)
{
	int go[2], ready[2], i, st;
	pid_t mid, *pids;
	char c;
	siginfo_t si;
	struct timespec tick = {0, 100000};

	/* The grandchildren's pids, written by the middle child. */
	pids = mmap(NULL, n * sizeof *pids, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pids == MAP_FAILED || pipe(go) < 0 || pipe(ready) < 0)
		return 1;
	mid = fork();
	if (mid < 0)
		return 1;
	if (mid == 0) {
		close(go[1]);
		close(ready[0]);
		for (i = 0; i < n; i++) {
			pid_t k = fork();
			if (k == 0) {
				if (!zombies)  /* until the pipe's last writer closes it */
					while (read(go[0], &c, 1) < 0)
						;
				_exit(0);
			}
			if (k < 0)
				_exit(1);
			pids[i] = k;
		}
		if (zombies) {
			/* Each has exited: wait without reaping. */
			for (i = 0; i < n; i++)
				waitid(P_PID, pids[i], &si, WEXITED | WNOWAIT);
			if (write(ready[1], "r", 1) != 1)
				_exit(1);
			while (read(go[0], &c, 1) < 0)  /* until told to exit */
				;
		}
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	if (zombies) {
		if (read(ready[0], &c, 1) != 1)
			return 1;
		stamp(tag, "burst");
		close(go[1]);  /* the middle child exits; the init inherits the zombies */
		if (waitpid(mid, &st, 0) != mid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
	} else {
		if (waitpid(mid, &st, 0) != mid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
		/* All N are now children of the init; let them go at once. */
		stamp(tag, "burst");
		close(go[1]);
	}
	for (i = 0; i < n; i++)
		while (kill(pids[i], 0) == 0)
			nanosleep(&tick, NULL);
	stamp(tag, "reaped");
	for (;;)
		pause();
}

static int self(const char *path, const char *tag, int n)
{
	char child_tag[64];
	struct timespec before;
	pid_t pid;
	int st, i;

	snprintf(child_tag, sizeof child_tag, "%s-self", tag);
	for (i = 0; i < n; i++) {
		char *argv[] = {(char *)path, (char *)file, child_tag, "exit", "0", NULL};

		clock_gettime(CLOCK_MONOTONIC, &before);
		pid = vfork();
		if (pid == 0) {
			execv(path, argv);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
		put(&before, tag, "before");
	}
	return 0;
}

/* The driver's side of the signal scenario, in C so that the sender
 * sleeps right after the kill: a Python driver still busy on its core
 * delays whichever of the init and its child the scheduler wakes there. */
static int send(const char *tag, pid_t pid, int n, long gap_us)
{
	struct timespec before, gap = {gap_us / 1000000, gap_us % 1000000 * 1000};
	struct stat st;
	struct pollfd p;
	char events[4096];
	off_t seen;
	int i;

	p.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	p.events = POLLIN;
	if (p.fd < 0 || inotify_add_watch(p.fd, file, IN_MODIFY) < 0 || stat(file, &st) < 0)
		return 1;
	seen = st.st_size;
	for (i = 0; i < n; i++) {
		while (read(p.fd, events, sizeof events) > 0)
			;  /* the events of earlier lines */
		clock_gettime(CLOCK_MONOTONIC, &before);
		if (kill(pid, SIGUSR1) < 0)
			return 1;
		do {  /* until the receiver's line is there */
			if (poll(&p, 1, 10000) <= 0 || stat(file, &st) < 0)
				return 1;
			while (read(p.fd, events, sizeof events) > 0)
				;
		} while (st.st_size <= seen);
		put(&before, tag, "sent");
		if (stat(file, &st) < 0)
			return 1;
		seen = st.st_size;
		nanosleep(&gap, NULL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec ts;

	/* The clock first; the line is formatted and written after. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (argc < 4) {
		fprintf(stderr, "usage: stamp FILE TAG pause|exit CODE|signals|orphans N|zombies N|exec CMD...|send PID N GAP|self N\n");
		return 2;
	}
	file = argv[1];
	put(&ts, argv[2], NULL);

	const char *tag = argv[2], *mode = argv[3];

	if (!strcmp(mode, "pause")) {
		for (;;)
			pause();
	}
	if (!strcmp(mode, "exit"))
		return argc > 4 ? atoi(argv[4]) : 0;
	if (!strcmp(mode, "exec") && argc > 4) {
		execv(argv[4], argv + 4);
		return 127;
	}
	if (!strcmp(mode, "self") && argc > 4)
		return self(argv[0], tag, atoi(argv[4]));
	if (!strcmp(mode, "signals"))
		return signals(tag);
	if (!strcmp(mode, "send") && argc > 6)
		return send(tag, atoi(argv[4]), atoi(argv[5]), atol(argv[6]));
	if (!strcmp(mode, "orphans") && argc > 4)
		return orphans(tag, atoi(argv[4]), 0);
	if (!strcmp(mode, "zombies") && argc > 4)
		return orphans(tag, atoi(argv[4]), 1);
	fprintf(stderr, "stamp: unknown mode %s\n", mode);
	return 2;
}
