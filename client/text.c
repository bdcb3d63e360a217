/* Text conversions of client/flip.h: type names, parsing command-line
 * text into typed values, and rendering values as plain text or JSON.
 * Pure functions: no I/O, no client. */
#include "client/text.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/escape.h"
#include "client/flip.h"
#include "lib/buf.h"
#include "lib/heap.h"
#include "proto/codec.h"

static const char *const type_names[] = {
    [FLIP_TYPE_AUTO] = "auto",     [FLIP_TYPE_BOOL] = "bool",
    [FLIP_TYPE_INT] = "int",       [FLIP_TYPE_DOUBLE] = "double",
    [FLIP_TYPE_STRING] = "string", [FLIP_TYPE_JSON] = "json",
};

const char *flip_type_name(enum flip_type type)
{
    if ((unsigned)type < sizeof type_names / sizeof type_names[0]) {
        return type_names[type];
    }
    return "unknown";
}

int flip_type_parse(const char *name, enum flip_type *out)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (name != NULL && strcmp(name, type_names[i]) == 0) {
            *out = (enum flip_type)i;
            return FLIP_OK;
        }
    }
    return FLIP_INVALID;
}

/* ---- parsing ----------------------------------------------------------- */

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Length of the JSON number at the head of s (RFC 8259 grammar), 0 if
 * there is none; *integral says whether it had no fraction or exponent. */
static size_t json_number_len(const char *s, int *integral)
{
    const char *p = s;

    *integral = 1;
    if (*p == '-') {
        p++;
    }
    if (!is_digit(*p)) {
        return 0;
    }
    if (*p == '0') {
        p++;
    } else {
        while (is_digit(*p)) {
            p++;
        }
    }
    if (*p == '.') {
        *integral = 0;
        if (!is_digit(*++p)) {
            return 0;
        }
        while (is_digit(*p)) {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        *integral = 0;
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!is_digit(*p)) {
            return 0;
        }
        while (is_digit(*p)) {
            p++;
        }
    }
    return (size_t)(p - s);
}

/* Decimal int64: optional sign, digits, nothing else. */
static int parse_int(const char *text, int64_t *out)
{
    const char *p = text[0] == '+' || text[0] == '-' ? text + 1 : text;
    char *end;
    long long v;

    if (!is_digit(*p)) {
        return FLIP_INVALID;
    }
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return FLIP_INVALID;
    }
    *out = (int64_t)v;
    return FLIP_OK;
}

/* A finite decimal number; strtod's hex, inf and nan forms are refused. */
static int parse_double(const char *text, double *out)
{
    char *end;
    double v;

    if (text[0] == '\0' || strchr("+-.0123456789", text[0]) == NULL ||
        strpbrk(text, "xXnN") != NULL) {
        return FLIP_INVALID;
    }
    /* Overflow gives HUGE_VAL, caught by isfinite; underflow gives the
     * nearest representable value, which is fine for a flag. */
    v = strtod(text, &end);
    if (*end != '\0' || !isfinite(v)) {
        return FLIP_INVALID;
    }
    *out = v;
    return FLIP_OK;
}

/* The usual spellings, any case: for a value known to be a bool they
 * cannot mean anything else. */
static int parse_bool(const char *text, int *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return FLIP_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return FLIP_OK;
        }
    }
    return FLIP_INVALID;
}

/* FLIP_TYPE_AUTO: the most specific type the text reads as. */
static void guess(const char *text, struct flip_value *out)
{
    const char *p = text;
    int integral;

    if (strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0) {
        out->type = FLIP_TYPE_BOOL;
        out->u.b = text[0] == 't' || text[0] == 'T';
        return;
    }
    if (json_number_len(text, &integral) == strlen(text)) {
        /* An integer too big for int64 is still a number: a double. */
        if (integral && parse_int(text, &out->u.i) == FLIP_OK) {
            out->type = FLIP_TYPE_INT;
            return;
        }
        if (parse_double(text, &out->u.d) == FLIP_OK) {
            out->type = FLIP_TYPE_DOUBLE;
            return;
        }
    }
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    /* Only containers: a quoted "x" or null stays the literal string. */
    if ((*p == '{' || *p == '[') && codec_json_valid(text, strlen(text))) {
        out->type = FLIP_TYPE_JSON;
        out->u.s = text;
        return;
    }
    out->type = FLIP_TYPE_STRING;
    out->u.s = text;
}

int flip_value_parse(const char *text,
                     enum flip_type type,
                     struct flip_value *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL) {
        return FLIP_INVALID;
    }
    out->type = type;
    switch (type) {
    case FLIP_TYPE_AUTO:
        guess(text, out);
        return FLIP_OK;
    case FLIP_TYPE_BOOL:
        return parse_bool(text, &out->u.b);
    case FLIP_TYPE_INT:
        return parse_int(text, &out->u.i);
    case FLIP_TYPE_DOUBLE:
        return parse_double(text, &out->u.d);
    case FLIP_TYPE_STRING:
        out->u.s = text;
        return FLIP_OK;
    case FLIP_TYPE_JSON:
        out->u.s = text;
        return codec_json_valid(text, strlen(text)) ? FLIP_OK : FLIP_INVALID;
    default:
        return FLIP_INVALID;
    }
}

/* ---- rendering --------------------------------------------------------- */

