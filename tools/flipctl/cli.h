/* Private to flipctl: the parsed command line and the output helpers that
 * cli.c (flag, list and status commands) shares with cli_watch.c (watch
 * and eval). Not part of the library: tools/flipctl/ builds flipctl only,
 * over the library of client/. */
#ifndef FLIP_TOOLS_FLIPCTL_CLI_H
#define FLIP_TOOLS_FLIPCTL_CLI_H

#include <stdint.h>

#include "client/flip.h"

/* Positional words kept: the command and up to 256 prefixes. */
#define CLI_MAX_ARGS 257

enum
{
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_NOTFOUND = 3,
    EXIT_CONFLICT = 4,
    EXIT_DEGRADED = 5, /* status: a member down or not caught up */
    EXIT_NOLEADER = 6  /* status: no answering node knows a leader */
};

/* Command options, one bit each so a command lists those it accepts. */
enum
{
    OPT_TYPE = 1u << 0,
    OPT_REASON = 1u << 1,
    OPT_ACTOR = 1u << 2,
    OPT_IF_REVISION = 1u << 3,
    OPT_STALE = 1u << 4,
    OPT_HASH = 1u << 5,
    OPT_FROM_REVISION = 1u << 6,
    OPT_CACHE = 1u << 7,
    OPT_COUNT = 1u << 8,
    OPT_UNTIL = 1u << 9,
    OPT_DEFAULT = 1u << 10,
    OPT_WAIT = 1u << 11,
    OPT_MIN_REVISION = 1u << 12,
    OPT_CHANGE_TYPE = 1u << 13,
    OPT_ROLE = 1u << 14
};

struct cli
{
    const char *endpoints; /* --endpoints, else env, else the default */
    int json;
    unsigned timeout_ms; /* 0: the library default */
    const char *type;
    const char *reason;
    const char *actor;
    uint64_t if_revision;
    int stale;
    int change_type; /* set --change-type */
    int hash;
    int help;
    uint64_t from_revision;        /* watch --from-revision */
    uint64_t until_revision;       /* watch --until-revision */
    uint64_t count;                /* watch --count */
    const char *cache;             /* watch, eval --cache */
    const char *def;               /* eval --default */
    unsigned wait_ms;              /* eval --wait-ms */
    uint64_t min_revision;         /* eval --min-revision */
    const char *role;              /* member add/demote --role */
    unsigned given;                /* OPT_* bits present on the command line */
    const char *pos[CLI_MAX_ARGS]; /* command and its arguments */
    int n_pos;
    int too_many; /* more positional words than pos holds */
    struct flip_client *client;
};

/* "flipctl: <message>" and a hint on stderr. @return EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "flipctl: <what>: out of memory" on stderr. @return EXIT_FAIL. */
int nomem(const char *what);
/* Prints s as a JSON string literal. FLIP_OK or FLIP_NOMEM. */
int put_json_str(const char *s);
/* Prints the members of a flag's JSON object, without the braces: key,
 * value, type (both null for a flag without value), revision,
 * create_revision, actor, reason, time, time_ms. */
int put_flag_json_fields(const struct flip_flag *f);
/* Prints text safe for a terminal (client/escape.h): tab, newline, CR and
 * backslash C-style, other control characters and bytes that are not
 * UTF-8 as \xHH or \u{HHHH}. FLIP_OK or FLIP_NOMEM. */
int put_escaped(const char *text);
/* The same escaping into out[cap] (cut to fit); returns out. For text a
 * server may have chosen that goes into a message or a table cell. */
const char *escaped_copy(char *out, size_t cap, const char *s);
/* A value for a person: strings escaped as put_escaped, JSON compacted
 * (valid JSON, control characters in its strings escaped), numbers and
 * bools as text. FLIP_OK or FLIP_NOMEM. */
int put_value_text(const struct flip_value *v);
/* A value as on a list line: JSON compacted, then put_escaped. */
int put_list_value(const struct flip_value *v);

/* "flipctl: <what>: <why>" on stderr for a failed library call `rv`.
 * @return the exit code for it (EXIT_NOTFOUND, EXIT_CONFLICT, EXIT_FAIL). */
int fail(const struct cli *cli, const char *what, int rv);

/* cli_member.c */
int cmd_member(struct cli *cli);
int cmd_leader(struct cli *cli);

/* cli_watch.c */
int cmd_watch(struct cli *cli);
int cmd_eval(struct cli *cli);

#endif
