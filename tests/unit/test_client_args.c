/* The client library's pure pieces: turning command-line text into typed
 * values, rendering values as text and JSON, endpoint parsing, and the
 * checks that fail before anything is sent; the unit binary links the
 * library's objects. */
#include <math.h>
#include <string.h>

#include "../lib/runner.h"
#include "client/client.h"
#include "client/escape.h"
#include "client/flip.h"
#include "client/text.h"
#include "client/wire.h"
#include "lib/err.h"
#include "lib/heap.h"

static struct flip_value parsed(const char *text, enum flip_type type)
{
    struct flip_value v;
    CHECK_EQ_INT(flip_value_parse(text, type, &v), FLIP_OK);
    return v;
}

static void check_format(const struct flip_value *v,
                         int as_json,
                         const char *want)
{
    char *s = NULL;
    CHECK_EQ_INT(flip_value_format(v, as_json, &s), FLIP_OK);
    if (strcmp(s, want) != 0) {
        fprintf(stderr, "  got [%s], want [%s]\n", s, want);
    }
    CHECK(strcmp(s, want) == 0);
    flip_text_free(s);
}

/* Auto typing picks bool, int, double, json containers, else string. */
TEST(client_value_auto, 5)
{
    struct flip_value v;

    v = parsed("true", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_BOOL && v.u.b == 1);
    v = parsed("false", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_BOOL && v.u.b == 0);
    v = parsed("TRUE", FLIP_TYPE_AUTO); /* a new flag: true in any case */
    CHECK(v.type == FLIP_TYPE_BOOL && v.u.b == 1);
    v = parsed("False", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_BOOL && v.u.b == 0);
    v = parsed("42", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_INT && v.u.i == 42);
    v = parsed("-9223372036854775808", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_INT && v.u.i == INT64_MIN);
    v = parsed("1.5", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_DOUBLE && v.u.d > 1.49 && v.u.d < 1.51);
    v = parsed("-2e3", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_DOUBLE && v.u.d < -1999 && v.u.d > -2001);
    /* Too big for int64 is still a number. */
    v = parsed("99999999999999999999", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_DOUBLE);
    v = parsed(" {\"a\": [1, 2]}", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_JSON);
    v = parsed("[]", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_JSON);

    /* Everything else stays the literal text. */
    const char *strings[] = { "007", "1e999", "yes",  "{bad", "\"q\"", "",
                              "-",   "1.",    "0x10", "null", "1 2" };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        v = parsed(strings[i], FLIP_TYPE_AUTO);
        CHECK(v.type == FLIP_TYPE_STRING);
        CHECK(v.u.s == strings[i]); /* borrowed, not copied */
    }
}

