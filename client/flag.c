/* Values and flags between the library and the wire; see flag.h. */
#include "client/flag.h"

#include <string.h>

#include "lib/heap.h"

char *flag_dup_or_empty(const char *s)
{
    return flip_strdup(s != NULL ? s : "");
}

static int has_text(enum flip_type t)
{
    return t == FLIP_TYPE_STRING || t == FLIP_TYPE_JSON;
}

void flip_flag_clear(struct flip_flag *f)
{
    flip_free(f->key);
    flip_free(f->actor);
    flip_free(f->reason);
    if (has_text(f->value.type)) {
        flip_free((void *)f->value.u.s); /* owned by the flag, see flip.h */
    }
    memset(f, 0, sizeof *f);
}

void flip_flags_free(struct flip_flag *flags, size_t n)
{
    if (flags == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        flip_flag_clear(&flags[i]);
    }
    flip_free(flags);
}

int flag_value_to_wire(const struct flip_value *v,
                       Flip__Value *w,
                       const char **why)
{
    switch (v->type) {
    case FLIP_TYPE_BOOL:
        w->kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
        w->bool_value = v->u.b != 0;
        return FLIP_OK;
    case FLIP_TYPE_INT:
        w->kind_case = FLIP__VALUE__KIND_INT_VALUE;
        w->int_value = v->u.i;
        return FLIP_OK;
    case FLIP_TYPE_DOUBLE:
        w->kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
        w->double_value = v->u.d;
        return FLIP_OK;
    case FLIP_TYPE_STRING:
        w->kind_case = FLIP__VALUE__KIND_STRING_VALUE;
        w->string_value = (char *)v->u.s; /* protobuf-c's char *, only read */
        break;
    case FLIP_TYPE_JSON:
        w->kind_case = FLIP__VALUE__KIND_JSON_VALUE;
        w->json_value = (char *)v->u.s;
        break;
    default:
        *why = "unknown type";
        return FLIP_INVALID;
    }
    if (v->u.s == NULL) {
        *why = "NULL string";
        return FLIP_INVALID;
    }
    return FLIP_OK;
}

int flag_value_from_wire(const Flip__Value *w,
                         struct flip_value *v,
                         const char **why)
{
    const char *s = NULL;

    if (w == NULL) {
        *why = "flag without a value";
        return FLIP_PROTO;
    }
    switch (w->kind_case) {
    case FLIP__VALUE__KIND_BOOL_VALUE:
        v->type = FLIP_TYPE_BOOL;
        v->u.b = w->bool_value != 0;
        return FLIP_OK;
    case FLIP__VALUE__KIND_INT_VALUE:
        v->type = FLIP_TYPE_INT;
        v->u.i = w->int_value;
        return FLIP_OK;
    case FLIP__VALUE__KIND_DOUBLE_VALUE:
        v->type = FLIP_TYPE_DOUBLE;
        v->u.d = w->double_value;
        return FLIP_OK;
    case FLIP__VALUE__KIND_STRING_VALUE:
        v->type = FLIP_TYPE_STRING;
        s = w->string_value;
        break;
    case FLIP__VALUE__KIND_JSON_VALUE:
        v->type = FLIP_TYPE_JSON;
        s = w->json_value;
        break;
    default:
        *why = "value of unknown type";
        return FLIP_PROTO;
    }
    v->u.s = flag_dup_or_empty(s);
    if (v->u.s != NULL) {
        return FLIP_OK;
    }
    v->type = FLIP_TYPE_AUTO;
    return FLIP_NOMEM;
}

/* Everything of m but its value into dst: key, actor and reason copied
 * (NULL read as ""), revisions and time. On NOMEM dst is cleared. */
static int copy_meta(const struct flip_flag *m, struct flip_flag *dst)
{
    dst->key = flag_dup_or_empty(m->key);
    dst->actor = flag_dup_or_empty(m->actor);
    dst->reason = flag_dup_or_empty(m->reason);
    if (dst->key == NULL || dst->actor == NULL || dst->reason == NULL) {
        flip_flag_clear(dst);
        return FLIP_NOMEM;
    }
    dst->revision = m->revision;
    dst->create_revision = m->create_revision;
    dst->time_ms = m->time_ms;
    return FLIP_OK;
}

int flag_meta_from_wire(const Flip__Flag *src, struct flip_flag *dst)
{
    struct flip_flag m;

    memset(&m, 0, sizeof m);
    m.key = src->key;
    m.actor = src->actor;
    m.reason = src->reason;
    m.revision = src->revision;
    m.create_revision = src->create_revision;
    m.time_ms = src->time_ms;
    return copy_meta(&m, dst);
}

int flag_copy(const struct flip_flag *src, struct flip_flag *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->value = src->value;
    if (has_text(src->value.type)) {
        dst->value.u.s = flag_dup_or_empty(src->value.u.s);
        if (dst->value.u.s == NULL) {
            dst->value.type = FLIP_TYPE_AUTO;
            return FLIP_NOMEM;
        }
    }
    return copy_meta(src, dst);
}
