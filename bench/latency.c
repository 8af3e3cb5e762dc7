// SPDX-License-Identifier: GPL-2.0-only
/* weft-bench-latency: per-request latency at a fixed request rate, one request
 * in flight, over one keep-alive HTTP/1.1 connection.
 *
 * Request i is due at start + i / RATE. The client sleeps (absolute
 * CLOCK_MONOTONIC deadline, 1 ns timer slack) until it is due, sends it, and
 * reads the whole response; its latency is response-complete minus sent, both
 * CLOCK_MONOTONIC. A request that could not be sent on time because the
 * previous one was still in flight is counted as "late" and sent at once; its
 * latency from the due time (the coordinated-omission-corrected figure) is kept
 * too, so a stalling proxy cannot hide behind a closed loop. The first
 * WARMUP_S seconds are not recorded.
 *
 * usage: weft-bench-latency ADDR PORT RATE SECONDS [WARMUP_S]
 * prints one JSON object: n, late, p50/p90/p99/p999/max/mean in µs (from sent),
 * and co_p99/co_p999 (from due). With BENCH_SLOW_LOG=PATH in the environment,
 * each recorded request that took longer than 1 ms is also written to PATH as
 * "SENT LATENCY_US", SENT in seconds of CLOCK_MONOTONIC, so a slow request can
 * be set against what else happened at that moment (bench/churn.py's events
 * carry the same clock).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 8192
#define RATE_MAX 100000
#define SECONDS_MAX 600

static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: weft-bench\r\n\r\n";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
			       .tv_nsec = (long)(t % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Content-Length of the header block [p, p + len), or -1. */
static long content_length(const char *p, size_t len)
{
	static const char name[] = "\r\ncontent-length:";
	size_t n = sizeof(name) - 1;

	for (size_t i = 0; i + n < len; i++) {
		if (!strncasecmp(p + i, name, n))
			return strtol(p + i + n, NULL, 10);
	}
	return -1;
}

/* One request/response. Returns 0 or a negative errno. */
static int exchange(int fd)
{
	char buf[RESP_MAX];
	size_t got = 0, need = 0;
	ssize_t n;

	if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(request) - 1))
		return -EIO;
	for (;;) {
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		got += (size_t)n;
		if (!need) {
			char *hdr_end = memmem(buf, got, "\r\n\r\n", 4);
			long cl;

			if (!hdr_end) {
				if (got == sizeof(buf))
					return -EPROTO;
				continue;
			}
			cl = content_length(buf, (size_t)(hdr_end - buf));
			if (cl < 0 || (size_t)cl > sizeof(buf))
				return -EPROTO;
			need = (size_t)(hdr_end + 4 - buf) + (size_t)cl;
			if (need > sizeof(buf))
				return -EPROTO;
		}
		if (got >= need)
			return got == need ? 0 : -EPROTO;	/* nothing pipelined */
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n), in µs. */
static double pct(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)(p * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	return (double)v[rank - 1] / 1000.0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || *end || end == s || *out < lo || *out > hi ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 5 };
	long port, rate, secs, warm = 1;
	uint64_t *lat, *co, interval, start, t_due, sum = 0;
	size_t n = 0, cap, late = 0;
	const char *slow_path = getenv("BENCH_SLOW_LOG");
	FILE *slow = NULL;
	int fd, one = 1, err;

	if (argc < 5 || argc > 6 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    parse_long(argv[2], 1, 65535, &port) || parse_long(argv[3], 1, RATE_MAX, &rate) ||
	    parse_long(argv[4], 1, SECONDS_MAX, &secs) ||
	    (argc == 6 && parse_long(argv[5], 0, SECONDS_MAX, &warm))) {
		fprintf(stderr, "usage: %s ADDR PORT RATE(1..%d) SECONDS [WARMUP_S]\n", argv[0],
			RATE_MAX);
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);
	cap = (size_t)(rate * secs);
	lat = calloc(cap, sizeof(*lat));
	co = calloc(cap, sizeof(*co));
	if (!lat || !co) {
		fprintf(stderr, "latency: out of memory\n");
		return 1;
	}
	if (slow_path && *slow_path && !(slow = fopen(slow_path, "w"))) {
		perror("latency: BENCH_SLOW_LOG");
		return 1;
	}
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("latency: connect");
		return 1;
	}

	interval = 1000000000ull / (uint64_t)rate;
	start = now_ns() + 1000000;	/* 1 ms from now */
	for (uint64_t i = 0;; i++) {
		uint64_t t_sent, t_done;
		bool record;

		t_due = start + i * interval;
		record = t_due >= start + (uint64_t)warm * 1000000000ull;
		if (t_due >= start + (uint64_t)(warm + secs) * 1000000000ull)
			break;
		t_sent = now_ns();
		if (t_sent < t_due) {
			sleep_until(t_due);
			t_sent = now_ns();
		} else if (record && t_sent - t_due > interval) {
			late++;
		}
		err = exchange(fd);
		t_done = now_ns();
		if (err) {
			fprintf(stderr, "latency: request %llu: %s\n", (unsigned long long)i,
				strerror(-err));
			return 1;
		}
		if (!record || n == cap)
			continue;
		lat[n] = t_done - t_sent;
		if (slow && lat[n] > 1000000)
			fprintf(slow, "%.6f %.1f\n", (double)t_sent / 1e9,
				(double)lat[n] / 1000.0);
		co[n] = t_done - t_due;
		sum += lat[n];
		n++;
	}
	close(fd);
	if (!n) {
		fprintf(stderr, "latency: no samples\n");
		return 1;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	qsort(co, n, sizeof(*co), cmp_u64);
	printf("{\"n\": %zu, \"late\": %zu, \"rate\": %ld, \"p50\": %.1f, \"p90\": %.1f, "
	       "\"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f, \"mean\": %.1f, "
	       "\"co_p99\": %.1f, \"co_p999\": %.1f}\n",
	       n, late, rate, pct(lat, n, 0.50), pct(lat, n, 0.90), pct(lat, n, 0.99),
	       pct(lat, n, 0.999), (double)lat[n - 1] / 1000.0, (double)sum / (double)n / 1000.0,
	       pct(co, n, 0.99), pct(co, n, 0.999));
	free(lat);
	free(co);
	if (slow)
		fclose(slow);
	return 0;
}
