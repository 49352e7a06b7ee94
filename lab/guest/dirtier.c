// SPDX-License-Identifier: Apache-2.0
// The lab guest's workload: dirties a working set of guest RAM with a known
// pattern and rate, so migrations and dirty-rate measurements have ground
// truth. Static, no dependencies; configured from the kernel command line:
//   vmtide.ws_mib=64          working set in MiB
//   vmtide.rate=5000          pages per second (0: as fast as the CPU allows)
//   vmtide.pattern=random     sequential | random | hotcold | phased
//   vmtide.fill_mib=128       MiB made non-zero at start (what pass 0 sends)
// Every second it prints "dirtier: t=<s> pages=<total> rate=<pages/s>" on
// the console, which tests read as the guest's heartbeat.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * xorshift64*: cheap and good enough to spread writes uniformly, from its
 * high bits: the low bits of the product are the weak ones, and `% n` of
 * them skewed which pages got written (a hot tenth read a third lower in
 * the lab than its formula).
 */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (rng * 2685821657736338717ULL) >> 24;
}

static const char *arg(const char *cmdline, const char *key, const char *def)
{
	static char buf[64];
	const char *p = strstr(cmdline, key);

	if (!p)
		return def;
	p += strlen(key);
	size_t n = strcspn(p, " \n");
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = 0;
	return buf;
}

int main(int argc, char **argv)
{
	char cmdline[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(cmdline, sizeof(cmdline), f))
			cmdline[0] = 0;
		fclose(f);
	}
	/* Arguments on the command line of the program win (handy on a host). */
	for (int i = 1; i < argc; i++) {
		strncat(cmdline, " ", sizeof(cmdline) - strlen(cmdline) - 1);
		strncat(cmdline, argv[i], sizeof(cmdline) - strlen(cmdline) - 1);
	}
	unsigned long ws_mib = strtoul(arg(cmdline, "vmtide.ws_mib=", "64"), NULL, 10);
	double rate = strtod(arg(cmdline, "vmtide.rate=", "5000"), NULL);
	char pattern[32];
	snprintf(pattern, sizeof(pattern), "%s", arg(cmdline, "vmtide.pattern=", "random"));
	unsigned long fill_mib = strtoul(arg(cmdline, "vmtide.fill_mib=", "0"), NULL, 10);

	unsigned long map_mib = fill_mib > ws_mib ? fill_mib : ws_mib;
	size_t pages = ws_mib * 1024 * 1024 / PAGE;
	char *mem = mmap(NULL, map_mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pages == 0) {
		printf("dirtier: cannot map %lu MiB\n", map_mib);
		return 1;
	}
	for (size_t off = 0; off < (fill_mib << 20); off += PAGE)
		mem[off] = 1;
	printf("dirtier: ws=%lu MiB (%zu pages) rate=%.0f pages/s pattern=%s fill=%lu MiB\n", ws_mib, pages, rate,
	       pattern, fill_mib);
	fflush(stdout);

	const uint64_t start = now_ns();
	uint64_t written = 0, last_report = start, last_written = 0;
	size_t seq = 0;
	for (;;) {
		/* Write in batches of 16 pages, then pace to the rate by wall time. */
		for (int b = 0; b < 16; b++) {
			size_t page;
			uint64_t t = now_ns() - start;
			if (!strcmp(pattern, "sequential")) {
				page = seq++ % pages;
			} else if (!strcmp(pattern, "hotcold")) {
				/* 90 % of writes to the hottest 10 % of the set. */
				size_t hot = pages / 10 ? pages / 10 : 1;
				page = next_rand() % 10 ? next_rand() % hot : next_rand() % pages;
			} else if (!strcmp(pattern, "phased")) {
				/* 10 s with the whole set, 10 s with a tenth of it. */
				size_t n = (t / 10000000000ULL) % 2 ? (pages / 10 ? pages / 10 : 1) : pages;
				page = next_rand() % n;
			} else {
				page = next_rand() % pages;
			}
			mem[page * PAGE + (written % 64) * 8]++;
			written++;
		}
		if (rate > 0) {
			uint64_t due = start + (uint64_t)((double)written / rate * 1e9);
			uint64_t t = now_ns();
			if (due > t) {
				struct timespec ts = { (time_t)(due / 1000000000ULL), (long)(due % 1000000000ULL) };
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
		}
		uint64_t t = now_ns();
		if (t - last_report >= 1000000000ULL) {
			printf("dirtier: t=%.0f pages=%llu rate=%.0f\n", (double)(t - start) / 1e9,
			       (unsigned long long)written,
			       (double)(written - last_written) * 1e9 / (double)(t - last_report));
			fflush(stdout);
			last_report = t;
			last_written = written;
		}
	}
}
