/* Load generator for bench/syscall_capture.py: openat + close of one file at a fixed rate.
 *
 * usage: openclose PATH PAIRS_PER_SECOND SECONDS [CPU...]
 *   PAIRS_PER_SECOND 0: as fast as possible.
 *   CPU...: one thread per CPU listed, pinned to it, each doing an equal share of the rate
 *   (default: one thread, where it was started).
 * Prints "<pairs done> <elapsed ns>" on stdout when done. Every pair is two syscalls the probe
 * reports (openat, close), so the events generated are twice the pairs.
 *
 * The rate is kept by a schedule, not by sleeping after each pair: pairs are issued in slices of
 * 1 ms worth, and the loop sleeps only when it is ahead of the schedule, so short sleeps' jitter
 * does not lower the rate.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

struct job {
	const char *path;
	double rate; /* pairs per second, this thread */
	uint64_t start, end;
	int cpu;     /* -1: not pinned */
	uint64_t done;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg)
{
	struct job *job = arg;
	if (job->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(job->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			perror("pthread_setaffinity_np");
	}
	double rate = job->rate;
	uint64_t slice = rate > 0 ? (uint64_t)(rate / 1000.0) : 1000; /* pairs per 1 ms */
	if (slice == 0)
		slice = 1;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= job->end)
			break;
		if (rate > 0) {
			/* pairs that should have been issued by now */
			uint64_t due = (uint64_t)((double)(now - job->start) * rate / 1e9);
			if (job->done >= due) {
				uint64_t next = job->start
					+ (uint64_t)((double)(job->done + slice) * 1e9 / rate);
				if (next > job->end)
					next = job->end;
				struct timespec ts = {0, 0};
				uint64_t wait = next > now ? next - now : 0;
				ts.tv_sec = (time_t)(wait / 1000000000ull);
				ts.tv_nsec = (long)(wait % 1000000000ull);
				nanosleep(&ts, NULL);
				continue;
			}
		}
		for (uint64_t i = 0; i < slice; i++) {
			int fd = openat(AT_FDCWD, job->path, O_RDONLY);
			close(fd); /* even a failed open (fd -1) makes exactly two syscalls */
		}
		job->done += slice;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc - 4 > MAX_THREADS) {
		fprintf(stderr, "usage: %s PATH PAIRS_PER_SECOND SECONDS [CPU...]\n", argv[0]);
		return 2;
	}
	int nthreads = argc > 4 ? argc - 4 : 1;
	struct job jobs[MAX_THREADS];
	pthread_t threads[MAX_THREADS];
	uint64_t start = now_ns();
	uint64_t end = start + (uint64_t)(atof(argv[3]) * 1e9);
	for (int t = 0; t < nthreads; t++) {
		jobs[t] = (struct job){argv[1], atof(argv[2]) / nthreads, start, end,
				       argc > 4 ? atoi(argv[4 + t]) : -1, 0};
		if (pthread_create(&threads[t], NULL, run, &jobs[t])) {
			perror("pthread_create");
			return 1;
		}
	}
	uint64_t done = 0;
	for (int t = 0; t < nthreads; t++) {
		pthread_join(threads[t], NULL);
		done += jobs[t].done;
	}
	printf("%llu %llu\n", (unsigned long long)done, (unsigned long long)(now_ns() - start));
	return 0;
}
