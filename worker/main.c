/* worker: the asset-creation worker's command line (SPEC section 5). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "log.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: worker run --config FILE [--drain]\n"
		"       worker check-config --config FILE\n"
		"       worker migrate --config FILE\n"
		"       worker replay-dlq --config FILE [--error-class C] [--sqlstate S]\n"
		"                  [--constraint NAME] [--since TIME] [--limit N] [--dry-run]\n"
		"       worker --version | --help\n"
		"\n"
		"  run           consume asset.create requests and write them to PostgreSQL;\n"
		"                --drain exits 0 once caught up and nothing waits\n"
		"  check-config  validate the configuration (exit 0, or 2 with file:line:col)\n"
		"  migrate       create or update the database schema\n"
		"  replay-dlq    send dead letters back to the input topic\n"
		"\n"
		"Exit codes: 0 success, 1 failure, 2 usage or configuration error.\n"
		"SIGTERM/SIGINT stop gracefully; a second signal stops at once.\n");
}

struct cli {
	const char *command;
	const char *config_path;
	int drain;
};

/* Returns 0, or EXIT_USAGE after printing what is wrong. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "drain", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	cli->command = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cli->config_path = optarg; break;
		case 'd': cli->drain = 1; break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "worker: unexpected argument \"%s\"\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (!cli->config_path) {
		fprintf(stderr, "worker %s: --config FILE is required\n", cli->command);
		return EXIT_USAGE;
	}
	if (cli->drain && strcmp(cli->command, "run") != 0) {
		fprintf(stderr, "worker %s: option not valid for this command\n", cli->command);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct config *cfg = NULL;
	char errbuf[8192];
	int rc;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("worker %s\n", AW_VERSION);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		printf("\nConfiguration keys (worker.yaml):\n");
		config_describe(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "run") && strcmp(argv[1], "check-config") &&
	    strcmp(argv[1], "migrate") && strcmp(argv[1], "replay-dlq")) {
		fprintf(stderr, "worker: unknown command \"%s\"\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	/* replay-dlq has options of its own (replay_options.c). */
	if (strcmp(argv[1], "replay-dlq") == 0)
		return cmd_replay_dlq_main(argc, argv);
	if ((rc = parse_args(argc, argv, &cli)) != 0)
		return rc;

	if (config_load(cli.config_path, &cfg, errbuf, sizeof errbuf) < 0) {
		fputs(errbuf, stderr);
		if (errbuf[0] && errbuf[strlen(errbuf) - 1] != '\n')
			fputc('\n', stderr);
		return EXIT_USAGE;
	}
	if (strcmp(cli.command, "check-config") == 0) {
		printf("%s: ok\n", cli.config_path);
		config_free(cfg);
		return EXIT_OK;
	}

	log_setup(cfg->log.level, cfg->log.format, cfg->worker.id);
	config_register_secrets(cfg);
	if (strcmp(cli.command, "run") == 0)
		rc = cmd_run(cfg, cli.drain);
	else
		rc = cmd_migrate(cfg);
	config_free(cfg);
	log_cleanup();
	return rc;
}
