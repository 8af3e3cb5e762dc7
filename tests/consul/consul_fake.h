/* SPDX-License-Identifier: GPL-2.0-only */
/* The C side of the fake Consul (consul_fake.py next to this file), for
 * the unit tests of the Consul registry backend: start it on 127.0.0.1
 * (plain or TLS with a test CA made by the openssl CLI, with or without an
 * ACL token), kill and restart it on the same port, and drive it through
 * Consul's own catalog API and its /_test/ calls. Run the tests from the
 * top of the tree.
 */
#ifndef WEFT_TEST_CONSUL_FAKE_H
#define WEFT_TEST_CONSUL_FAKE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

struct cfake {
	char dir[PATH_MAX];		/* temp folder: certificates, port file */
	char ca[PATH_MAX + 16];		/* the test CA (TLS only) */
	char url[64];			/* http(s)://127.0.0.1:PORT */
	uint16_t port;
	pid_t pid;			/* 0 when not running */
	bool tls;
	char token[64];			/* "" = ACLs off */
};

/* Start a server; @tls: https with a fresh CA; @token: the ACL token it
 * demands (NULL = none). 0 or -1 (message on stderr).
 */
int cfake_start(struct cfake *f, bool tls, const char *token);

/* Kill the server (an outage). */
void cfake_kill(struct cfake *f);

/* Start it again on the same port, empty and with its index starting low:
 * a rebuilt cluster. 0 or -1.
 */
int cfake_restart(struct cfake *f);

/* Kill and remove the folder. Idempotent. */
void cfake_stop(struct cfake *f);

/* PUT /v1/catalog/register: instance @id of service @name at @ip:@port
 * with @tags_json (a JSON array text), passing. 0 or -1.
 */
int cfake_register(struct cfake *f, const char *id, const char *name, const char *ip,
		   int port, const char *tags_json);

/* PUT /v1/catalog/deregister of instance @id. 0 or -1. */
int cfake_deregister(struct cfake *f, const char *id);

/* POST /_test/@what with @json. 0 or -1. */
int cfake_test(struct cfake *f, const char *what, const char *json);

/* GET @path (with the token); the parsed answer, caller puts it; NULL on error. */
json_object *cfake_get(struct cfake *f, const char *path);

/* A counter of /_test/stats; -1 on error. */
long long cfake_stat(struct cfake *f, const char *key);

#endif /* WEFT_TEST_CONSUL_FAKE_H */
