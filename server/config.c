/* flipd command line; see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/num.h"
#include "proto/codec.h"

const char config_usage[] =
    "usage: flipd --id N --data DIR --client HOST:PORT --raft HOST:PORT\n"
    "             --cluster ID=RAFT_HOST:PORT/CLIENT_HOST:PORT[,...]\n"
    "             [options]\n"
    "\n"
    "Runs one node of a flipd cluster. On first start with an empty data\n"
    "directory the node bootstraps the --cluster configuration; afterwards\n"
    "it restarts from its data directory (the same flags are fine).\n"
    "A value follows its flag or an '=' (--election-ms=700); flags are\n"
    "never abbreviated.\n"
    "\n"
    "required:\n"
    "  --id N                  this node's id (1..2^63), unique in the "
    "cluster\n"
    "  --data DIR              data directory (raft log + LMDB); created\n"
    "  --client HOST:PORT      address clients and flipctl connect to\n"
    "  --raft HOST:PORT        address peers connect to (IPv4 literal)\n"
    "  --raft-bind HOST:PORT   listen for peers here instead (same port as\n"
    "                          --raft; e.g. 0.0.0.0:PORT behind NAT, or a\n"
    "                          test proxy in front of the node)\n"
    "  --cluster LIST          every initial member: ID=RAFT/CLIENT,...\n"
    "  --join H:P,...          instead of --cluster: a node added to a\n"
    "                          running cluster (client addresses of its\n"
    "                          members, for the log). It never bootstraps:\n"
    "                          it waits until `flipctl member add` adds it,\n"
    "                          then takes its state from the leader\n"
    "options:\n"
    "  --election-ms N         election timeout (default 500): followers\n"
    "                          give up a leader they have not heard from\n"
    "                          after 1-2x this (a leader whose process died\n"
    "                          is found at once: its port refuses); keep it\n"
    "                          far above the longest stall of a node or\n"
    "                          link (docs/protocol.md section 18)\n"
    "  --heartbeat-ms N        heartbeat interval (default 10; see\n"
    "                          docs/known-issues.md #4 for why so short)\n"
    "  --snapshot-threshold N  entries between snapshots (default 4096)\n"
    "  --snapshot-trailing N   entries kept after a snapshot (default 1024,\n"
    "                          at least 64: below libraft's 32 entries in\n"
    "                          flight a lagging follower can livelock)\n"
    "  --changelog-keep N      change-log rows kept for resume (default "
    "10000)\n"
    "  --max-store-bytes N     size budget of the store: keys and records of\n"
    "                          flags and change log (default 268435456).\n"
    "                          A set past it drops the oldest change-log\n"
    "                          rows first, else fails with STORE_FULL;\n"
    "                          deletes always work. The LMDB map is sized\n"
    "                          from it (3x + 256 MiB, at least 1 GiB)\n"
    "  --max-frame BYTES       largest client frame, both directions\n"
    "                          (default 1048576, at least 131072)\n"
    "  --max-conns N           client connection limit (default 100000)\n"
    "  --segment-size BYTES    raft segment size (default 8388608)\n"
    "  --sub-buffer BYTES      output a subscriber may fall behind before it\n"
    "                          is cut off as slow (default 4194304, at\n"
    "                          least 65536 and twice the largest value)\n"
    "  --sub-heartbeat-ms N    subscription heartbeat interval (default "
    "1000)\n";

/* Split in two: C11 promises string literals of 4095 bytes only. */
const char config_usage_limits[] =
    "limits (what happens when one is hit: docs/protocol.md section 10):\n"
    "  --max-inflight N        requests in flight per connection; above it\n"
    "                          the node stops reading that connection\n"
    "                          (default 64)\n"
    "  --max-inflight-node N   requests in flight on the node; above it\n"
    "                          requests get UNAVAILABLE (default 16384)\n"
    "  --output-budget BYTES   responses queued on all connections; above it\n"
    "                          reads wait and connections pause (default\n"
    "                          268435456)\n"
    "  --input-budget BYTES    unfinished frames buffered on all connections;\n"
    "                          above it the connection adding to them is\n"
    "                          closed (default 268435456)\n"
    "  --sub-budget BYTES      events queued to all subscribers; above it the\n"
    "                          slowest are cut off (default 268435456)\n"
    "  --idle-timeout-ms N     close a connection idle this long, 0 = never\n"
    "                          (default 300000; subscribers are exempt)\n"
    "  --frame-timeout-ms N    close a connection that leaves a frame\n"
    "                          unfinished this long (default 30000)\n"
    "  --sub-snapshot-ms N     longest a subscription snapshot may hold its\n"
    "                          read view (default 30000)\n"
    "  --sub-snapshot-pin BYTES  most the node may write while a snapshot\n"
    "                          holds its read view (LMDB cannot reuse pages\n"
    "                          freed meanwhile; default 67108864)\n"
    "  --fd-reserve N          descriptors kept for raft and the store; the\n"
    "                          connection limit is at most RLIMIT_NOFILE\n"
    "                          minus this (default 64)\n"
    "  --help                  this text\n"
    "\n"
    "Environment: FLIP_TRACE=1 adds trace lines, LIBRAFT_TRACE=1 traces "
    "libraft.\n";

