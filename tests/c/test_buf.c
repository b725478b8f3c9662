/* test_buf.c - unit tests for core/buf.c: appending, growing, reserving
 * room for a writer that fills the buffer itself, decimal digits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ft_test.h"

FT_TEST(test_buf_put_and_grow) {
  ft_buf b = {0};
  ft_buf_puts(&b, "ab");
  FT_BUF_LIT(&b, "c\0d"); /* a literal's NUL bytes too */
  ft_buf_putc(&b, 'e');
  ft_buf_put(&b, NULL, 0); /* nothing, and no allocation needed for it */
  FT_CHECK_EQ_INT(b.len, 6);
  FT_CHECK(memcmp(b.data, "abc\0de", 6) == 0);
  FT_CHECK_EQ_INT(b.cap, 4096);
  /* past the first allocation, byte by byte and in one piece */
  for (int i = 0; i < 5000; i++)
    ft_buf_putc(&b, (char)('0' + i % 10));
  char big[9000];
  memset(big, 'x', sizeof(big));
  ft_buf_put(&b, big, sizeof(big));
  FT_CHECK_EQ_INT(b.len, 6 + 5000 + 9000);
  FT_CHECK_EQ_INT(b.cap, 16384);
  FT_CHECK(b.data[6] == '0' && b.data[6 + 4999] == '9');
  FT_CHECK(b.data[b.len - 1] == 'x');
  FT_CHECK_EQ_INT(b.oom, 0);
  ft_buf_free(&b);
  FT_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
}

FT_TEST(test_buf_reserve) {
  ft_buf b = {0};
  FT_CHECK_EQ_INT(ft_buf_reserve(&b, 10), 0);
  FT_CHECK(b.cap >= 10 && b.len == 0);
  memcpy(b.data, "0123456789", 10); /* the writer fills it, then says so */
  b.len = 10;
  char *before = b.data;
  FT_CHECK_EQ_INT(ft_buf_reserve(&b, b.cap - b.len), 0); /* fits: no move */
  FT_CHECK(b.data == before);
  FT_CHECK_EQ_INT(ft_buf_reserve(&b, b.cap), 0); /* grows, content kept */
  FT_CHECK(b.cap >= 10 + 4096);
  FT_CHECK(memcmp(b.data, "0123456789", 10) == 0);
  ft_buf_free(&b);
}

FT_TEST(test_buf_put_u64) {
  static const struct {
    uint64_t v;
    const char *want;
  } rows[] = {{0, "0"}, {7, "7"}, {10, "10"}, {1234567890, "1234567890"},
              {UINT64_MAX, "18446744073709551615"}};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    ft_buf b = {0};
    ft_buf_put_u64(&b, rows[i].v);
    ft_buf_putc(&b, '\0');
    FT_CHECK_EQ_STR(b.data, rows[i].want);
    ft_buf_free(&b);
  }
}

/* ft_bytes_dup: the bytes (NUL bytes too) and a NUL after them. */
FT_TEST(test_bytes_dup) {
  char *c = ft_bytes_dup("a\0b", 3);
  FT_CHECK(c != NULL);
  if (c) {
    FT_CHECK(memcmp(c, "a\0b\0", 4) == 0);
    free(c);
  }
  c = ft_bytes_dup(NULL, 0);
  FT_CHECK(c != NULL && c[0] == '\0');
  free(c);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_buf_put_and_grow);
  FT_RUN(test_buf_reserve);
  FT_RUN(test_buf_put_u64);
  FT_RUN(test_bytes_dup);
  return FT_DONE();
}
