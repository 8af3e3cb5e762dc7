// SPDX-License-Identifier: GPL-2.0-only
/* weft-bench-publish-cpu: the agent loop's share of a registry change, alone
 * and deterministic. Three files (bench/publish_cpu.sh writes them with
 * bench/churn.py's services(): the sync, one change, the removal) are loaded
 * in turn by the file registry's loader on this thread, as its reload thread
 * would; what the loop then does with them (the sink applying the events to
 * the model in parts of at most 512 changes, a catalogue built and published
 * per part) runs in drain_phase(), the one function to count instructions
 * in (valgrind --tool=callgrind --toggle-collect=drain_phase; the script
 * does). No workers: their binds run on their own threads.
 *
 * usage: weft-bench-publish-cpu SYNC.yaml CHANGE.yaml REMOVE.yaml
 * Prints one JSON line per phase: the events' effect (services in the
 * catalogue, builds) and the loop thread's CPU time for it.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "addr.h"
#include "log.h"
#include "loop.h"
#include "model/catalogue.h"
#include "model/model.h"
#include "registry/file_load.h"
#include "registry/registry.h"

#define SRC "file:bench"
/* The agent's default --vip-range: every Service here has a cluster IP,
 * but allocation still runs whenever who holds a VIP changes.
 */
#define VIP_RANGES "240.241.0.0/16,fd77:6566:7400::/64"

struct bench {
	struct model *model;
	struct catalogue *cat;
	unsigned int builds;
};

/* What agent_publish() does on the loop, less the hand-over to workers. */
static void on_changed(void *ctx)
{
	struct bench *b = ctx;
	struct catalogue *c = model_build(b->model);

	if (!c) {
		fprintf(stderr, "bench: build failed\n");
		exit(1);
	}
	catalogue_unref(b->cat);
	b->cat = c;
	b->builds++;
}

static uint64_t thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The loop's work for what the last load queued; not inlined, so that
 * callgrind can count it alone.
 */
__attribute__((noinline)) void drain_phase(struct reg_sink *sink)
{
	reg_sink_drain(sink);
}

int main(int argc, char **argv)
{
	static const char *const phases[] = { "sync", "change", "remove" };
	struct file_applied applied = { 0 };
	struct bench b = { 0 };
	struct reg_sink *sink = NULL;
	struct loop *loop = NULL;
	atomic_bool stop = false;
	struct cidr ranges[2];
	char bad[64];
	int rc = 1, n_ranges;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SYNC.yaml CHANGE.yaml REMOVE.yaml\n", argv[0]);
		return 2;
	}
	log_set_level(LOG_LEVEL_WARN);
	loop = loop_new();
	b.model = model_new();
	n_ranges = addr_parse_cidr_list(VIP_RANGES, ranges, 2, bad, sizeof(bad));
	if (!loop || !b.model || n_ranges < 0 || model_declare_source(b.model, SRC) ||
	    model_set_vip_ranges(b.model, ranges, (size_t)n_ranges))
		goto out;
	sink = reg_sink_new(loop, b.model, on_changed, &b);
	if (!sink)
		goto out;
	for (int i = 0; i < 3; i++) {
		struct file_load_report rep;
		unsigned int builds = b.builds;
		uint64_t cpu;
		char err[256];

		if (file_load(&applied, argv[i + 1], SRC, sink, &stop, &rep, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench: %s: %s\n", argv[i + 1], err);
			goto out;
		}
		cpu = thread_cpu_us();
		drain_phase(sink);
		cpu = thread_cpu_us() - cpu;
		printf("{\"phase\":\"%s\",\"objects_sent\":%zu,\"builds\":%u,\"services\":%zu,"
		       "\"service_ports\":%zu,\"loop_cpu_us\":%llu}\n",
		       phases[i], rep.n_changes, b.builds - builds,
		       b.cat ? catalogue_n_services(b.cat) : 0, b.cat ? catalogue_n_svc_ports(b.cat) : 0,
		       (unsigned long long)cpu);
	}
	rc = 0;
out:
	reg_sink_free(sink);
	catalogue_unref(b.cat);
	model_free(b.model);
	loop_free(loop);
	file_applied_done(&applied);
	return rc;
}