int config_split_address(const char *addr,
                         char *host,
                         size_t hostlen,
                         int *port)
{
    const char *colon = strrchr(addr, ':');
    struct in_addr in;
    uint64_t p;
    size_t n;

    if (colon == NULL) {
        return FLIP_INVALID;
    }
    n = (size_t)(colon - addr);
    if (n == 0 || n >= hostlen) {
        return FLIP_INVALID;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, &in) != 1) {
        return FLIP_INVALID;
    }
    if (num_parse_u64(colon + 1, 1, 65535, &p) != FLIP_OK) {
        return FLIP_INVALID;
    }
    *port = (int)p;
    return FLIP_OK;
}

static int check_addr(const char *addr)
{
    char host[NODE_ADDR_MAX];
    int port;
    if (strlen(addr) >= NODE_ADDR_MAX) {
        return FLIP_INVALID;
    }
    return config_split_address(addr, host, sizeof host, &port);
}

/* ID=RAFT/CLIENT,... */
static int parse_cluster(struct config *c,
                         const char *list,
                         char *err,
                         size_t errlen)
{
    char copy[4096];
    char *save = NULL;
    char *item;

    if (strlen(list) >= sizeof copy) {
        snprintf(err, errlen, "--cluster is too long");
        return FLIP_INVALID;
    }
    snprintf(copy, sizeof copy, "%s", list);
    c->n_members = 0;
    for (item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        struct node_member *m;
        char *eq = strchr(item, '=');
        char *slash = eq != NULL ? strchr(eq, '/') : NULL;
        uint64_t id;

        if (c->n_members == NODE_MAX_MEMBERS) {
            snprintf(err, errlen, "--cluster: at most %d members",
                     NODE_MAX_MEMBERS);
            return FLIP_INVALID;
        }
        if (eq == NULL || slash == NULL) {
            snprintf(
                err, errlen,
                "--cluster: '%s' is not ID=RAFT_HOST:PORT/CLIENT_HOST:PORT",
                item);
            return FLIP_INVALID;
        }
        *eq = '\0';
        *slash = '\0';
        if (num_parse_u64(item, 1, INT64_MAX, &id) != FLIP_OK) {
            snprintf(err, errlen, "--cluster: bad node id '%s'", item);
            return FLIP_INVALID;
        }
        if (check_addr(eq + 1) != FLIP_OK || check_addr(slash + 1) != FLIP_OK) {
            snprintf(err, errlen,
                     "--cluster: node %llu: addresses must be IPv4 "
                     "HOST:PORT",
                     (unsigned long long)id);
            return FLIP_INVALID;
        }
        for (unsigned i = 0; i < c->n_members; i++) {
            if (c->members[i].id == id) {
                snprintf(err, errlen, "--cluster: node id %llu twice",
                         (unsigned long long)id);
                return FLIP_INVALID;
            }
        }
        m = &c->members[c->n_members++];
        m->id = id;
        snprintf(m->raft_address, sizeof m->raft_address, "%s", eq + 1);
        snprintf(m->client_address, sizeof m->client_address, "%s", slash + 1);
    }
    return FLIP_OK;
}

