/* The one conversion between the library's values and flags (client/flip.h)
 * and the wire's (flip.proto's Value and Flag), and the one deep copy.
 * Used by the requests (ops.c), the watch's table (wcache.c) and the
 * last-known-good file (lkg.c); what each caller accepts on top (a value
 * the codec validates, a deletion without a value) stays with the caller.
 *
 * Ownership: a wire value filled from a flip_value borrows its string; a
 * flip_value or flip_flag filled from the wire owns copies of every string
 * (flip_flag_clear frees them). */
#ifndef FLIP_CLIENT_FLAG_H
#define FLIP_CLIENT_FLAG_H

#include "client/flip.h"
#include "flip.pb-c.h"

/* A copy of s, or of "" when s is NULL; NULL only on NOMEM. */
char *flag_dup_or_empty(const char *s);

/* Fills *w, which borrows v's string.
 * @return FLIP_OK; FLIP_INVALID (unknown type, or a string or json value
 *         with a NULL string), *why then says which. */
int flag_value_to_wire(const struct flip_value *v,
                       Flip__Value *w,
                       const char **why);

/* Fills *v from a wire value, copying its string.
 * @return FLIP_OK; FLIP_PROTO (no value, or none of the known kinds: *why
 *         says which); FLIP_NOMEM (v->type is then FLIP_TYPE_AUTO). */
int flag_value_from_wire(const Flip__Value *w,
                         struct flip_value *v,
                         const char **why);

/* Copies key, actor, reason (NULL read as ""), revisions and time of a wire
 * flag into *dst, whose value is already set or left zero.
 * @return FLIP_OK, or FLIP_NOMEM with *dst cleared (flip_flag_clear). */
int flag_meta_from_wire(const Flip__Flag *src, struct flip_flag *dst);

/* Deep copy into *dst (overwritten). FLIP_OK or FLIP_NOMEM (*dst zeroed). */
int flag_copy(const struct flip_flag *src, struct flip_flag *dst);

#endif