/* Appends the JSON escape of one code point, \uHHHH (cp < 0x10000). */
static int json_escape_cp(struct buf *b, uint32_t cp)
{
    char esc[8];

    snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
    return buf_append(b, esc, 6);
}

/* Appends s as a JSON string literal. Valid JSON whatever s holds: the
 * two characters JSON requires escaped are, every control code point
 * (escape.h; JSON allows DEL, C1 and bidi controls raw, but a terminal
 * showing the output would act on them) is \uHHHH, and a byte that is
 * not UTF-8 (only a hostile server sends one) becomes U+FFFD. */
static int quote_into(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *run = p; /* start of bytes copied verbatim */
    int rv;

    rv = buf_append(b, "\"", 1);
    while (rv == FLIP_OK && *p != '\0') {
        uint32_t cp = 0;
        size_t n = escape_utf8_seq(p, &cp);
        char esc[2] = { '\\', 0 };

        if (n > 0 && !escape_is_control(cp) && cp != '"' && cp != '\\') {
            p += n;
            continue;
        }
        rv = buf_append(b, run, (size_t)(p - run));
        if (rv != FLIP_OK) {
            break;
        }
        esc[1] = n == 0       ? 0
                 : cp == '"'  ? '"'
                 : cp == '\\' ? '\\'
                 : cp == '\b' ? 'b'
                 : cp == '\f' ? 'f'
                 : cp == '\n' ? 'n'
                 : cp == '\r' ? 'r'
                 : cp == '\t' ? 't'
                              : 0;
        if (esc[1] != 0) {
            rv = buf_append(b, esc, 2);
        } else {
            rv = json_escape_cp(b, n == 0 ? 0xFFFD : cp);
        }
        p += n == 0 ? 1 : n;
        run = p;
    }
    if (rv == FLIP_OK) {
        rv = buf_append(b, run, (size_t)(p - run));
    }
    if (rv == FLIP_OK) {
        rv = buf_append(b, "\"", 1);
    }
    return rv;
}

/* Appends JSON text without the whitespace between tokens, so a value
 * written over many lines fits one output line. Whitespace inside strings
 * is kept, control code points in them are escaped (as in quote_into).
 * Text that is not valid JSON (the server validates it, so only a hostile
 * one sends such) is written as a JSON string instead, so the output
 * stays valid JSON. */
static int compact_into(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int in_string = 0;
    int escaped = 0;
    int rv = FLIP_OK;

    if (!codec_json_valid(s, strlen(s))) {
        return quote_into(b, s);
    }
    while (rv == FLIP_OK && *p != '\0') {
        uint32_t cp = 0;
        size_t n = escape_utf8_seq(p, &cp);

        if (n == 0) {
            n = 1; /* not reached: codec_json_valid checked the UTF-8 */
        }

        if (in_string && escape_is_control(cp)) {
            rv = json_escape_cp(b, cp); /* raw in a string: DEL, C1, bidi */
            p += n;
            continue;
        }
        if (in_string) {
            if (escaped) {
                escaped = 0;
            } else if (*p == '\\') {
                escaped = 1;
            } else if (*p == '"') {
                in_string = 0;
            }
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
            continue;
        }
        rv = buf_append(b, p, n);
        p += n;
    }
    return rv;
}

static int format_into(struct buf *b, const struct flip_value *v, int as_json)
{
    char num[40];

    switch (v->type) {
    case FLIP_TYPE_BOOL:
        return buf_append(b, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
    case FLIP_TYPE_INT:
        snprintf(num, sizeof num, "%" PRId64, v->u.i);
        return buf_append(b, num, strlen(num));
    case FLIP_TYPE_DOUBLE:
        if (as_json && !isfinite(v->u.d)) {
            return buf_append(b, "null", 4);
        }
        /* %.17g round-trips every double. */
        snprintf(num, sizeof num, "%.17g", v->u.d);
        return buf_append(b, num, strlen(num));
    case FLIP_TYPE_STRING:
        if (as_json) {
            return quote_into(b, v->u.s != NULL ? v->u.s : "");
        }
        return buf_append(b, v->u.s, v->u.s != NULL ? strlen(v->u.s) : 0);
    case FLIP_TYPE_JSON:
        if (as_json) {
            return compact_into(b, v->u.s != NULL ? v->u.s : "null");
        }
        return buf_append(b, v->u.s, v->u.s != NULL ? strlen(v->u.s) : 0);
    default:
        return FLIP_INVALID;
    }
}

/* Hands the buffer's bytes out as a C string. On failure b is closed. */
static int finish(struct buf *b, int rv, char **out)
{
    if (rv == FLIP_OK) {
        rv = buf_append(b, "", 1);
    }
    if (rv != FLIP_OK) {
        buf_close(b);
        return rv;
    }
    /* Nothing was consumed, so the string starts at b->data. */
    *out = (char *)b->data;
    return FLIP_OK;
}

int flip_value_format(const struct flip_value *v, int as_json, char **out)
{
    struct buf b; /* owned here until finish hands its storage to *out */

    *out = NULL;
    buf_init(&b);
    return finish(&b, format_into(&b, v, as_json), out);
}

int flip_json_quote(const char *s, char **out)
{
    struct buf b; /* as in flip_value_format */

    *out = NULL;
    buf_init(&b);
    return finish(&b, quote_into(&b, s != NULL ? s : ""), out);
}

void flip_text_free(char *s)
{
    flip_free(s);
}
