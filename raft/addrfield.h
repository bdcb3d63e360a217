/* The one home of a member's address field in raft's configuration:
 * "RAFT/CLIENT" (its raft address, a slash, its client address), so that
 * every node, a joining one too, learns each member's client address from
 * raft itself. A plain "RAFT" is a member of a cluster bootstrapped before
 * fields carried the client address. Written by node.c and member.c, read
 * by member.c and by peertcp.c, which connects to the RAFT part. */
#ifndef FLIP_RAFT_ADDRFIELD_H
#define FLIP_RAFT_ADDRFIELD_H

#define ADDRFIELD_PART_MAX 64 /* each part with its NUL */
#define ADDRFIELD_MAX      (2 * ADDRFIELD_PART_MAX)

/* field[ADDRFIELD_MAX] = "RAFT/CLIENT" (just RAFT when client is ""). */
void addrfield_encode(char *field, const char *raft, const char *client);

/* Splits `field` into raft[ADDRFIELD_PART_MAX] and client[...] (client ""
 * for a plain field). Returns 0, or -1 when a part was cut to fit. */
int addrfield_split(const char *field, char *raft, char *client);

#endif
