/* flipd command line; see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "proto/codec.h"

const char config_usage[] =
    "usage: flipd --id N --data DIR --client HOST:PORT --raft HOST:PORT\n"
    "             --cluster ID=RAFT_HOST:PORT/CLIENT_HOST:PORT[,...]\n"
    "             [options]\n"
    "\n"
    "Runs one node of a flipd cluster. On first start with an empty data\n"
    "directory the node bootstraps the --cluster configuration; afterwards\n"
    "it restarts from its data directory (the same flags are fine).\n"
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

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-') {
        return FLIP_INVALID;
    }
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v < min || v > max) {
        return FLIP_INVALID;
    }
    *out = v;
    return FLIP_OK;
}

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
    if (parse_u64(colon + 1, 1, 65535, &p) != FLIP_OK) {
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
        if (parse_u64(item, 1, INT64_MAX, &id) != FLIP_OK) {
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

struct opt
{
    const char *name;
    uint64_t min;
    uint64_t max;
    size_t offset; /* into struct config; SIZE_MAX for string options */
    int width;     /* 4 = unsigned, 8 = uint64_t, 9 = size_t, 0 = string */
};

static int set_number(struct config *c, const struct opt *o, const char *val)
{
    uint64_t v;
    char *base = (char *)c + o->offset;

    if (parse_u64(val, o->min, o->max, &v) != FLIP_OK) {
        return FLIP_INVALID;
    }
    if (o->width == 4) {
        unsigned u = (unsigned)v;
        memcpy(base, &u, sizeof u);
    } else if (o->width == 9) {
        size_t z = (size_t)v;
        memcpy(base, &z, sizeof z);
    } else {
        memcpy(base, &v, sizeof v);
    }
    return FLIP_OK;
}

static const struct opt numeric_opts[] = {
    { "--id", 1, INT64_MAX, offsetof(struct config, id), 8 },
    { "--election-ms", 50, 600000, offsetof(struct config, election_ms), 4 },
    { "--heartbeat-ms", 5, 60000, offsetof(struct config, heartbeat_ms), 4 },
    { "--snapshot-threshold", 2, 100000000,
      offsetof(struct config, snapshot_threshold), 4 },
    { "--snapshot-trailing", 64, 100000000,
      offsetof(struct config, snapshot_trailing), 4 },
    { "--changelog-keep", 1, 100000000, offsetof(struct config, changelog_keep),
      8 },
    { "--max-store-bytes", 1024u * 1024u, (uint64_t)1 << 40,
      offsetof(struct config, max_store_bytes), 8 },
    { "--max-frame", CODEC_FRAME_MIN, 64u * 1024u * 1024u,
      offsetof(struct config, max_frame), 4 },
    { "--max-conns", 1, 1000000, offsetof(struct config, max_conns), 4 },
    { "--segment-size", 1024u * 1024u, 64u * 1024u * 1024u,
      offsetof(struct config, segment_size), 9 },
    { "--sub-buffer", 65536, 1024u * 1024u * 1024u,
      offsetof(struct config, sub_buffer), 9 },
    { "--sub-heartbeat-ms", 20, 60000,
      offsetof(struct config, sub_heartbeat_ms), 4 },
    { "--max-inflight", 1, 100000, offsetof(struct config, max_inflight), 4 },
    { "--max-inflight-node", 1, 10000000,
      offsetof(struct config, node_inflight), 4 },
    { "--output-budget", 1024u * 1024u, UINT64_C(1) << 40,
      offsetof(struct config, output_budget), 9 },
    { "--input-budget", 1024u * 1024u, UINT64_C(1) << 40,
      offsetof(struct config, input_budget), 9 },
    { "--sub-budget", 1024u * 1024u, UINT64_C(1) << 40,
      offsetof(struct config, sub_budget), 9 },
    { "--idle-timeout-ms", 0, 86400000,
      offsetof(struct config, idle_timeout_ms), 4 },
    { "--frame-timeout-ms", 100, 3600000,
      offsetof(struct config, frame_timeout_ms), 4 },
    { "--sub-snapshot-ms", 100, 3600000,
      offsetof(struct config, sub_snapshot_ms), 4 },
    { "--fd-reserve", 16, 100000, offsetof(struct config, fd_reserve), 4 },
    { "--sub-snapshot-pin", 1024u * 1024u, UINT64_C(1) << 40,
      offsetof(struct config, sub_snapshot_pin), 9 },
};

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

static int parse_one(struct config *c,
                     const char *name,
                     const char *val,
                     const char **cluster)
{
    for (size_t i = 0; i < sizeof numeric_opts / sizeof numeric_opts[0]; i++) {
        if (strcmp(name, numeric_opts[i].name) == 0) {
            return set_number(c, &numeric_opts[i], val);
        }
    }
    if (strcmp(name, "--data") == 0) {
        return set_string(c->data_dir, sizeof c->data_dir, val);
    }
    if (strcmp(name, "--client") == 0) {
        return check_addr(val) != FLIP_OK
                   ? FLIP_INVALID
                   : set_string(c->client_address, sizeof c->client_address,
                                val);
    }
    if (strcmp(name, "--raft") == 0) {
        return check_addr(val) != FLIP_OK
                   ? FLIP_INVALID
                   : set_string(c->raft_address, sizeof c->raft_address, val);
    }
    if (strcmp(name, "--raft-bind") == 0) {
        return check_addr(val) != FLIP_OK
                   ? FLIP_INVALID
                   : set_string(c->raft_bind, sizeof c->raft_bind, val);
    }
    if (strcmp(name, "--cluster") == 0) {
        *cluster = val;
        return FLIP_OK;
    }
    return FLIP_NOTFOUND;
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
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = 1;
            return FLIP_OK;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value", argv[i]);
            return FLIP_INVALID;
        }
        rv = parse_one(c, argv[i], argv[i + 1], &cluster);
        if (rv == FLIP_NOTFOUND) {
            snprintf(err, errlen, "unknown option %s (see --help)", argv[i]);
            return FLIP_INVALID;
        }
        if (rv != FLIP_OK) {
            snprintf(err, errlen, "bad value for %s: '%s'", argv[i],
                     argv[i + 1]);
            return FLIP_INVALID;
        }
        i++;
    }
    if (c->id == 0 || c->data_dir[0] == '\0' || c->client_address[0] == '\0' ||
        c->raft_address[0] == '\0' || cluster == NULL) {
        snprintf(err, errlen,
                 "--id, --data, --client, --raft and --cluster are required "
                 "(see --help)");
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
    rv = parse_cluster(c, cluster, err, errlen);
    if (rv != FLIP_OK) {
        return rv;
    }
    return check_self(c, err, errlen);
}