/* What an option's value is and where it goes. */
enum opt_kind
{
    OPT_UNSIGNED, /* unsigned field, min..max */
    OPT_U64,      /* uint64_t field, min..max */
    OPT_SIZE,     /* size_t field, min..max */
    OPT_ADDR,     /* char[NODE_ADDR_MAX] field, an IPv4 HOST:PORT */
    OPT_DIR,      /* the data directory */
    OPT_CLUSTER,  /* kept aside: parsed once --id and addresses are known */
    OPT_JOIN,     /* client endpoints of the cluster to be added to */
    OPT_HELP
};

struct opt
{
    const char *name; /* without the leading "--" */
    enum opt_kind kind;
    size_t offset; /* into struct config (numbers and addresses) */
    uint64_t min;
    uint64_t max;
};

#define NUM(name, kind, field, min, max)                     \
    {                                                        \
        name, kind, offsetof(struct config, field), min, max \
    }
#define ADDR(name, field)                                    \
    {                                                        \
        name, OPT_ADDR, offsetof(struct config, field), 0, 0 \
    }

#define MIB (UINT64_C(1) << 20)
#define TIB (UINT64_C(1) << 40)

/* Every option of flipd; getopt_long's table is built from this one. */
static const struct opt opts[] = {
    NUM("id", OPT_U64, id, 1, INT64_MAX),
    { "data", OPT_DIR, 0, 0, 0 },
    ADDR("client", client_address),
    ADDR("raft", raft_address),
    ADDR("raft-bind", raft_bind),
    { "cluster", OPT_CLUSTER, 0, 0, 0 },
    { "join", OPT_JOIN, 0, 0, 0 },
    NUM("election-ms", OPT_UNSIGNED, election_ms, 50, 600000),
    NUM("heartbeat-ms", OPT_UNSIGNED, heartbeat_ms, 5, 60000),
    NUM("snapshot-threshold", OPT_UNSIGNED, snapshot_threshold, 2, 100000000),
    NUM("snapshot-trailing", OPT_UNSIGNED, snapshot_trailing, 64, 100000000),
    NUM("changelog-keep", OPT_U64, changelog_keep, 1, 100000000),
    NUM("max-store-bytes", OPT_U64, max_store_bytes, MIB, TIB),
    NUM("max-frame", OPT_UNSIGNED, max_frame, CODEC_FRAME_MIN, 64 * MIB),
    NUM("max-conns", OPT_UNSIGNED, max_conns, 1, 1000000),
    NUM("segment-size", OPT_SIZE, segment_size, MIB, 64 * MIB),
    NUM("sub-buffer", OPT_SIZE, sub_buffer, 65536, 1024 * MIB),
    NUM("sub-heartbeat-ms", OPT_UNSIGNED, sub_heartbeat_ms, 20, 60000),
    NUM("max-inflight", OPT_UNSIGNED, max_inflight, 1, 100000),
    NUM("max-inflight-node", OPT_UNSIGNED, node_inflight, 1, 10000000),
    NUM("output-budget", OPT_SIZE, output_budget, MIB, TIB),
    NUM("input-budget", OPT_SIZE, input_budget, MIB, TIB),
    NUM("sub-budget", OPT_SIZE, sub_budget, MIB, TIB),
    NUM("idle-timeout-ms", OPT_UNSIGNED, idle_timeout_ms, 0, 86400000),
    NUM("frame-timeout-ms", OPT_UNSIGNED, frame_timeout_ms, 100, 3600000),
    NUM("sub-snapshot-ms", OPT_UNSIGNED, sub_snapshot_ms, 100, 3600000),
    NUM("fd-reserve", OPT_UNSIGNED, fd_reserve, 16, 100000),
    NUM("sub-snapshot-pin", OPT_SIZE, sub_snapshot_pin, MIB, TIB),
    { "help", OPT_HELP, 0, 0, 0 },
};

