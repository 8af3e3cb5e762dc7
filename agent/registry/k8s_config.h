/* SPDX-License-Identifier: GPL-2.0-only */
/* Where the Kubernetes API server is and how to prove who we are: read once
 * at start from the in-cluster service account or from a kubeconfig, for
 * the watcher (k8s.c). Only the bearer token file is read again later
 * (k8s_token_read()), because kubelet rotates projected tokens. No network.
 */
#ifndef WEFT_REG_K8S_CONFIG_H
#define WEFT_REG_K8S_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* The service account volume every pod gets (token, ca.crt, namespace). */
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Largest kubeconfig, certificate or token file read. */
#define K8S_FILE_MAX (4u << 20)

/* Room for any message these functions write. */
#define K8S_CFG_ERR_MAX 512

/* Bytes held in memory (certificate-authority-data and friends, decoded). */
struct k8s_blob {
	unsigned char *data;	/* owned; NULL when unset */
	size_t len;
};

/* One API server and one identity. Every member is owned; NULL/empty when
 * unset. PEM data given inline wins over a file of the same role, as in
 * kubectl.
 */
struct k8s_conn_cfg {
	char *server;		/* "https://host:port[/prefix]", no trailing '/' */
	char *ca_file;		/* PEM bundle; none of ca_file/ca_pem: the system's CAs */
	struct k8s_blob ca_pem;
	bool insecure;		/* insecure-skip-tls-verify: no server certificate check */
	char *cert_file;	/* client certificate (PEM) ... */
	struct k8s_blob cert_pem;
	char *key_file;		/* ... and its key */
	struct k8s_blob key_pem;
	char *token;		/* a fixed bearer token */
	char *token_file;	/* a bearer token re-read before every request */
	char origin[320];	/* "in-cluster" or "kubeconfig '/x' context 'y'", for messages */
};

/* The in-cluster configuration: server https://@host:@port (the values of
 * KUBERNETES_SERVICE_HOST/_PORT; an IPv6 @host is bracketed here), CA
 * @sa_dir/ca.crt, token file @sa_dir/token. Checks that both files can be
 * read. 0, or -errno with the problem in @err (-ENOENT when @host is NULL or
 * empty: not running in a cluster). On failure @c is left empty. No network.
 */
int k8s_conn_in_cluster(const char *sa_dir, const char *host, const char *port,
			struct k8s_conn_cfg *c, char *err, size_t errlen);

/* The configuration of the current context of the kubeconfig @paths (one
 * path, or several separated by ':' merged as kubectl merges KUBECONFIG:
 * the first file that sets current-context wins, and the first definition
 * of each named context, cluster and user wins). Supports server,
 * certificate-authority(-data), insecure-skip-tls-verify; token, tokenFile,
 * client-certificate(-data), client-key(-data). Relative file paths are
 * relative to the kubeconfig that names them. Credential plugins (exec,
 * auth-provider) and basic auth are refused. 0, or -errno with the problem
 * (file, context, field) in @err. On failure @c is left empty. No network.
 */
int k8s_conn_from_kubeconfig(const char *paths, struct k8s_conn_cfg *c, char *err,
			     size_t errlen);

/* Free what @c owns and zero it. Accepts an empty @c. */
void k8s_conn_done(struct k8s_conn_cfg *c);

/* Read the bearer token in @path: its content without surrounding white
 * space. 0 and a new string in *@out (caller frees), or -errno (-ENODATA
 * for an empty file). May block on the filesystem, never on the network.
 */
int k8s_token_read(const char *path, char **out);

/* Decode standard base64 (padding optional, white space ignored) into a new
 * buffer. 0 and @out filled (caller frees out->data), -EINVAL or -ENOMEM.
 */
int k8s_base64_decode(const char *in, struct k8s_blob *out);

#endif /* WEFT_REG_K8S_CONFIG_H */
