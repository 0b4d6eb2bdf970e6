/* floor: the least a supervisor or init of going's design can do, as a
 * reference row in BENCH.md. Not a peer, and never the "best peer".
 *
 *   floor respawn DIR       each file in DIR is a service, one argument per
 *                           line; start them all, and start each again at
 *                           once when it dies (no backoff, log or state)
 *   floor init CMD ARG...   PID 1 of a container: run CMD, forward every
 *                           signal to it, reap every child, exit with CMD
 *   floor sigwait CMD ARG...
 *                           the same, waiting in sigwaitinfo(2) as tini
 *                           does instead of poll(2) + read(2) of a
 *                           signalfd: what the wait itself costs, since
 *                           going must poll (it also waits on inotify, its
 *                           socket and pipes)
 *
 * Like going, it blocks in poll(2) on a signalfd and starts children with
 * vfork + exec; unlike going it does nothing else. So going minus floor is
 * what going's own work costs, and floor is what the machine allows.
 * Built static by bench/bench.py, as bench/stamp.c is.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SERVICES 2048
#define MAX_ARGS 32

struct service {
	pid_t pid;
	char *argv[MAX_ARGS + 1];
};

static struct service services[MAX_SERVICES];
static int count;
static sigset_t all;

/* A service gets a session of its own, as under going; a container's main
 * command its own process group in the init's session, as under going and
 * tini. */
static pid_t start(char **argv, int session)
{
	sigset_t none;
	pid_t pid;

	sigemptyset(&none);
	pid = vfork();
	if (pid == 0) {
		if (session)
			setsid();
		else
			setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void load(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		perror(dir);
		exit(1);
	}
	while ((e = readdir(d)) && count < MAX_SERVICES) {
		char path[4096], *text, *line, *save;
		struct service *s = &services[count];
		FILE *f;
		long n;
		int argc = 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		text = calloc(1, n + 1);
		if (!text || fread(text, 1, n, f) != (size_t)n) {
			fclose(f);
			continue;
		}
		fclose(f);
		for (line = strtok_r(text, "\n", &save); line && argc < MAX_ARGS;
		     line = strtok_r(NULL, "\n", &save))
			s->argv[argc++] = line;
		if (argc)
			count++;
	}
	closedir(d);
}

static int open_signals(void)
{
	int fd;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	fd = signalfd(-1, &all, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0) {
		perror("signalfd");
		exit(1);
	}
	return fd;
}

static void respawn(const char *dir)
{
	int fd = open_signals(), i;

	load(dir);
	for (i = 0; i < count; i++)
		services[i].pid = start(services[i].argv, 1);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		struct signalfd_siginfo si;
		pid_t pid;

		if (poll(&p, 1, -1) < 0)
			continue;
		while (read(fd, &si, sizeof si) == sizeof si)
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				for (i = 0; i < count; i++)
					kill(services[i].pid, SIGKILL);
				exit(0);
			}
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			for (i = 0; i < count; i++)
				if (services[i].pid == pid)
					services[i].pid = start(services[i].argv, 1);
	}
}

static void reap(pid_t child)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == child)
			exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void init(char **argv, int use_poll)
{
	int fd = open_signals();
	pid_t child = start(argv, 0);

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		struct signalfd_siginfo si;
		int sig;

		if (!use_poll) {
			sig = sigwaitinfo(&all, NULL);
			if (sig > 0 && sig != SIGCHLD)
				kill(child, sig);
			reap(child);
			continue;
		}
		if (poll(&p, 1, -1) < 0)
			continue;
		while (read(fd, &si, sizeof si) == sizeof si)
			if (si.ssi_signo != SIGCHLD)
				kill(child, si.ssi_signo);
		reap(child);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "respawn"))
		respawn(argv[2]);
	else if (argc >= 3 && !strcmp(argv[1], "init"))
		init(argv + 2, 1);
	else if (argc >= 3 && !strcmp(argv[1], "sigwait"))
		init(argv + 2, 0);
	fprintf(stderr, "usage: floor respawn DIR | floor init CMD [ARG...] | floor sigwait CMD [ARG...]\n");
	return 2;
}