#define N_OPTS (sizeof opts / sizeof opts[0])

/* Stores a number of the option's kind; `unsigned` and `size_t` are
 * written through their own types, never through a uint64_t. */
static int set_number(struct config *c, const struct opt *o, const char *val)
{
    char *base = (char *)c + o->offset;
    uint64_t v;

    if (num_parse_u64(val, o->min, o->max, &v) != FLIP_OK) {
        return FLIP_INVALID;
    }
    if (o->kind == OPT_UNSIGNED) {
        unsigned u = (unsigned)v;
        memcpy(base, &u, sizeof u);
    } else if (o->kind == OPT_SIZE) {
        size_t z = (size_t)v;
        memcpy(base, &z, sizeof z);
    } else {
        memcpy(base, &v, sizeof v);
    }
    return FLIP_OK;
}

static void defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->election_ms = 500;
    c->heartbeat_ms = 10;
    c->snapshot_threshold = 4096;
    c->snapshot_trailing = 1024;
    c->changelog_keep = 10000;
    c->max_store_bytes = (uint64_t)256 << 20;
    c->max_frame = 1024u * 1024u;
    c->max_conns = 100000;
    c->sub_buffer = 4u * 1024u * 1024u;
    c->sub_heartbeat_ms = 1000;
    c->max_inflight = 64;
    c->node_inflight = 16384;
    c->output_budget = 256u * 1024u * 1024u;
    c->sub_budget = 256u * 1024u * 1024u;
    c->input_budget = 256u * 1024u * 1024u;
    c->idle_timeout_ms = 300000;
    c->frame_timeout_ms = 30000;
    c->sub_snapshot_ms = 30000;
    c->fd_reserve = 64;
    c->sub_snapshot_pin = 64u * 1024u * 1024u;
}

static int set_string(char *dst, size_t cap, const char *val)
{
    if (strlen(val) >= cap || *val == '\0') {
        return FLIP_INVALID;
    }
    snprintf(dst, cap, "%s", val);
    return FLIP_OK;
}

static int set_value(struct config *c,
                     const struct opt *o,
                     const char *val,
                     const char **cluster)
{
    switch (o->kind) {
    case OPT_DIR:
        return set_string(c->data_dir, sizeof c->data_dir, val);
    case OPT_ADDR:
        return check_addr(val) != FLIP_OK
                   ? FLIP_INVALID
                   : set_string((char *)c + o->offset, NODE_ADDR_MAX, val);
    case OPT_CLUSTER:
        *cluster = val;
        return FLIP_OK;
    case OPT_JOIN:
        return set_string(c->join, sizeof c->join, val);
    default:
        return set_number(c, o, val);
    }
}

static int check_self(struct config *c, char *err, size_t errlen)
{
    for (unsigned i = 0; i < c->n_members; i++) {
        struct node_member *m = &c->members[i];
        if (m->id != c->id) {
            continue;
        }
        if (strcmp(m->raft_address, c->raft_address) != 0 ||
            strcmp(m->client_address, c->client_address) != 0) {
            snprintf(err, errlen,
                     "--cluster lists node %llu as %s/%s but --raft/--client "
                     "say %s/%s",
                     (unsigned long long)c->id, m->raft_address,
                     m->client_address, c->raft_address, c->client_address);
            return FLIP_INVALID;
        }
        return FLIP_OK;
    }
    snprintf(err, errlen, "--cluster does not list this node (--id %llu)",
             (unsigned long long)c->id);
    return FLIP_INVALID;
}

/* The option the token argv[at] names: getopt_long also takes an
 * unambiguous prefix ("--elec"), which flipd does not, so that a future
 * option cannot change what an abbreviation in a deploy script means. */
