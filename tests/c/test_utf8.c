/* test_utf8.c - unit tests for core/utf8.c: UTF-8 validation, as a table of
 * inputs and verdicts, and the word-at-a-time fast path at every offset. */
#include <string.h>

#include "ft_test.h"
#include "utf8.h"

/* A string literal and its length, NUL bytes included. */
#define L(s) s, sizeof(s) - 1

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- ft_utf8_valid ------------------------------------------------------ */

FT_TEST(test_utf8_valid) {
  static const struct {
    const char *name;
    const char *in;
    size_t in_len;
    int valid;
  } rows[] = {
      {"empty", L(""), 1},
      {"ascii", L("hello"), 1},
      {"nul", L("a\0b"), 1},
      {"control bytes", L("\x01\x1f\x7f"), 1},
      {"2-byte", L("\xc3\xa9"), 1},
      {"2-byte U+0080", L("\xc2\x80"), 1},
      {"2-byte U+07FF", L("\xdf\xbf"), 1},
      {"3-byte euro", L("\xe2\x82\xac"), 1},
      {"3-byte U+0800", L("\xe0\xa0\x80"), 1},
      {"3-byte U+D7FF", L("\xed\x9f\xbf"), 1},
      {"3-byte U+E000", L("\xee\x80\x80"), 1},
      {"3-byte U+FFFF", L("\xef\xbf\xbf"), 1},
      {"4-byte emoji", L("\xf0\x9f\x98\x80"), 1},
      {"4-byte U+10000", L("\xf0\x90\x80\x80"), 1},
      {"4-byte U+10FFFF", L("\xf4\x8f\xbf\xbf"), 1},
      {"lone 0x80", L("\x80"), 0},
      {"lone 0xbf", L("\xbf"), 0},
      {"overlong C0 AF", L("\xc0\xaf"), 0},
      {"overlong C1 BF", L("\xc1\xbf"), 0},
      {"overlong E0 80 AF", L("\xe0\x80\xaf"), 0},
      {"overlong E0 9F BF", L("\xe0\x9f\xbf"), 0},
      {"overlong F0 80 80 AF", L("\xf0\x80\x80\xaf"), 0},
      {"overlong F0 8F BF BF", L("\xf0\x8f\xbf\xbf"), 0},
      {"surrogate ED A0 80", L("\xed\xa0\x80"), 0},
      {"surrogate ED BF BF", L("\xed\xbf\xbf"), 0},
      {"surrogate pair", L("\xed\xa0\xbd\xed\xb8\x80"), 0},
      {"above U+10FFFF", L("\xf4\x90\x80\x80"), 0},
      {"F5 lead", L("\xf5\x80\x80\x80"), 0},
      {"F8 lead", L("\xf8\x88\x80\x80\x80"), 0},
      {"FE", L("\xfe"), 0},
      {"FF", L("\xff"), 0},
      {"truncated 2-byte", L("\xc3"), 0},
      {"truncated 3-byte", L("\xe2\x82"), 0},
      {"truncated 4-byte", L("\xf0\x9f\x98"), 0},
      {"bad continuation", L("\xe2(\xa1"), 0},
      {"continuation missing in 4-byte", L("\xf0\x9f" "a\x80"), 0},
      {"ascii then truncated", L("abcdefghijklmno\xe2\x82"), 0},
      {"long ascii then emoji", L("abcdefghijklmnop\xf0\x9f\x98\x80"), 1},
      {"emoji then long ascii", L("\xf0\x9f\x98\x80" "abcdefghijklmnopq"), 1},
      {"utf-8 across 8-byte words", L("abcdef\xe2\x82\xac" "ghijklmnopq"), 1},
      {"bad byte in second word", L("abcdefghijk\xffmnopqrstu"), 0},
      {"bad byte last of 16", L("abcdefghijklmno\x80"), 0},
      {"bad byte first of 16", L("\x80" "bcdefghijklmnop"), 0},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    int got = ft_utf8_valid(rows[i].in, rows[i].in_len);
    if (got != rows[i].valid) {
      fprintf(stderr, "  row \"%s\": want %d got %d\n", rows[i].name,
              rows[i].valid, got);
      ft_test_cur_failed_ = 1;
    }
  }
}

/* The 8-byte fast path: long ASCII runs with one bad or one multi-byte
 * sequence at every offset, including the last bytes a word can hold. */
FT_TEST(test_utf8_valid_fast_path) {
  static const struct {
    const char *seq;
    size_t len;
    int valid;
  } ins[] = {
      {L("\x80"), 0},          {L("\xff"), 0},
      {L("\xc0\xaf"), 0},      {L("\xed\xa0\x80"), 0},
      {L("\xf5\x80\x80\x80"), 0},
      {L("\xc3\xa9"), 1},      {L("\xe2\x82\xac"), 1},
      {L("\xf0\x9f\x98\x80"), 1},
  };
  char buf[64];
  int checked = 0;
  for (size_t n = 9; n <= 40; n++) {
    for (size_t k = 0; k < N_ROWS(ins); k++) {
      for (size_t at = 0; at + ins[k].len <= n; at++) {
        memset(buf, 'a', n);
        memcpy(buf + at, ins[k].seq, ins[k].len);
        int got = ft_utf8_valid(buf, n);
        if (got != ins[k].valid) {
          fprintf(stderr, "  len %zu, sequence %zu at %zu: want %d got %d\n",
                  n, k, at, ins[k].valid, got);
          ft_test_cur_failed_ = 1;
        }
        checked++;
      }
    }
    /* a sequence cut by the end of the input, after a long ASCII run */
    memset(buf, 'a', n);
    buf[n - 1] = (char)0xe2;
    FT_CHECK_EQ_INT(ft_utf8_valid(buf, n), 0);
    buf[n - 2] = (char)0xe2;
    buf[n - 1] = (char)0x82;
    FT_CHECK_EQ_INT(ft_utf8_valid(buf, n), 0);
    /* the length is honoured: a bad byte just past n is not read */
    memset(buf, 'a', n);
    buf[n] = (char)0xff;
    FT_CHECK_EQ_INT(ft_utf8_valid(buf, n), 1);
  }
  FT_CHECK(checked > 5000);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_utf8_valid);
  FT_RUN(test_utf8_valid_fast_path);
  return FT_DONE();
}
