/* httpmini.h: the little HTTP/1.1 and JSON a benchmark client of etcd's v3
 * JSON gateway needs (bench/kvbench.c, bench/etcd_fanout.c). Header-only,
 * static inline, libc only.
 *
 * - http_put_request: a keep-alive `POST /v3/kv/put` with a JSON body
 *   {"key": base64, "value": base64}.
 * - http_response: one whole response (Content-Length or chunked body) at
 *   the front of a byte buffer, or "not yet".
 * - json_u64: the first "name":"123" (or "name":123) in a text; etcd's
 *   gateway writes int64 fields as JSON strings.
 *
 * Not a general HTTP client: it speaks to one server it knows, and
 * anything unexpected is reported as malformed. */
#ifndef FLIP_BENCH_HTTPMINI_H
#define FLIP_BENCH_HTTPMINI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_HEAD_MAX 8192u /* longest status line + headers accepted */

/* Standard base64 with padding; out needs 4 * ((n + 2) / 3) + 1 bytes. */
static inline size_t b64_encode(const char *in, size_t n, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) |
                     (uint32_t)p[i + 2];

        out[o++] = t[(v >> 18) & 63u];
        out[o++] = t[(v >> 12) & 63u];
        out[o++] = t[(v >> 6) & 63u];
        out[o++] = t[v & 63u];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;

        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        out[o++] = t[(v >> 18) & 63u];
        out[o++] = t[(v >> 12) & 63u];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63u] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Formats the POST of `path` with a JSON body into out (cap bytes).
 * @return the length, or 0 if it does not fit. */
static inline size_t http_post(char *out,
                               size_t cap,
                               const char *host,
                               const char *path,
                               const char *body)
{
    int n = snprintf(out, cap,
                     "POST %s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, host, strlen(body), body);

    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A put of key = value (raw bytes, base64-encoded here). */
static inline size_t http_put_request(char *out,
                                      size_t cap,
                                      const char *host,
                                      const char *key,
                                      const char *value)
{
    char k[400];
    char v[400];
    char body[900];

    if (strlen(key) > 256 || strlen(value) > 256) {
        return 0;
    }
    b64_encode(key, strlen(key), k);
    b64_encode(value, strlen(value), v);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    return http_post(out, cap, host, "/v3/kv/put", body);
}

/* Parsed status line and the headers that matter. */
struct http_head
{
    int status;          /* 200, 503, ... */
    size_t len;          /* bytes of status line + headers + blank line */
    long content_length; /* -1 if absent */
    int chunked;
    int close; /* Connection: close */
};

/* Case-insensitive "Name:" at the start of a header line; returns the
 * value (leading blanks skipped) or NULL. */
static inline const char *http_header_value(const char *line,
                                            size_t len,
                                            const char *name)
{
    size_t nl = strlen(name);

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return NULL;
    }
    line += nl + 1;
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    return line;
}

/* Parses the head at p[0..n). @return 1 complete (*h filled), 0 need more,
 * -1 malformed. */
static inline int http_parse_head(const char *p, size_t n, struct http_head *h)
{
    const char *end = NULL;
    const char *line;

    for (size_t i = 3; i < n; i++) {
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
            p[i - 3] == '\r') {
            end = p + i + 1;
            break;
        }
    }
    if (end == NULL) {
        return n > HTTP_HEAD_MAX ? -1 : 0;
    }
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    h->len = (size_t)(end - p);
    if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        return -1;
    }
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    line = memchr(p, '\n', h->len);
    while (line != NULL && line + 1 < end) {
        const char *next;
        const char *v;
        size_t len;

        line++;
        next = memchr(line, '\n', (size_t)(end - line));
        if (next == NULL) {
            break;
        }
        len = (size_t)(next - line);
        if ((v = http_header_value(line, len, "Content-Length")) != NULL) {
            h->content_length = strtol(v, NULL, 10);
        } else if ((v = http_header_value(line, len, "Transfer-Encoding")) !=
                   NULL) {
            h->chunked = strncasecmp(v, "chunked", 7) == 0;
        } else if ((v = http_header_value(line, len, "Connection")) != NULL) {
            h->close = strncasecmp(v, "close", 5) == 0;
        }
        line = next;
    }
    return 1;
}

/* One whole response at p[0..n): head, then a Content-Length or chunked
 * body, which is copied (de-chunked, cut to bcap - 1 bytes, NUL-terminated)
 * into body. @return the bytes the response occupies (consume them), 0 if
 * it is not complete yet, -1 if malformed. */
static inline long http_response(const char *p,
                                 size_t n,
                                 struct http_head *h,
                                 char *body,
                                 size_t bcap,
                                 size_t *blen)
{
    size_t off;
    size_t out = 0;
    int r = http_parse_head(p, n, h);

    *blen = 0;
    if (r <= 0) {
        return r;
    }
    off = h->len;
    if (!h->chunked) {
        size_t cl = h->content_length > 0 ? (size_t)h->content_length : 0;

        if (n - off < cl) {
            return 0;
        }
        out = cl < bcap - 1 ? cl : bcap - 1;
        memcpy(body, p + off, out);
        body[out] = '\0';
        *blen = out;
        return (long)(off + cl);
    }
    for (;;) {
        const char *nl = memchr(p + off, '\n', n - off);
        char *endp = NULL;
        unsigned long sz;

        if (nl == NULL) {
            return n - off > 64 ? -1 : 0;
        }
        sz = strtoul(p + off, &endp, 16);
        if (endp == p + off) {
            return -1;
        }
        off = (size_t)(nl - p) + 1;
        if (sz == 0) {
            /* No trailers from this server: the final CRLF. */
            if (n - off < 2) {
                return 0;
            }
            body[out] = '\0';
            *blen = out;
            return (long)(off + 2);
        }
        if (n - off < sz + 2) {
            return 0;
        }
        if (out < bcap - 1) {
            size_t take = sz < bcap - 1 - out ? sz : bcap - 1 - out;

            memcpy(body + out, p + off, take);
            out += take;
        }
        off += sz + 2;
    }
}

/* The first "name":"digits" or "name":digits in s. @return 1 found, 0 not. */
static inline int json_u64(const char *s, const char *name, uint64_t *out)
{
    char pat[64];
    const char *p;
    uint64_t v = 0;
    int any = 0;

    snprintf(pat, sizeof pat, "\"%s\":", name);
    p = strstr(s, pat);
    if (p == NULL) {
        return 0;
    }
    p += strlen(pat);
    if (*p == '"') {
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        v = v * 10u + (uint64_t)(*p - '0');
        p++;
        any = 1;
    }
    if (any) {
        *out = v;
    }
    return any;
}

/* Copies the string value of "name":"..." (no unescaping) into out. */
static inline int json_str(const char *s,
                           const char *name,
                           char *out,
                           size_t cap)
{
    char pat[64];
    const char *p;
    size_t n = 0;

    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    p = strstr(s, pat);
    if (p == NULL || cap == 0) {
        return 0;
    }
    p += strlen(pat);
    while (*p != '\0' && *p != '"' && n + 1 < cap) {
        out[n++] = *p++;
    }
    out[n] = '\0';
    return 1;
}

#endif