static int exact_name(const char *token, const struct opt *o)
{
    size_t n = strlen(o->name);

    return strncmp(token, "--", 2) == 0 &&
           strncmp(token + 2, o->name, n) == 0 &&
           (token[2 + n] == '\0' || token[2 + n] == '=');
}

/* getopt_long over `opts` with flipd's messages: "unknown option X (see
 * --help)", "X needs a value", "bad value for --X: 'V'". Stops at the
 * first argument that is not an option ('+'): flipd takes none. */
static int parse_options(struct config *c,
                         int argc,
                         char **argv,
                         int *help,
                         const char **cluster,
                         char *err,
                         size_t errlen)
{
    struct option long_opts[N_OPTS + 1];
    int ch;

    for (size_t i = 0; i < N_OPTS; i++) {
        long_opts[i].name = opts[i].name;
        long_opts[i].has_arg =
            opts[i].kind == OPT_HELP ? no_argument : required_argument;
        long_opts[i].flag = NULL;
        long_opts[i].val = 0;
    }
    memset(&long_opts[N_OPTS], 0, sizeof long_opts[N_OPTS]);
    optind = 0; /* glibc: start over (config_parse may run more than once) */
    opterr = 0;
    for (;;) {
        int at = optind == 0 ? 1 : optind;
        int index = -1;
        const struct opt *o;

        ch = getopt_long(argc, argv, "+:h", long_opts, &index);
        if (ch == -1) {
            break;
        }
        if (ch == 'h' || (ch == 0 && opts[index].kind == OPT_HELP)) {
            *help = 1;
            return FLIP_OK;
        }
        if (ch == ':') {
            snprintf(err, errlen, "%s needs a value", argv[at]);
            return FLIP_INVALID;
        }
        if (ch != 0 || !exact_name(argv[at], &opts[index])) {
            snprintf(err, errlen, "unknown option %s (see --help)", argv[at]);
            return FLIP_INVALID;
        }
        o = &opts[index];
        if (set_value(c, o, optarg, cluster) != FLIP_OK) {
            snprintf(err, errlen, "bad value for --%s: '%s'", o->name, optarg);
            return FLIP_INVALID;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unknown option %s (see --help)", argv[optind]);
        return FLIP_INVALID;
    }
    return FLIP_OK;
}

int config_parse(struct config *c,
                 int argc,
                 char **argv,
                 int *help,
                 char *err,
                 size_t errlen)
{
    const char *cluster = NULL;
    int rv;

    defaults(c);
    *help = 0;
    rv = parse_options(c, argc, argv, help, &cluster, err, errlen);
    if (rv != FLIP_OK || *help) {
        return rv;
    }
    if (c->id == 0 || c->data_dir[0] == '\0' || c->client_address[0] == '\0' ||
        c->raft_address[0] == '\0' ||
        (cluster == NULL) == (c->join[0] == '\0')) {
        snprintf(err, errlen,
                 "--id, --data, --client, --raft and one of --cluster or "
                 "--join are required (see --help)");
        return FLIP_INVALID;
    }
    if (c->heartbeat_ms >= c->election_ms) {
        snprintf(err, errlen, "--heartbeat-ms must be below --election-ms");
        return FLIP_INVALID;
    }
    if (c->raft_bind[0] != '\0' && strcmp(strrchr(c->raft_bind, ':'),
                                          strrchr(c->raft_address, ':')) != 0) {
        snprintf(err, errlen, "--raft-bind must use the port of --raft");
        return FLIP_INVALID;
    }
    if (c->join[0] != '\0') {
        /* raft's configuration, from the leader, names the others */
        c->n_members = 1;
        c->members[0].id = c->id;
        memcpy(c->members[0].raft_address, c->raft_address, NODE_ADDR_MAX);
        memcpy(c->members[0].client_address, c->client_address, NODE_ADDR_MAX);
        return FLIP_OK;
    }
    rv = parse_cluster(c, cluster, err, errlen);
    if (rv != FLIP_OK) {
        return rv;
    }
    return check_self(c, err, errlen);
}
