/* flipctl member list and flipctl leader transfer (client/flip.h's
 * membership operations). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/num.h"

static int put_members_json(const struct flip_member_info *m, size_t n)
{
    fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n{\"id\":%" PRIu64 ",\"raft_address\":", i ? "," : "",
               m[i].id);
        if (put_json_str(m[i].raft_address) != FLIP_OK) {
            return FLIP_NOMEM;
        }
        fputs(",\"client_address\":", stdout);
        if (put_json_str(m[i].client_address) != FLIP_OK) {
            return FLIP_NOMEM;
        }
        fputs(",\"role\":", stdout);
        if (put_json_str(m[i].role) != FLIP_OK) {
            return FLIP_NOMEM;
        }
        printf(
            ",\"leader\":%s,\"reachable\":%s,\"joined\":%s,"
            "\"match_index\":%" PRIu64 ",\"lag\":%" PRIu64 "}",
            m[i].leader ? "true" : "false", m[i].reachable ? "true" : "false",
            m[i].joined ? "true" : "false", m[i].match_index, m[i].lag);
    }
    fputs(n > 0 ? "\n]\n" : "]\n", stdout);
    return FLIP_OK;
}

static void put_members_text(const struct flip_member_info *m, size_t n)
{
    char raft[160];
    char client[160];
    char role[32];

    printf("%-6s %-8s %-6s %-9s %10s %8s  %-21s %s\n", "ID", "ROLE", "LEADER",
           "REACHABLE", "MATCH", "LAG", "RAFT", "CLIENT");
    for (size_t i = 0; i < n; i++) {
        printf("%-6" PRIu64 " %-8s %-6s %-9s %10" PRIu64 " %8" PRIu64
               "  %-21s %s\n",
               m[i].id, escaped_copy(role, sizeof role, m[i].role),
               m[i].leader ? "*" : "", m[i].reachable ? "yes" : "no",
               m[i].match_index, m[i].lag,
               escaped_copy(raft, sizeof raft, m[i].raft_address),
               m[i].client_address[0]
                   ? escaped_copy(client, sizeof client, m[i].client_address)
                   : "-");
    }
}

static int member_list(struct cli *cli)
{
    struct flip_member_info *m = NULL;
    size_t n = 0;
    int rv = flip_member_list(cli->client, &m, &n);

    if (rv != FLIP_OK) {
        return fail(cli, "member list", rv);
    }
    if (cli->json) {
        rv = put_members_json(m, n);
    } else {
        put_members_text(m, n);
    }
    flip_member_list_free(m, n);
    return rv == FLIP_OK ? 0 : nomem("member list");
}

/* add, remove, promote, demote: the words after "member". */
static int member_change(struct cli *cli, const char *sub)
{
    enum flip_member_action action = FLIP_MEMBER_ASSIGN;
    const char *role = cli->role;
    int want = 2; /* words after "member", the subcommand included */
    char what[64];
    uint64_t id = 0;
    int already = 0;
    int rv;

    if (strcmp(sub, "add") == 0) {
        action = FLIP_MEMBER_ADD;
        want = 4;
    } else if (strcmp(sub, "remove") == 0) {
        action = FLIP_MEMBER_REMOVE;
    } else if (strcmp(sub, "promote") == 0) {
        role = "voter";
    } else if (strcmp(sub, "demote") == 0) {
        role = role != NULL ? role : "standby";
        if (strcmp(role, "voter") == 0) {
            return usage_error("member demote: --role standby or spare");
        }
    } else {
        return usage_error(
            "member: unknown subcommand '%s' (expected list, add, "
            "remove, promote or demote)",
            sub);
    }
    if (cli->n_pos - 1 != want) {
        return usage_error("member %s: expected %d argument%s, got %d", sub,
                           want - 1, want == 2 ? "" : "s", cli->n_pos - 2);
    }
    if (cli->role != NULL && action != FLIP_MEMBER_ADD &&
        strcmp(sub, "demote") != 0) {
        return usage_error("member %s: --role is for add and demote", sub);
    }
    if (role != NULL && strcmp(role, "voter") != 0 &&
        strcmp(role, "standby") != 0 && strcmp(role, "spare") != 0) {
        return usage_error("--role: '%s' is not voter, standby or spare", role);
    }
    if (num_parse_u64(cli->pos[2], 1, INT64_MAX, &id) != FLIP_OK) {
        return usage_error("member %s: '%s' is not a node id", sub,
                           cli->pos[2]);
    }
    snprintf(what, sizeof what, "member %s %" PRIu64, sub, id);
    rv = flip_member_change(cli->client, action, id,
                            want == 4 ? cli->pos[3] : NULL,
                            want == 4 ? cli->pos[4] : NULL, role, &already);
    if (rv != FLIP_OK) {
        return fail(cli, what, rv);
    }
    if (cli->json) {
        printf("{\"id\":%" PRIu64 ",\"already\":%s}\n", id,
               already ? "true" : "false");
    } else {
        printf("%s: %s\n", what, already ? "already done" : "done");
    }
    return 0;
}

int cmd_member(struct cli *cli)
{
    if (strcmp(cli->pos[1], "list") == 0) {
        if (cli->n_pos != 2 || cli->role != NULL) {
            return usage_error("member list takes no arguments");
        }
        return member_list(cli);
    }
    return member_change(cli, cli->pos[1]);
}

int cmd_leader(struct cli *cli)
{
    uint64_t id = 0;
    uint64_t leader = 0;
    int already = 0;
    int rv;

    if (strcmp(cli->pos[1], "transfer") != 0) {
        return usage_error(
            "leader: unknown subcommand '%s' (expected "
            "transfer)",
            cli->pos[1]);
    }
    if (cli->n_pos > 2 &&
        num_parse_u64(cli->pos[2], 1, UINT64_MAX, &id) != FLIP_OK) {
        return usage_error("leader transfer: '%s' is not a node id",
                           cli->pos[2]);
    }
    rv = flip_leader_transfer(cli->client, id, &leader, &already);
    if (rv != FLIP_OK) {
        return fail(cli, "leader transfer", rv);
    }
    if (already) {
        fprintf(stderr,
                "flipctl: leader transfer: node %" PRIu64 " already leads\n",
                leader);
    }
    if (cli->json) {
        printf("{\"leader_id\":%" PRIu64 ",\"already\":%s}\n", leader,
               already ? "true" : "false");
    } else {
        printf("%" PRIu64 "\n", leader);
    }
    return 0;
}
