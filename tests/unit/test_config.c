/* flipd's command line: the resource-bound options parse into the config
 * with their documented defaults, and out-of-range values are refused. */
#include <stdio.h>
#include <string.h>

#include "../lib/runner.h"
#include "lib/err.h"
#include "server/config.h"

#define BASE_ARGS                                                  \
    "flipd", "--id", "1", "--data", "/nonexistent", "--client",    \
        "127.0.0.1:7001", "--raft", "127.0.0.1:9001", "--cluster", \
        "1=127.0.0.1:9001/127.0.0.1:7001"

static int parse(struct config *c, char **argv, int argc)
{
    char err[256];
    int help = 0;
    return config_parse(c, argc, argv, &help, err, sizeof err);
}

/* Without the options, every bound has the default docs/protocol.md
 * section 10 gives. */
TEST(config_bound_defaults, 10)
{
    char *argv[] = { BASE_ARGS };
    struct config c;

    CHECK_EQ_INT(parse(&c, argv, (int)(sizeof argv / sizeof argv[0])), FLIP_OK);
    CHECK_EQ_INT(c.max_inflight, 64);
    CHECK_EQ_INT(c.node_inflight, 16384);
    CHECK(c.output_budget == 256u * 1024u * 1024u);
    CHECK(c.input_budget == 256u * 1024u * 1024u);
    CHECK(c.sub_budget == 256u * 1024u * 1024u);
    CHECK_EQ_INT(c.idle_timeout_ms, 300000);
    CHECK_EQ_INT(c.frame_timeout_ms, 30000);
    CHECK_EQ_INT(c.sub_snapshot_ms, 30000);
    CHECK(c.sub_snapshot_pin == 64u * 1024u * 1024u);
    CHECK_EQ_INT(c.fd_reserve, 64);
}

/* Each option lands in its field; 0 turns the idle timeout off. */
TEST(config_bound_options, 10)
{
    char *argv[] = {
        BASE_ARGS, "--max-inflight",    "8",       "--max-inflight-node",
        "100",     "--output-budget",   "2097152", "--sub-budget",
        "3145728", "--idle-timeout-ms", "0",       "--frame-timeout-ms",
        "500",     "--sub-snapshot-ms", "700",     "--sub-snapshot-pin",
        "1048576", "--fd-reserve",      "100"
    };
    struct config c;

    CHECK_EQ_INT(parse(&c, argv, (int)(sizeof argv / sizeof argv[0])), FLIP_OK);
    CHECK_EQ_INT(c.max_inflight, 8);
    CHECK_EQ_INT(c.node_inflight, 100);
    CHECK(c.output_budget == 2097152);
    CHECK(c.sub_budget == 3145728);
    CHECK_EQ_INT(c.idle_timeout_ms, 0);
    CHECK_EQ_INT(c.frame_timeout_ms, 500);
    CHECK_EQ_INT(c.sub_snapshot_ms, 700);
    CHECK(c.sub_snapshot_pin == 1048576);
    CHECK_EQ_INT(c.fd_reserve, 100);
}

/* A bound of 0 in-flight requests (or a reserve too small for raft) would
 * wedge the node: refused at start. */
TEST(config_bound_ranges, 10)
{
    static const char *bad[][2] = {
        { "--max-inflight", "0" },       { "--max-inflight-node", "0" },
        { "--output-budget", "1000" },   { "--sub-budget", "1000" },
        { "--frame-timeout-ms", "10" },  { "--sub-snapshot-ms", "0" },
        { "--sub-snapshot-pin", "100" }, { "--fd-reserve", "4" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = { BASE_ARGS, (char *)bad[i][0], (char *)bad[i][1] };
        struct config c;
        CHECK_EQ_INT(parse(&c, argv, (int)(sizeof argv / sizeof argv[0])),
                     FLIP_INVALID);
    }
}