/* Explicit types are strict and refuse what does not fit. */
TEST(client_value_explicit, 5)
{
    struct flip_value v;

    v = parsed("+7", FLIP_TYPE_INT);
    CHECK(v.u.i == 7);
    v = parsed("TRUE", FLIP_TYPE_BOOL);
    CHECK(v.u.b == 1);
    v = parsed("0", FLIP_TYPE_BOOL);
    CHECK(v.u.b == 0);
    /* the usual spellings of a bool, any case, where a bool is expected */
    v = parsed("Yes", FLIP_TYPE_BOOL);
    CHECK(v.u.b == 1);
    v = parsed("ON", FLIP_TYPE_BOOL);
    CHECK(v.u.b == 1);
    v = parsed("off", FLIP_TYPE_BOOL);
    CHECK(v.u.b == 0);
    v = parsed("No", FLIP_TYPE_BOOL);
    CHECK(v.u.b == 0);
    v = parsed("2.5", FLIP_TYPE_DOUBLE);
    CHECK(v.u.d > 2.49 && v.u.d < 2.51);
    v = parsed("3", FLIP_TYPE_DOUBLE);
    CHECK(v.type == FLIP_TYPE_DOUBLE);
    v = parsed("1", FLIP_TYPE_JSON);
    CHECK(v.type == FLIP_TYPE_JSON);
    v = parsed("true", FLIP_TYPE_STRING);
    CHECK(v.type == FLIP_TYPE_STRING && strcmp(v.u.s, "true") == 0);

    CHECK_EQ_INT(flip_value_parse("abc", FLIP_TYPE_INT, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("9223372036854775808", FLIP_TYPE_INT, &v),
                 FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse(" 1", FLIP_TYPE_INT, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("1.0", FLIP_TYPE_INT, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("", FLIP_TYPE_INT, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("nan", FLIP_TYPE_DOUBLE, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("inf", FLIP_TYPE_DOUBLE, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("1e999", FLIP_TYPE_DOUBLE, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("0x10", FLIP_TYPE_DOUBLE, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("maybe", FLIP_TYPE_BOOL, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("", FLIP_TYPE_BOOL, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("{", FLIP_TYPE_JSON, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse(NULL, FLIP_TYPE_STRING, &v), FLIP_INVALID);
}

/* Type names round-trip, and unknown names are refused. */
TEST(client_type_names, 5)
{
    enum flip_type t;

    for (int i = FLIP_TYPE_AUTO; i <= FLIP_TYPE_JSON; i++) {
        CHECK_EQ_INT(flip_type_parse(flip_type_name((enum flip_type)i), &t),
                     FLIP_OK);
        CHECK_EQ_INT(t, i);
    }
    CHECK_EQ_INT(flip_type_parse("float", &t), FLIP_INVALID);
    CHECK(strcmp(flip_type_name((enum flip_type)99), "unknown") == 0);
}

/* Plain and JSON renderings of every type. */
TEST(client_value_format, 5)
{
    struct flip_value v;

    v.type = FLIP_TYPE_BOOL;
    v.u.b = 1;
    check_format(&v, 0, "true");
    check_format(&v, 1, "true");
    v.type = FLIP_TYPE_INT;
    v.u.i = INT64_MIN;
    check_format(&v, 1, "-9223372036854775808");
    v.type = FLIP_TYPE_DOUBLE;
    v.u.d = 0.1;
    check_format(&v, 0, "0.10000000000000001");
    v.u.d = 1.5;
    check_format(&v, 1, "1.5");
    v.u.d = INFINITY;
    check_format(&v, 1, "null");
    v.type = FLIP_TYPE_STRING;
    v.u.s = "a\"b\\c\n\t\x01/é";
    check_format(&v, 0, "a\"b\\c\n\t\x01/é");
    check_format(&v, 1, "\"a\\\"b\\\\c\\n\\t\\u0001/é\"");
    v.type = FLIP_TYPE_JSON;
    v.u.s = "{ \"a\" : [1,\n 2],\t\"s\": \"x \\\" y\" }";
    check_format(&v, 0, v.u.s);
    check_format(&v, 1, "{\"a\":[1,2],\"s\":\"x \\\" y\"}");
    v.type = (enum flip_type)42;
    {
        char *s = NULL;
        CHECK_EQ_INT(flip_value_format(&v, 0, &s), FLIP_INVALID);
        CHECK(s == NULL);
    }
}

/* JSON quoting escapes exactly what JSON requires. */
TEST(client_json_quote, 5)
{
    char *s = NULL;

    CHECK_EQ_INT(flip_json_quote("", &s), FLIP_OK);
    CHECK(strcmp(s, "\"\"") == 0);
    flip_text_free(s);
    CHECK_EQ_INT(flip_json_quote("\b\f\r\x1f plain", &s), FLIP_OK);
    CHECK(strcmp(s, "\"\\b\\f\\r\\u001f plain\"") == 0);
    flip_text_free(s);
}

/* Terminal escaping (F13): what flipctl's human output prints for text a
 * server sent. No control code point and no invalid UTF-8 survives;
 * printable text (ASCII, accents, CJK, emoji) passes unchanged. */
static void check_escape(const char *in, const char *want)
{
    struct buf b;

    buf_init(&b);
    CHECK_EQ_INT(escape_text_into(&b, in), FLIP_OK);
    CHECK_EQ_INT(buf_append(&b, "", 1), FLIP_OK);
    if (strcmp((const char *)buf_head(&b), want) != 0) {
        fprintf(stderr, "  escaped [%s], want [%s]\n",
                (const char *)buf_head(&b), want);
    }
    CHECK(strcmp((const char *)buf_head(&b), want) == 0);
    buf_close(&b);
}

TEST(client_escape_terminal_text, 5)
{
    check_escape("plain é 漢 \xf0\x9f\x9a\x80", "plain é 漢 \xf0\x9f\x9a\x80");
    check_escape("\x1b[31mRED\x1b[0m\a", "\\x1b[31mRED\\x1b[0m\\x07");
    check_escape("a\tb\nc\rd\\e", "a\\tb\\nc\\rd\\\\e");
    check_escape("del\x7f", "del\\x7f");
    /* octal escapes: a hex one would swallow the digit or letter after */
    check_escape("c1 \302\2332J", "c1 \\u{009b}2J");           /* CSI */
    check_escape("bidi \342\200\256txt", "bidi \\u{202e}txt"); /* RLO */
    check_escape("bad \xff\xfe \xc0\xaf \xed\xa0\x80 cut \xe2\x82",
                 "bad \\xff\\xfe \\xc0\\xaf \\xed\\xa0\\x80 cut \\xe2\\x82");
    check_escape("", "");
    check_escape(NULL, "");
}

/* JSON output stays valid JSON whatever the text holds, and nothing a
 * terminal acts on is left raw in it: DEL, C1 and bidi controls are
 * \uHHHH (JSON allows them raw), bytes that are not UTF-8 are U+FFFD,
 * and a json-typed value that is not JSON is written as a string. */
TEST(client_json_output_is_safe_and_valid, 5)
{
    struct flip_value v;
    char *s = NULL;

    CHECK_EQ_INT(flip_json_quote("\x1b[2J\x7f\xc2\x9b\xe2\x80\xae ok é", &s),
                 FLIP_OK);
    CHECK(strcmp(s, "\"\\u001b[2J\\u007f\\u009b\\u202e ok é\"") == 0);
    flip_text_free(s);
    CHECK_EQ_INT(flip_json_quote("a\377b\303", &s), FLIP_OK);
    CHECK(strcmp(s, "\"a\\ufffdb\\ufffd\"") == 0);
    flip_text_free(s);
    v.type = FLIP_TYPE_JSON;
    v.u.s = "{\"k\": \"\x7f\xc2\x85\", \"e\": \"\\u001b\"}";
    check_format(&v, 1, "{\"k\":\"\\u007f\\u0085\",\"e\":\"\\u001b\"}");
    v.u.s = "{\"unterminated\x1b";
    check_format(&v, 1, "\"{\\\"unterminated\\u001b\"");
}

/* host:port parsing accepts names, IPv4 and bracketed IPv6 only. */
TEST(client_addr_split, 5)
{
    char host[64];
    char port[8];

    CHECK_EQ_INT(
        wire_addr_split("127.0.0.1:7001", host, sizeof host, port, sizeof port),
        FLIP_OK);
    CHECK(strcmp(host, "127.0.0.1") == 0 && strcmp(port, "7001") == 0);
    CHECK_EQ_INT(
        wire_addr_split("localhost:1", host, sizeof host, port, sizeof port),
        FLIP_OK);
    CHECK_EQ_INT(
        wire_addr_split("[::1]:65535", host, sizeof host, port, sizeof port),
        FLIP_OK);
    CHECK(strcmp(host, "::1") == 0 && strcmp(port, "65535") == 0);

    const char *bad[] = { "::1:7001",  "h:",   ":1",   "h:0", "h:65536",
                          "h:12a",     "h:+1", "h:-1", "h",   "",
                          "[::1:7001", "[]:1", "h: 1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(
            wire_addr_split(bad[i], host, sizeof host, port, sizeof port),
            FLIP_INVALID);
    }
}

/* Endpoint lists tolerate spaces and empty entries, refuse junk. */
TEST(client_new_endpoints, 5)
{
    struct flip_client *c = NULL;
    char many[16 * 20 + 1] = "";

    CHECK_EQ_INT(flip_client_new(&c, " a:1 , b:2,,", "t"), FLIP_OK);
    CHECK(c != NULL);
    CHECK(strcmp(flip_client_errmsg(c), "") == 0);
    flip_client_free(c);
    CHECK_EQ_INT(flip_client_new(&c, "", "t"), FLIP_INVALID);
    CHECK(c == NULL);
    CHECK_EQ_INT(flip_client_new(&c, "a:1,b", NULL), FLIP_INVALID);
    CHECK_EQ_INT(flip_client_new(&c, NULL, NULL), FLIP_INVALID);
    for (int i = 0; i < 16; i++) {
        snprintf(many + strlen(many), 20, "h%d:1,", i);
    }
    CHECK_EQ_INT(flip_client_new(&c, many, NULL), FLIP_OK);
    flip_client_free(c);
    strcat(many, "h16:1");
    CHECK_EQ_INT(flip_client_new(&c, many, NULL), FLIP_INVALID);
    flip_client_free(NULL);
}

/* Bad arguments fail before any connection is attempted. */
TEST(client_local_checks, 5)
{
    struct flip_client *c = NULL;
    struct flip_value v = { .type = FLIP_TYPE_DOUBLE };
    struct flip_write_opts o = { .reason = "\xff" };
    struct flip_flag f;
    struct flip_flag *flags = NULL;
    size_t n = 1;

    /* A port nobody listens on; the checks must not even try it. */
    CHECK_EQ_INT(flip_client_new(&c, "127.0.0.1:1", "t"), FLIP_OK);
    v.u.d = NAN;
    CHECK_EQ_INT(flip_set(c, "k", &v, NULL, NULL), FLIP_INVALID);
    CHECK(strstr(flip_client_errmsg(c), "finite") != NULL);
    v.u.d = 1;
    CHECK_EQ_INT(flip_set(c, "bad key", &v, NULL, NULL), FLIP_INVALID);
    CHECK_EQ_INT(flip_set(c, "k", NULL, NULL, NULL), FLIP_INVALID);
    CHECK_EQ_INT(flip_set(c, "k", &v, &o, NULL), FLIP_INVALID);
    CHECK(strstr(flip_client_errmsg(c), "reason") != NULL);
    CHECK_EQ_INT(flip_delete(c, "", NULL, NULL, NULL), FLIP_INVALID);
    CHECK_EQ_INT(flip_get(c, NULL, 0, &f), FLIP_INVALID);
    CHECK(f.key == NULL);
    CHECK_EQ_INT(flip_list(c, "bad prefix", 0, &flags, &n), FLIP_INVALID);
    CHECK(flags == NULL && n == 0);
    flip_client_free(c);
}

/* With nothing listening, a read gives up with FLIP_UNAVAILABLE within its
 * deadline, and says why. */
TEST(client_unreachable, 10)
{
    struct flip_client *c = NULL;
    struct flip_flag f;
    struct flip_node_status st;

    CHECK_EQ_INT(flip_client_new(&c, "127.0.0.1:1,127.0.0.1:2", "t"), FLIP_OK);
    flip_client_set_timeout(c, 200);
    CHECK_EQ_INT(flip_get(c, "k", 0, &f), FLIP_UNAVAILABLE);
    CHECK(strstr(flip_client_errmsg(c), "gave up after 200 ms") != NULL);
    CHECK_EQ_INT(flip_status_node(c, "127.0.0.1:1", 0, &st), FLIP_UNAVAILABLE);
    CHECK(st.role == NULL);
    CHECK_EQ_INT(flip_status_node(c, "nonsense", 0, &st), FLIP_INVALID);
    flip_client_free(c);
}

/* The corners of the number grammar, whitespace before a JSON container,
 * and what an unknown type or a NULL name gives. */
TEST(client_value_edges, 5)
{
    struct flip_value v;
    enum flip_type t = FLIP_TYPE_INT;

    v = parsed("1e5", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_DOUBLE && v.u.d > 99999.9 && v.u.d < 100000.1);
    v = parsed("1E+2", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_DOUBLE && v.u.d > 99.9 && v.u.d < 100.1);
    v = parsed("25e-1", FLIP_TYPE_AUTO);
    CHECK(v.type == FLIP_TYPE_DOUBLE && v.u.d > 2.49 && v.u.d < 2.51);
    const char *strings[] = { "1e", "1e+", "1E-x", "0.5e" };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        v = parsed(strings[i], FLIP_TYPE_AUTO);
        CHECK(v.type == FLIP_TYPE_STRING && v.u.s == strings[i]);
    }
    const char *containers[] = { "\t[1]", "\n{}", "\r[ ]", " \r\n\t{}" };
    for (size_t i = 0; i < sizeof containers / sizeof containers[0]; i++) {
        v = parsed(containers[i], FLIP_TYPE_AUTO);
        CHECK(v.type == FLIP_TYPE_JSON && v.u.s == containers[i]);
    }
    CHECK_EQ_INT(flip_value_parse("1.5z", FLIP_TYPE_DOUBLE, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_value_parse("1", (enum flip_type)99, &v), FLIP_INVALID);
    CHECK_EQ_INT(flip_type_parse(NULL, &t), FLIP_INVALID);
    CHECK_EQ_INT(t, FLIP_TYPE_INT); /* untouched */
}

/* A string or json value without text renders as the empty string, ""
 * and null; JSON whitespace CR goes too; a NULL quoted is "". */
TEST(client_format_null_text, 5)
{
    struct flip_value v;
    char *s = NULL;

    v.type = FLIP_TYPE_STRING;
    v.u.s = NULL;
    check_format(&v, 0, "");
    check_format(&v, 1, "\"\"");
    v.type = FLIP_TYPE_JSON;
    check_format(&v, 0, "");
    check_format(&v, 1, "null");
    v.u.s = "{\r\n\"a\"\r:\r1}";
    check_format(&v, 1, "{\"a\":1}");
    CHECK_EQ_INT(flip_json_quote(NULL, &s), FLIP_OK);
    CHECK(strcmp(s, "\"\"") == 0);
    flip_text_free(s);
}

/* Overlong forms, code points past U+10FFFF and the isolate controls
 * U+2066..U+2069 are escaped; U+206A, just past them, is not. */
TEST(client_escape_utf8_edges, 5)
{
    check_escape("\xc1\xbf", "\\xc1\\xbf");                   /* 2-byte 0x7f */
    check_escape("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf");          /* 3-byte 0x7ff */
    check_escape("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf"); /* 0xffff */
    check_escape("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* 0x110000 */
    check_escape("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");     /* 0x10ffff */
    check_escape("\xe2\x81\xa6i\xe2\x81\xa9", "\\u{2066}i\\u{2069}");
    check_escape("\xe2\x81\xaa", "\xe2\x81\xaa");
}

static int allocs_left;

static int fail_when_none_left(void *data)
{
    (void)data;
    return allocs_left-- == 0;
}

/* Long text with something to escape every few hundred bytes: the
 * buffer grows at several points of each renderer. */
static void long_text(char *out, size_t cap, const char *sep)
{
    size_t n = 0;

    for (int part = 0; part < 4; part++) {
        for (int i = 0; i < 300 << part && n + 8 < cap; i++) {
            out[n++] = (char)('a' + part);
        }
        n += (size_t)snprintf(out + n, cap - n, "%s", sep);
    }
    out[n] = '\0';
}

/* Whichever allocation fails, each renderer returns FLIP_NOMEM and hands
 * out nothing; with enough memory it renders the whole text. */
TEST(client_render_nomem, 10)
{
    static char text[8000];
    static char json[8200];
    static char want[8200];
    struct flip_value v;
    struct buf b;
    char *s = NULL;
    int rv = FLIP_NOMEM;
    int n;

    long_text(text, sizeof text, "\x01\\\n");
    for (n = 0; n < 20 && rv != FLIP_OK; n++) {
        allocs_left = n;
        flip_heap_set_fault(fail_when_none_left, NULL);
        rv = flip_json_quote(text, &s);
        flip_heap_set_fault(NULL, NULL);
        CHECK(rv == FLIP_OK ? s != NULL : rv == FLIP_NOMEM && s == NULL);
    }
    CHECK(n >= 5 && n < 20); /* 256 doubling to the ~5000 bytes needed */
    CHECK_EQ_INT(strlen(s), strlen(text) + 2 + 4 * 7);
    flip_text_free(s);

    long_text(text, sizeof text, "\x7f");
    snprintf(json, sizeof json, "[\"%s\", 1 ,\t2]", text);
    long_text(text, sizeof text, "\\u007f");
    snprintf(want, sizeof want, "[\"%s\",1,2]", text);
    v.type = FLIP_TYPE_JSON;
    v.u.s = json;
    rv = FLIP_NOMEM;
    for (n = 0; n < 20 && rv != FLIP_OK; n++) {
        allocs_left = n;
        flip_heap_set_fault(fail_when_none_left, NULL);
        rv = flip_value_format(&v, 1, &s);
        flip_heap_set_fault(NULL, NULL);
        CHECK(rv == FLIP_OK ? s != NULL : rv == FLIP_NOMEM && s == NULL);
    }
    CHECK(n >= 5 && n < 20);
    CHECK(strcmp(s, want) == 0);
    flip_text_free(s);

    long_text(text, sizeof text, "\x01\\\n");
    rv = FLIP_NOMEM;
    for (n = 0; n < 20 && rv != FLIP_OK; n++) {
        buf_init(&b);
        allocs_left = n;
        flip_heap_set_fault(fail_when_none_left, NULL);
        rv = escape_text_into(&b, text);
        flip_heap_set_fault(NULL, NULL);
        CHECK(rv == FLIP_OK || rv == FLIP_NOMEM);
        if (rv == FLIP_OK) {
            /* each part's separator: \x01 \\ \n */
            CHECK_EQ_INT(buf_len(&b), strlen(text) + 4 * (3 + 1 + 1));
        }
        buf_close(&b);
    }
    CHECK(n >= 5 && n < 20);
}
