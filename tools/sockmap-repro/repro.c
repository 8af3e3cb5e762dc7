// SPDX-License-Identifier: GPL-2.0-only
/* Standalone reproducer for sk_skb/sockmap redirect corruption, no weft code.
 * Two TCP connections over loopback (client C -> A, "proxy" U -> server S);
 * A and U in a SOCKHASH whose stream verdict redirects every skb to the
 * peer's egress; the server echoes; the client sends SIZE bytes of a
 * pattern and checks what comes back. Run it inside a fresh netns
 * (run.sh does: unshare -n). Options:
 *   -n RUNS  -s BYTES  -p (attach a stream parser too)  -c CPU_HOGS
 *   -t NET_PUMPS  -b BUF (SO_SNDBUF/SO_RCVBUF on A and U)  -x EXCHANGES
 *   (relayed in user space before the switch)  -o OBJ (bpf object)
 *   -i (pass the peer's ingress instead: BPF_F_INGRESS variant object)
 *   -H (half-close: client shuts down after sending; proxy passes the FIN
 *       once the peer's TCP took every redirected byte)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static size_t size = 16u << 20;
static int runs = 20, hogs, pumps, bufsz, exchanges = 12;
static bool parser, half;
static const char *obj_path = "repro.bpf.o";

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int slow_ms;

static unsigned char pat(size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u;

	return (unsigned char)((x >> 24) ^ (uint32_t)(i >> 13));
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&a, sizeof(a)) || listen(fd, 16) || getsockname(fd, (void *)&a, &l))
		die("listen");
	*port = ntohs(a.sin_port);
	return fd;
}

static void pair(int *c, int *s)
{
	uint16_t port;
	int l = listener(&port);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*c, (void *)&a, sizeof(a)))
		die("connect");
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		die("accept");
	close(l);
}

static uint64_t cookie(int fd)
{
	uint64_t c;
	socklen_t l = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l))
		die("SO_COOKIE");
	return c;
}

static void writeall(int fd, const void *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w <= 0)
			die("write");
		b = (const char *)b + w;
		n -= (size_t)w;
	}
}

static void readall(int fd, void *b, size_t n)
{
	while (n) {
		ssize_t r = read(fd, b, n);

		if (r <= 0)
			die("read");
		b = (char *)b + r;
		n -= (size_t)r;
	}
}

static void *echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread char b[65536];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0) {
		/* A reset by the "proxy" ends the echo, not the program. */
		for (ssize_t off = 0, w; off < n; off += w) {
			w = write(fd, b + off, (size_t)(n - off));
			if (w <= 0)
				return NULL;
		}
	}
	shutdown(fd, SHUT_WR);
	return NULL;
}

static void hog_loop(void)
{
	volatile uint64_t x = 0;

	for (;;)
		x++;
}

static void pump_loop(void)
{
	static char b[65536];
	int c, s;

	pair(&c, &s);
	if (fork() == 0) {
		for (;;)
			if (read(s, b, sizeof(b)) <= 0)
				_exit(0);
	}
	for (;;)
		if (write(c, b, sizeof(b)) <= 0)
			_exit(0);
}

static uint64_t tcp_written(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
	return ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans + ti.tcpi_notsent_bytes;
}

/* Where the 64 bytes @got sit in the pattern near @at: the shift, or a
 * sentinel when they are found nowhere within 8 MiB.
 */
static long long locate(const unsigned char *got, size_t n, size_t at)
{
	size_t lo = at > (8u << 20) ? at - (8u << 20) : 0, hi = at + (8u << 20);

	for (size_t p = lo; p < hi; p++) {
		size_t i = 0;

		while (i < n && got[i] == pat(p + i))
			i++;
		if (i == n)
			return (long long)p - (long long)at;
	}
	return 1LL << 62;
}

struct fp {
	struct bpf_object *obj;
	int socks, peers, stats;
};

