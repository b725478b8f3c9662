/* test_base64.c - unit tests for core/base64.c: RFC 4648's vectors, appending,
 * growing past the first allocation. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "ft_test.h"

#define L FT_L
#define N_ROWS FT_N_ROWS

/* Does the buffer hold exactly want? On a mismatch print both, with the row
 * name, and return 0. */
static int buf_is(const ft_buf *b, const char *want, size_t want_len,
                  const char *row) {
  return !b->oom && ft_test_bytes_are(b->data, b->len, want, want_len, row);
}

/* ---- ft_base64_encode --------------------------------------------------- */

FT_TEST(test_base64) {
  static const struct {
    const char *in;
    size_t in_len;
    const char *want;
  } rows[] = {
      /* RFC 4648 section 10 */
      {L(""), ""},
      {L("f"), "Zg=="},
      {L("fo"), "Zm8="},
      {L("foo"), "Zm9v"},
      {L("foob"), "Zm9vYg=="},
      {L("fooba"), "Zm9vYmE="},
      {L("foobar"), "Zm9vYmFy"},
      /* the last two letters of the alphabet, and NUL bytes */
      {L("\xfb\xef\xbe"), "++++"},
      {L("\xff\xff\xff"), "////"},
      {L("\xff\xfe\x00"), "//4A"},
      {L("\0"), "AA=="},
      {L("\0\0"), "AAA="},
      {L("\xff"), "/w=="},
      {L("\xff\xff"), "//8="},
  };
  for (size_t i = 0; i < N_ROWS(rows); i++) {
    ft_buf b = {0};
    ft_base64_encode(&b, rows[i].in, rows[i].in_len);
    FT_CHECK(buf_is(&b, rows[i].want, strlen(rows[i].want), rows[i].want));
    ft_buf_free(&b);
  }
  /* appended after existing content */
  ft_buf b = {0};
  ft_buf_puts(&b, "x:");
  ft_base64_encode(&b, L("foobar"));
  ft_base64_encode(&b, L("f"));
  FT_CHECK(buf_is(&b, L("x:Zm9vYmFyZg=="), "append"));
  ft_buf_free(&b);
  /* larger than the first allocation: 3300 zero bytes are 4400 'A's */
  char *zeros = calloc(3300, 1), *want = malloc(4400);
  memset(want, 'A', 4400);
  ft_base64_encode(&b, zeros, 3300);
  FT_CHECK(buf_is(&b, want, 4400, "3300 zero bytes"));
  ft_buf_free(&b);
  free(zeros);
  free(want);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_base64);
  return FT_DONE();
}
