/* Load generator for bench/syscall_capture.py: openat + close of one file at a fixed rate.
 *
 * usage: openclose PATH PAIRS_PER_SECOND SECONDS
 *   PAIRS_PER_SECOND 0: as fast as possible.
 * Prints "<pairs done> <elapsed ns>" on stdout when done. Every pair is two syscalls the probe
 * reports (openat, close), so the events generated are twice the pairs.
 *
 * The rate is kept by a schedule, not by sleeping after each pair: pairs are issued in slices of
 * 1 ms worth, and the loop sleeps only when it is ahead of the schedule, so short sleeps' jitter
 * does not lower the rate.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PATH PAIRS_PER_SECOND SECONDS\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	double rate = atof(argv[2]);
	double seconds = atof(argv[3]);
	uint64_t start = now_ns();
	uint64_t end = start + (uint64_t)(seconds * 1e9);
	uint64_t done = 0;
	uint64_t slice = rate > 0 ? (uint64_t)(rate / 1000.0) : 1000; /* pairs per 1 ms */
	if (slice == 0)
		slice = 1;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= end)
			break;
		if (rate > 0) {
			/* pairs that should have been issued by now */
			uint64_t due = (uint64_t)((double)(now - start) * rate / 1e9);
			if (done >= due) {
				uint64_t next = start + (uint64_t)((double)(done + slice) * 1e9 / rate);
				if (next > end)
					next = end;
				struct timespec ts = {0, 0};
				uint64_t wait = next > now ? next - now : 0;
				ts.tv_sec = (time_t)(wait / 1000000000ull);
				ts.tv_nsec = (long)(wait % 1000000000ull);
				nanosleep(&ts, NULL);
				continue;
			}
		}
		for (uint64_t i = 0; i < slice; i++) {
			int fd = openat(AT_FDCWD, path, O_RDONLY);
			close(fd); /* even a failed open (fd -1) makes exactly two syscalls */
		}
		done += slice;
	}
	printf("%llu %llu\n", (unsigned long long)done, (unsigned long long)(now_ns() - start));
	return 0;
}