static int one_run(struct fp *fp, int run)
{
	static unsigned char wbuf[65536], rbuf[65536];
	int c, a, u, s, err = 0;
	size_t sent = 0, got = 0;
	uint64_t ca, cu, zero = 0, st[3];
	uint64_t wr_off_u, wr_off_a, fa, fu;
	pthread_t th;
	bool a_eof = false, u_eof = false, u_shut = false, a_shut = false;

	pair(&c, &a);
	pair(&u, &s);
	if (bufsz) {
		setsockopt(a, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		setsockopt(a, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		setsockopt(u, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		setsockopt(u, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	}
	pthread_create(&th, NULL, echo, (void *)(intptr_t)s);
	/* a few exchanges relayed in user space, as a proxy would */
	for (int r = 0; r < exchanges; r++) {
		char m[64], in[64];

		memset(m, 'a' + r, sizeof(m));
		writeall(c, m, sizeof(m));
		readall(a, in, sizeof(in));
		writeall(u, in, sizeof(in));
		readall(u, in, sizeof(in));
		writeall(a, in, sizeof(in));
		readall(c, in, sizeof(in));
	}
	for (uint32_t k = 0; k < 3; k++)
		bpf_map_update_elem(fp->stats, &k, &zero, BPF_ANY);
	wr_off_u = tcp_written(u);
	wr_off_a = tcp_written(a);
	ca = cookie(a);
	cu = cookie(u);
	if (bpf_map_update_elem(fp->peers, &ca, &cu, BPF_ANY) ||
	    bpf_map_update_elem(fp->peers, &cu, &ca, BPF_ANY))
		die("peers");
	fa = (uint64_t)a;
	fu = (uint64_t)u;
	if (bpf_map_update_elem(fp->socks, &ca, &fa, BPF_NOEXIST) ||
	    bpf_map_update_elem(fp->socks, &cu, &fu, BPF_NOEXIST))
		die("socks");

	uint64_t last = now_ms(), gap = 0, gap_at = 0, t0 = last;
	size_t slow_next = 1u << 20;

	while (got < size) {
		struct pollfd p[3] = {
			{ .fd = c, .events = POLLIN | (sent < size ? POLLOUT : 0) },
			{ .fd = a, .events = half && !a_eof ? POLLRDHUP : 0 },
			{ .fd = u, .events = half && !u_eof ? POLLRDHUP : 0 },
		};

		if (poll(p, 3, 5000) < 1) {
			printf("run %d: STALL sent=%zu got=%zu\n", run, sent, got);
			err = 1;
			break;
		}
		if ((p[1].revents | p[2].revents) & POLLERR) {
			/* A proxy resets the connection here. */
			printf("run %d: SOCKET ERROR on %s at got=%zu sent=%zu\n", run,
			       p[1].revents & POLLERR ? "A (client side)" : "U (upstream)", got, sent);
			err = 1;
			break;
		}
		if ((p[0].revents & POLLOUT) && sent < size) {
			size_t n = size - sent < sizeof(wbuf) ? size - sent : sizeof(wbuf);
			ssize_t w;

			for (size_t i = 0; i < n; i++)
				wbuf[i] = pat(sent + i);
			w = send(c, wbuf, n, MSG_DONTWAIT);
			if (w > 0)
				sent += (size_t)w;
			if (sent == size && half)
				shutdown(c, SHUT_WR);
		}
		if (p[0].revents & POLLIN) {
			ssize_t n = recv(c, rbuf, size - got < sizeof(rbuf) ? size - got : sizeof(rbuf),
					 MSG_DONTWAIT);

			if (n <= 0) {
				printf("run %d: EARLY END at %zu (sent %zu)\n", run, got, sent);
				err = 1;
				break;
			}
			for (ssize_t i = 0; i < n; i++) {
				if (rbuf[i] != pat(got + (size_t)i)) {
					size_t off = got + (size_t)i;
					size_t k = (size_t)n - (size_t)i < 64 ? (size_t)n - (size_t)i : 64;
					long long sh = locate(rbuf + i, k, off);

					printf("run %d: BAD byte at %zu (chunk@%zu+%zd) want %02x got %02x; ",
					       run, off, got, i, pat(off), rbuf[i]);
					if (sh == 1LL << 62)
						printf("next %zu bytes not from the stream within 8 MiB\n", k);
					else
						printf("next %zu bytes are stream offset %+lld (%s)\n", k, sh,
						       sh > 0 ? "bytes lost" : "bytes repeated");
					err = 1;
					break;
				}
			}
			if (err)
				break;
			got += (size_t)n;
			if (now_ms() - last > gap) {
				gap = now_ms() - last;
				gap_at = got;
			}
			last = now_ms();
			if (slow_ms && got >= slow_next) {
				slow_next += 1u << 20;
				usleep((useconds_t)slow_ms * 1000);
				last = now_ms();
			}
		}
		/* half-close: pass a FIN on once the other socket took the bytes */
		if (half && (p[1].revents & (POLLRDHUP | POLLHUP)) && !a_eof) {
			char b;

			if (recv(a, &b, 1, MSG_DONTWAIT) == 0)
				a_eof = true;
		}
		if (half && a_eof && !u_shut) {
			uint32_t k = 1;

			bpf_map_lookup_elem(fp->stats, &k, &st[1]);
			(void)st;
			/* both directions count into one slot here; wait until
			 * u's TCP took everything sent through it
			 */
			if (tcp_written(u) - wr_off_u >= sent) {
				shutdown(u, SHUT_WR);
				u_shut = true;
			}
		}
		if (half && (p[2].revents & (POLLRDHUP | POLLHUP)) && !u_eof) {
			char b;

			if (recv(u, &b, 1, MSG_DONTWAIT) == 0)
				u_eof = true;
		}
		if (half && u_eof && !a_shut && tcp_written(a) - wr_off_a >= sent) {
			shutdown(a, SHUT_WR);
			a_shut = true;
		}
	}
	for (uint32_t k = 0; k < 3; k++)
		bpf_map_lookup_elem(fp->stats, &k, &st[k]);
	if (gap >= 200 || getenv("REPRO_VERBOSE"))
		printf("run %d: longest wait for echoed bytes %llu ms (at %zu), run %llu ms\n", run,
		       (unsigned long long)gap, gap_at, (unsigned long long)(now_ms() - t0));
	if (err) {
		int ea = 0, eu = 0;
		socklen_t l = sizeof(ea);

		getsockopt(a, SOL_SOCKET, SO_ERROR, &ea, &l);
		l = sizeof(eu);
		getsockopt(u, SOL_SOCKET, SO_ERROR, &eu, &l);
		printf("run %d: socket errors: A (client side) %s, U (upstream) %s; "
		       "FIN passed on: to U %d, to A %d\n", run, ea ? strerror(ea) : "none",
		       eu ? strerror(eu) : "none", u_shut, a_shut);
	}
	if (err || getenv("REPRO_VERBOSE"))
		printf("run %d: redirects=%llu bytes=%llu failed_redirects=%llu\n", run,
		       (unsigned long long)st[0], (unsigned long long)st[1],
		       (unsigned long long)st[2]);
	bpf_map_delete_elem(fp->peers, &ca);
	bpf_map_delete_elem(fp->peers, &cu);
	close(c);
	close(a);
	close(u);
	shutdown(s, SHUT_RDWR);
	pthread_join(th, NULL);
	close(s);
	return err;
}

int main(int argc, char **argv)
{
	struct fp fp;
	struct bpf_program *verdict, *prs;
	pid_t kids[64];
	int nk = 0, opt, bad = 0;

	while ((opt = getopt(argc, argv, "n:s:pc:t:b:x:o:Hd:")) != -1) {
		switch (opt) {
		case 'n': runs = atoi(optarg); break;
		case 's': size = strtoull(optarg, NULL, 0); break;
		case 'p': parser = true; break;
		case 'c': hogs = atoi(optarg); break;
		case 't': pumps = atoi(optarg); break;
		case 'b': bufsz = atoi(optarg); break;
		case 'x': exchanges = atoi(optarg); break;
		case 'o': obj_path = optarg; break;
		case 'H': half = true; break;
		case 'd': slow_ms = atoi(optarg); break;
		default: fprintf(stderr, "see the comment at the top\n"); return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	fp.obj = bpf_object__open_file(obj_path, NULL);
	if (!fp.obj || bpf_object__load(fp.obj))
		die("bpf load");
	fp.socks = bpf_object__find_map_fd_by_name(fp.obj, "socks");
	fp.peers = bpf_object__find_map_fd_by_name(fp.obj, "peers");
	fp.stats = bpf_object__find_map_fd_by_name(fp.obj, "stats");
	verdict = bpf_object__find_program_by_name(fp.obj, "repro_verdict");
	prs = bpf_object__find_program_by_name(fp.obj, "repro_parser");
	if (parser && bpf_prog_attach(bpf_program__fd(prs), fp.socks, BPF_SK_SKB_STREAM_PARSER, 0))
		die("attach parser");
	if (bpf_prog_attach(bpf_program__fd(verdict), fp.socks, BPF_SK_SKB_STREAM_VERDICT, 0))
		die("attach verdict");
	for (int i = 0; i < hogs && nk < 64; i++)
		if ((kids[nk++] = fork()) == 0)
			hog_loop();
	for (int i = 0; i < pumps && nk < 64; i++)
		if ((kids[nk++] = fork()) == 0) {
			setpgid(0, 0);
			pump_loop();
		}
	for (int r = 0; r < runs; r++)
		bad += one_run(&fp, r);
	for (int i = 0; i < nk; i++) {
		kill(kids[i], SIGKILL);
		kill(-kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	printf("%s parser=%d half=%d buf=%d hogs=%d pumps=%d: %d of %d runs failed\n",
	       obj_path, parser, half, bufsz, hogs, pumps, bad, runs);
	return bad ? 1 : 0;
}
