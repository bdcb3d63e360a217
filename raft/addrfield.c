/* See addrfield.h. */
#include "addrfield.h"

#include <stdio.h>
#include <string.h>

void addrfield_encode(char *field, const char *raft, const char *client)
{
    if (client[0] == '\0') {
        snprintf(field, ADDRFIELD_MAX, "%s", raft);
    } else {
        snprintf(field, ADDRFIELD_MAX, "%s/%s", raft, client);
    }
}

int addrfield_split(const char *field, char *raft, char *client)
{
    const char *slash = strchr(field, '/');
    size_t len = slash != NULL ? (size_t)(slash - field) : strlen(field);
    const char *rest = slash != NULL ? slash + 1 : "";
    int cut = len >= ADDRFIELD_PART_MAX || strlen(rest) >= ADDRFIELD_PART_MAX;

    if (len >= ADDRFIELD_PART_MAX) {
        len = ADDRFIELD_PART_MAX - 1;
    }
    memcpy(raft, field, len);
    raft[len] = '\0';
    snprintf(client, ADDRFIELD_PART_MAX, "%s", rest);
    return cut ? -1 : 0;
}
