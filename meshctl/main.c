// SPDX-License-Identifier: GPL-2.0-only
/* meshctl: set up libcurl and run the command line (cli.c). No logic here. */
#include <curl/curl.h>
#include <stdio.h>

#include "meshctl.h"

int main(int argc, char **argv)
{
	int ret;

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "meshctl: cannot initialise libcurl\n");
		return MESHCTL_ERR;
	}
	ret = meshctl_main(argc, argv, stdout, stderr);
	curl_global_cleanup();
	if (fflush(stdout) == EOF)
		return MESHCTL_ERR;
	return ret;
}
