/* ft_test.h - a tiny unit-test harness for fetchtree's C tests.
 *
 * Each test program includes this header, defines test functions with
 * FT_TEST(name), lists them in main() with FT_RUN(name), and returns
 * FT_DONE(). Each failed FT_CHECK prints file:line and the expression.
 * The program prints one line per test ("ok - name" / "not ok - name")
 * and a final line "c: N passed, M failed" that `make test` sums. */
#ifndef FT_TEST_H
#define FT_TEST_H

#include <stdio.h>
#include <string.h>

static int ft_test_passed_;
static int ft_test_failed_;
static int ft_test_cur_failed_;

#define FT_TEST(name) static void name(void)

#define FT_CHECK(expr)                                                        \
  do {                                                                        \
    if (!(expr)) {                                                            \
      fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__,     \
              #expr);                                                         \
      ft_test_cur_failed_ = 1;                                                \
    }                                                                         \
  } while (0)

#define FT_CHECK_EQ_INT(a, b)                                                 \
  do {                                                                        \
    long long a_ = (long long)(a), b_ = (long long)(b);                       \
    if (a_ != b_) {                                                           \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,   \
              __LINE__, #a, #b, a_, b_);                                      \
      ft_test_cur_failed_ = 1;                                                \
    }                                                                         \
  } while (0)

#define FT_CHECK_EQ_STR(a, b)                                                 \
  do {                                                                        \
    const char *a_ = (a), *b_ = (b);                                          \
    if (strcmp(a_, b_) != 0) {                                                \
      fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n",          \
              __FILE__, __LINE__, #a, #b, a_, b_);                            \
      ft_test_cur_failed_ = 1;                                                \
    }                                                                         \
  } while (0)

#define FT_RUN(name)                                                          \
  do {                                                                        \
    ft_test_cur_failed_ = 0;                                                  \
    name();                                                                   \
    if (ft_test_cur_failed_) {                                                \
      ft_test_failed_++;                                                      \
      printf("not ok - %s\n", #name);                                         \
    } else {                                                                  \
      ft_test_passed_++;                                                      \
      printf("ok - %s\n", #name);                                             \
    }                                                                         \
  } while (0)

#define FT_DONE()                                                             \
  (printf("c: %d passed, %d failed\n", ft_test_passed_, ft_test_failed_),     \
   ft_test_failed_ ? 1 : 0)

/* A string literal and its length, NUL bytes included. */
#define FT_L(s) s, sizeof(s) - 1

/* The number of rows of a table (an array). */
#define FT_N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Prints a byte string with non-printable bytes as \xNN, after label. */
static inline void ft_test_dump(const char *label, const char *s, size_t n) {
  fprintf(stderr, "    %s: ", label);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7F)
      fputc(c, stderr);
    else
      fprintf(stderr, "\\x%02x", c);
  }
  fputc('\n', stderr);
}

/* Do the n bytes at got equal the want_len bytes of want? On a mismatch
 * prints both, with the row name, and returns 0. */
static inline int ft_test_bytes_are(const char *got, size_t n,
                                    const char *want, size_t want_len,
                                    const char *row) {
  if (n == want_len && (want_len == 0 || memcmp(got, want, want_len) == 0))
    return 1;
  fprintf(stderr, "  row \"%s\":\n", row);
  ft_test_dump("want", want, want_len);
  ft_test_dump("got ", got ? got : "", n);
  return 0;
}

#endif
