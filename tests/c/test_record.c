/* test_record.c - unit tests for core/record.c: JSON string escaping and
 * whole record lines, as tables of input and exact expected output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "ft_test.h"
#include "record.h"

#define L FT_L
#define N_ROWS FT_N_ROWS

/* Does the buffer hold exactly want? On a mismatch print both, with the row
 * name, and return 0. */
static int buf_is(const ft_buf *b, const char *want, size_t want_len,
                  const char *row) {
  return !b->oom && ft_test_bytes_are(b->data, b->len, want, want_len, row);
}

/* ---- ft_json_string ----------------------------------------------------- */

FT_TEST(test_json_string) {
  static const struct {
    const char *name;
    const char *in;
    size_t in_len;
    const char *want;
  } rows[] = {
      {"empty", L(""), "\"\""},
      {"ascii", L("hello, world"), "\"hello, world\""},
      {"printable ascii kept, slash too", L(" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~"),
       "\" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~\""},
      {"quote", L("a\"b"), "\"a\\\"b\""},
      {"backslash", L("a\\b"), "\"a\\\\b\""},
      {"quotes and backslashes", L("\"\\\"\\"), "\"\\\"\\\\\\\"\\\\\""},
      {"newline", L("a\nb"), "\"a\\nb\""},
      {"carriage return", L("a\rb"), "\"a\\rb\""},
      {"tab", L("a\tb"), "\"a\\tb\""},
      {"crlf", L("\r\n"), "\"\\r\\n\""},
      {"nul", L("a\0b"), "\"a\\u0000b\""},
      {"only nul", L("\0"), "\"\\u0000\""},
      {"0x01", L("\x01"), "\"\\u0001\""},
      {"backspace", L("\b"), "\"\\u0008\""},
      {"form feed", L("\f"), "\"\\u000c\""},
      {"vertical tab", L("\v"), "\"\\u000b\""},
      {"escape 0x1b", L("\x1b[0m"), "\"\\u001b[0m\""},
      {"0x1f", L("\x1f"), "\"\\u001f\""},
      {"del 0x7f kept", L("\x7f"), "\"\x7f\""},
      {"2-byte e-acute", L("caf\xc3\xa9"), "\"caf\xc3\xa9\""},
      {"2-byte lowest U+0080", L("\xc2\x80"), "\"\xc2\x80\""},
      {"2-byte highest U+07FF", L("\xdf\xbf"), "\"\xdf\xbf\""},
      {"3-byte euro", L("\xe2\x82\xac" "1"), "\"\xe2\x82\xac" "1\""},
      {"3-byte lowest U+0800", L("\xe0\xa0\x80"), "\"\xe0\xa0\x80\""},
      {"3-byte U+D7FF", L("\xed\x9f\xbf"), "\"\xed\x9f\xbf\""},
      {"3-byte U+E000", L("\xee\x80\x80"), "\"\xee\x80\x80\""},
      {"3-byte U+FFFF", L("\xef\xbf\xbf"), "\"\xef\xbf\xbf\""},
      {"4-byte emoji", L("\xf0\x9f\x98\x80!"), "\"\xf0\x9f\x98\x80!\""},
      {"4-byte highest U+10FFFF", L("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""},
      {"mixed", L("\xc3\xa9\"\n\xe2\x82\xac\t\xf0\x9f\x98\x80"),
       "\"\xc3\xa9\\\"\\n\xe2\x82\xac\\t\xf0\x9f\x98\x80\""},
      {"lone continuation 0x80", L("a\x80" "b"), "\"a\\ufffdb\""},
      {"lone 0xbf", L("\xbf"), "\"\\ufffd\""},
      {"overlong C0 AF", L("\xc0\xaf"), "\"\\ufffd\\ufffd\""},
      {"overlong C1 BF", L("\xc1\xbf"), "\"\\ufffd\\ufffd\""},
      {"overlong E0 80 AF", L("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\""},
      {"overlong F0 80 80 AF", L("\xf0\x80\x80\xaf"),
       "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
      {"surrogate ED A0 80", L("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""},
      {"surrogate ED BF BF", L("\xed\xbf\xbf"), "\"\\ufffd\\ufffd\\ufffd\""},
      {"above U+10FFFF F4 90 80 80", L("\xf4\x90\x80\x80"),
       "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
      {"F5 lead", L("\xf5\x80\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
      {"F8 lead", L("\xf8"), "\"\\ufffd\""},
      {"FE FF", L("\xfe\xff"), "\"\\ufffd\\ufffd\""},
      {"truncated 2-byte at end", L("ab\xc3"), "\"ab\\ufffd\""},
      {"truncated 3-byte at end", L("ab\xe2\x82"), "\"ab\\ufffd\\ufffd\""},
      {"truncated 4-byte at end", L("ab\xf0\x9f\x98"),
       "\"ab\\ufffd\\ufffd\\ufffd\""},
      {"bad continuation then ascii", L("\xe2(\xa1"), "\"\\ufffd(\\ufffd\""},
      {"invalid then valid", L("\xff\xc3\xa9"), "\"\\ufffd\xc3\xa9\""},
      {"nul inside utf-8 run", L("\xc3\xa9\0\xc3\xa9"),
       "\"\xc3\xa9\\u0000\xc3\xa9\""},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    ft_buf b = {0};
    ft_json_string(&b, rows[i].in, rows[i].in_len);
    FT_CHECK(buf_is(&b, rows[i].want, strlen(rows[i].want), rows[i].name));
    ft_buf_free(&b);
  }
}

/* Appending to a buffer that already holds text, and a string longer than
 * the buffer's first allocation. */
/* The escaper reads eight bytes at a time when none needs escaping: every
 * byte that does, at every position around the word boundaries, and every
 * byte value next to plain ones, against a byte-at-a-time reference. */
static void json_ref(ft_buf *b, const unsigned char *s, size_t n) {
  char esc[8];
  ft_buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned c = s[i];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      ft_buf_put(b, esc, 2);
    } else if (c == '\n') {
      ft_buf_put(b, "\\n", 2);
    } else if (c == '\r') {
      ft_buf_put(b, "\\r", 2);
    } else if (c == '\t') {
      ft_buf_put(b, "\\t", 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", c);
      ft_buf_put(b, esc, 6);
    } else if (c >= 0x80) {
      ft_buf_put(b, "\\ufffd", 6); /* alone, never valid UTF-8 */
    } else {
      ft_buf_putc(b, (char)c);
    }
  }
  ft_buf_putc(b, '"');
}

FT_TEST(test_json_string_word_boundaries) {
  unsigned char in[24];
  for (unsigned c = 0; c < 256; c++) {
    for (size_t pos = 0; pos < sizeof(in); pos++) {
      memset(in, 'a', sizeof(in));
      in[pos] = (unsigned char)c;
      for (size_t n = pos + 1; n <= sizeof(in); n += 7) {
        ft_buf got = {0}, want = {0};
        ft_json_string(&got, (const char *)in, n);
        json_ref(&want, in, n);
        if (!buf_is(&got, want.data, want.len, "one byte among plain ones")) {
          fprintf(stderr, "  byte 0x%02x at %zu of %zu\n", c, pos, n);
          ft_test_cur_failed_ = 1;
          c = 256;
          pos = sizeof(in);
          n = sizeof(in) + 1;
        }
        ft_buf_free(&got);
        ft_buf_free(&want);
      }
    }
  }
}

FT_TEST(test_json_string_append_and_grow) {
  ft_buf b = {0};
  ft_buf_puts(&b, "x=");
  ft_json_string(&b, L("\"\n"));
  FT_CHECK(buf_is(&b, L("x=\"\\\"\\n\""), "append"));
  ft_buf_free(&b);
  FT_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);

  /* 5000 quotes: every byte doubles, past the 4096-byte first allocation */
  enum { N = 5000 };
  char *in = malloc(N), *want = malloc(2 * N + 2);
  memset(in, '"', N);
  want[0] = '"';
  for (size_t i = 0; i < N; i++) {
    want[1 + 2 * i] = '\\';
    want[2 + 2 * i] = '"';
  }
  want[2 * N + 1] = '"';
  ft_json_string(&b, in, N);
  FT_CHECK(buf_is(&b, want, 2 * N + 2, "5000 quotes"));
  ft_buf_free(&b);
  free(in);
  free(want);
}

/* ---- ft_record_write ---------------------------------------------------- */

#define HDRS_TWO_COOKIES                                                      \
  "content-type\0text/plain\0set-cookie\0a=1\0x-y\0z\0set-cookie\0b=2\0"

typedef struct record_row {
  const char *name;
  uint64_t index;
  const char *url;
  const char *meta;
  long status;
  const char *final_url;
  const char *hdrs;
  size_t hdrs_len;
  const char *body;
  size_t body_len;
  int attempts;
  double elapsed_ms;
  ft_errkind error, cause;
  const char *message;
  int flags;
  const char *want;
} record_row;

static const record_row record_rows[] = {
    {"200 with repeated header and meta", 7, "http://a/x", "{\"k\":1}", 200,
     "http://a/x", L(HDRS_TWO_COOKIES), L("hi\n"), 1, 12.5, FT_ERR_NONE,
     FT_ERR_NONE, "", 0,
     "{\"index\":7,\"url\":\"http://a/x\",\"status\":200,\"headers\":{"
     "\"content-type\":\"text/plain\",\"set-cookie\":\"a=1, b=2\",\"x-y\":"
     "\"z\"},\"body\":\"hi\\n\",\"attempts\":1,\"elapsed_ms\":12.500,"
     "\"error\":null,\"meta\":{\"k\":1}}\n"},
    {"three values of one name", 1, "http://a/", NULL, 200, NULL,
     L("v\0" "1\0" "w\0" "2\0" "v\0" "3\0" "v\0" "4\0"), L(""), 1, 0, FT_ERR_NONE,
     FT_ERR_NONE, "", 0,
     "{\"index\":1,\"url\":\"http://a/\",\"status\":200,\"headers\":{\"v\":"
     "\"1, 3, 4\",\"w\":\"2\"},\"body\":\"\",\"attempts\":1,\"elapsed_ms\":"
     "0.000,\"error\":null}\n"},
    {"redirected, binary body", 2, "http://a/", NULL, 200, "https://b/c",
     L("content-type\0application/octet-stream\0"), L("\xff\0\x01"), 1,
     3.25, FT_ERR_NONE, FT_ERR_NONE, "", 0,
     "{\"index\":2,\"url\":\"http://a/\",\"final_url\":\"https://b/c\","
     "\"status\":200,\"headers\":{\"content-type\":\"application/octet-"
     "stream\"},\"body_base64\":\"/wAB\",\"attempts\":1,\"elapsed_ms\":3.250,"
     "\"error\":null}\n"},
    {"utf-8 body with nul", 3, "http://a/", NULL, 404, "http://a/", NULL, 0,
     L("caf\xc3\xa9\0\""), 2, 1.25, FT_ERR_NONE, FT_ERR_NONE, "", 0,
     "{\"index\":3,\"url\":\"http://a/\",\"status\":404,\"headers\":{},"
     "\"body\":\"caf\xc3\xa9\\u0000\\\"\",\"attempts\":2,\"elapsed_ms\":"
     "1.250,\"error\":null}\n"},
    {"no response: timeout", 4, "http://a/", NULL, 0, NULL, L(HDRS_TWO_COOKIES),
     L("ignored"), 3, 15000.25, FT_ERR_TIMEOUT, FT_ERR_NONE,
     "Operation timed out after 5000 ms", 0,
     "{\"index\":4,\"url\":\"http://a/\",\"status\":null,\"attempts\":3,"
     "\"elapsed_ms\":15000.250,\"error\":{\"kind\":\"timeout\",\"message\":"
     "\"Operation timed out after 5000 ms\"}}\n"},
    {"retries exhausted with cause and a status", 5, "https://h/p?q=1", "[1,2]",
     503, NULL, L("retry-after\0" "1\0"), L("busy"), 6, 2000, FT_ERR_RETRIES,
     FT_ERR_HTTP, "HTTP 503 \"Service Unavailable\"", 0,
     "{\"index\":5,\"url\":\"https://h/p?q=1\",\"status\":503,\"headers\":{"
     "\"retry-after\":\"1\"},\"body\":\"busy\",\"attempts\":6,\"elapsed_ms\":"
     "2000.000,\"error\":{\"kind\":\"retries_exhausted\",\"message\":"
     "\"HTTP 503 \\\"Service Unavailable\\\"\",\"cause\":\"http\"},\"meta\":"
     "[1,2]}\n"},
    {"input error, NULL message", 6, "not a url", NULL, 0, NULL, NULL, 0, NULL,
     0, 0, 0, FT_ERR_URL, FT_ERR_NONE, NULL, 0,
     "{\"index\":6,\"url\":\"not a url\",\"status\":null,\"attempts\":0,"
     "\"elapsed_ms\":0.000,\"error\":{\"kind\":\"url\",\"message\":\"\"}}\n"},
    {"no url", 8, NULL, "null", 0, NULL, NULL, 0, NULL, 0, 0, 0, FT_ERR_INPUT,
     FT_ERR_NONE, "line 9: \x01 bad\n", 0,
     "{\"index\":8,\"url\":null,\"status\":null,\"attempts\":0,\"elapsed_ms\":"
     "0.000,\"error\":{\"kind\":\"input\",\"message\":\"line 9: \\u0001 "
     "bad\\n\"},\"meta\":null}\n"},
    {"NO_BODY", 9, "http://a/", NULL, 200, NULL, L("a\0b\0"), L("body"), 1, 1,
     FT_ERR_NONE, FT_ERR_NONE, "", FT_RECORD_NO_BODY,
     "{\"index\":9,\"url\":\"http://a/\",\"status\":200,\"headers\":{\"a\":"
     "\"b\"},\"attempts\":1,\"elapsed_ms\":1.000,\"error\":null}\n"},
    {"NO_HEADERS", 10, "http://a/", NULL, 200, NULL, L("a\0b\0"), L("body"), 1,
     1, FT_ERR_NONE, FT_ERR_NONE, "", FT_RECORD_NO_HEADERS,
     "{\"index\":10,\"url\":\"http://a/\",\"status\":200,\"body\":\"body\","
     "\"attempts\":1,\"elapsed_ms\":1.000,\"error\":null}\n"},
    {"NO_BODY and NO_HEADERS", 11, "http://a/", NULL, 200, "http://b/",
     L("a\0b\0"), L("\xff"), 1, 1, FT_ERR_NONE, FT_ERR_NONE, "",
     FT_RECORD_NO_BODY | FT_RECORD_NO_HEADERS,
     "{\"index\":11,\"url\":\"http://a/\",\"final_url\":\"http://b/\","
     "\"status\":200,\"attempts\":1,\"elapsed_ms\":1.000,\"error\":null}\n"},
    /* too_large has no body, even were one handed over */
    {"too large with a status", 12, "http://a/", NULL, 200, NULL, L("a\0b\0"),
     L("partial"), 1, 9, FT_ERR_TOO_LARGE, FT_ERR_NONE,
     "response body larger than the maximum size", 0,
     "{\"index\":12,\"url\":\"http://a/\",\"status\":200,\"headers\":{\"a\":"
     "\"b\"},\"attempts\":1,\"elapsed_ms\":9.000,"
     "\"error\":{\"kind\":\"too_large\",\"message\":\"response body larger "
     "than the maximum size\"}}\n"},
    {"escaped url and header values", UINT64_MAX, "http://a/\"q\"\\", NULL,
     301, "http://a/\"q\"\\", L("location\0/x\ty\0x-bad\0\xff\0"), L(""), 1,
     0.001, FT_ERR_NONE, FT_ERR_NONE, "", 0,
     "{\"index\":18446744073709551615,\"url\":\"http://a/\\\"q\\\"\\\\\","
     "\"status\":301,\"headers\":{\"location\":\"/x\\ty\",\"x-bad\":"
     "\"\\ufffd\"},\"body\":\"\",\"attempts\":1,\"elapsed_ms\":0.001,"
     "\"error\":null}\n"},
};

/* Headers with an empty value ("X-Empty:" is legal, RFC 9110 5.5). Kept in
 * their own table: core/record.c's write_headers passes an empty string to
 * ft_buf_puts on a still-unallocated buffer, and ft_buf_put then calls
 * memcpy(NULL, "", 0), undefined behaviour that UBSan reports (and, with
 * -fno-sanitize-recover, aborts on). */
static const record_row empty_value_rows[] = {
    {"empty header value", 14, "http://a/", NULL, 200, NULL,
     L("x-empty\0\0x-y\0z\0"), L(""), 1, 0, FT_ERR_NONE, FT_ERR_NONE, "", 0,
     "{\"index\":14,\"url\":\"http://a/\",\"status\":200,\"headers\":{"
     "\"x-empty\":\"\",\"x-y\":\"z\"},\"body\":\"\",\"attempts\":1,"
     "\"elapsed_ms\":0.000,\"error\":null}\n"},
    {"repeated name with an empty first value", 13, "http://a/", NULL, 200,
     NULL, L("a\0\0a\0x\0"), L(""), 1, 0, FT_ERR_NONE, FT_ERR_NONE, "", 0,
     "{\"index\":13,\"url\":\"http://a/\",\"status\":200,\"headers\":{\"a\":"
     "\", x\"},\"body\":\"\",\"attempts\":1,\"elapsed_ms\":0.000,"
     "\"error\":null}\n"},
};

static ft_request *make_request(const record_row *row) {
  ft_request *req = ft_request_new();
  req->index = row->index;
  req->url = row->url ? strdup(row->url) : NULL;
  req->meta_json = row->meta ? strdup(row->meta) : NULL;
  return req;
}

static ft_response make_response(const record_row *row) {
  ft_response res = {0};
  res.status = row->status;
  res.final_url = row->final_url;
  res.headers = row->hdrs;
  res.headers_len = row->hdrs_len;
  res.body = row->body;
  res.body_len = row->body_len;
  res.attempts = row->attempts;
  res.elapsed_ms = row->elapsed_ms;
  res.error = row->error;
  res.cause = row->cause;
  res.message = row->message;
  return res;
}

static void check_record_rows(const record_row *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const record_row *row = &rows[i];
    ft_request *req = make_request(row);
    ft_response res = make_response(row);
    ft_buf b = {0};
    ft_record_write(&b, req, &res, row->flags);
    FT_CHECK(buf_is(&b, row->want, strlen(row->want), row->name));
    ft_buf_free(&b);
    ft_request_free(req);
  }
}

FT_TEST(test_record_write) {
  check_record_rows(record_rows, N_ROWS(record_rows));
}

FT_TEST(test_record_write_empty_header_value) {
  check_record_rows(empty_value_rows, N_ROWS(empty_value_rows));
}

/* More field lines than write_headers' table on the stack holds: the table
 * moves to the heap, and a name repeated on both sides of that boundary is
 * still joined under its first position. */
FT_TEST(test_record_write_many_headers) {
  ft_buf hdrs = {0}, want = {0}, b = {0};
  char line[64];
  ft_buf_puts(&want, "{\"index\":1,\"url\":\"http://a/\",\"status\":200,"
                     "\"headers\":{");
  for (int i = 0; i < 150; i++) {
    int n = snprintf(line, sizeof(line), "h%d", i == 140 ? 1 : i);
    ft_buf_put(&hdrs, line, (size_t)n + 1);
    n = snprintf(line, sizeof(line), "v%d", i);
    ft_buf_put(&hdrs, line, (size_t)n + 1);
    if (i == 140)
      continue;
    snprintf(line, sizeof(line), "%s\"h%d\":\"v%d%s\"", i ? "," : "", i, i,
             i == 1 ? ", v140" : "");
    ft_buf_puts(&want, line);
  }
  ft_buf_puts(&want, "},\"attempts\":1,\"elapsed_ms\":0.000,"
                     "\"error\":null}\n");
  ft_request *req = ft_request_new();
  req->index = 1;
  req->url = strdup("http://a/");
  ft_response res = {0};
  res.status = 200;
  res.headers = hdrs.data;
  res.headers_len = hdrs.len;
  res.attempts = 1;
  ft_record_write(&b, req, &res, FT_RECORD_NO_BODY);
  FT_CHECK(buf_is(&b, want.data, want.len, "150 headers, h1 twice"));
  ft_buf_free(&b);
  ft_buf_free(&hdrs);
  ft_buf_free(&want);
  ft_request_free(req);
}

/* Merging repeated names is linear in the number of lines: the name
 * comparisons it makes stay within a small multiple of n, for all-distinct
 * names, every name twice (the second far from the first) and one name n
 * times. A pairwise search makes about n * n / 4 here (2.5e9). */
static void check_linear(const char *row, size_t n, size_t names) {
  ft_buf hdrs = {0}, want = {0}, b = {0};
  char line[64];
  for (size_t i = 0; i < n; i++) {
    int k = snprintf(line, sizeof(line), "n%zu", i % names);
    ft_buf_put(&hdrs, line, (size_t)k + 1);
    k = snprintf(line, sizeof(line), "v%zu", i);
    ft_buf_put(&hdrs, line, (size_t)k + 1);
  }
  ft_buf_putc(&want, '{');
  for (size_t j = 0; j < names && j < n; j++) {
    snprintf(line, sizeof(line), "%s\"n%zu\":\"", j ? "," : "", j);
    ft_buf_puts(&want, line);
    for (size_t i = j; i < n; i += names) {
      snprintf(line, sizeof(line), "%sv%zu", i == j ? "" : ", ", i);
      ft_buf_puts(&want, line);
    }
    ft_buf_putc(&want, '"');
  }
  ft_buf_putc(&want, '}');
  size_t compares = 0;
  ft_record_headers(&b, hdrs.data, hdrs.len, &compares);
  FT_CHECK(buf_is(&b, want.data, want.len, row));
  if (compares > 4 * n) {
    fprintf(stderr, "  row \"%s\": %zu comparisons for %zu lines\n", row,
            compares, n);
    ft_test_cur_failed_ = 1;
  }
  ft_buf_free(&b);
  ft_buf_free(&hdrs);
  ft_buf_free(&want);
}

FT_TEST(test_record_headers_linear) {
  check_linear("100000 distinct names", 100000, 100000);
  check_linear("50000 names twice", 100000, 50000);
  check_linear("one name 100000 times", 100000, 1);
  check_linear("1000 names 100 times", 100000, 1000);
}

/* Records written one after another into one buffer form JSON Lines. */
FT_TEST(test_record_write_appends_lines) {
  ft_buf b = {0};
  size_t total = 0;
  for (size_t i = 0; i < N_ROWS(record_rows); i++) {
    ft_request *req = make_request(&record_rows[i]);
    ft_response res = make_response(&record_rows[i]);
    ft_record_write(&b, req, &res, record_rows[i].flags);
    ft_request_free(req);
    total += strlen(record_rows[i].want);
  }
  FT_CHECK_EQ_INT(b.len, total);
  FT_CHECK(!b.oom);
  size_t off = 0;
  for (size_t i = 0; i < N_ROWS(record_rows) && off <= b.len; i++) {
    size_t n = strlen(record_rows[i].want);
    FT_CHECK(off + n <= b.len &&
             memcmp(b.data + off, record_rows[i].want, n) == 0);
    off += n;
  }
  ft_buf_free(&b);
}

int main(void) {
  /* line-buffered, so the results so far survive a sanitizer abort */
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_json_string);
  FT_RUN(test_json_string_word_boundaries);
  FT_RUN(test_json_string_append_and_grow);
  FT_RUN(test_record_write);
  FT_RUN(test_record_write_appends_lines);
  FT_RUN(test_record_write_many_headers);
  FT_RUN(test_record_headers_linear);
  FT_RUN(test_record_write_empty_header_value); /* last: UB in core, see above */
  return FT_DONE();
}
