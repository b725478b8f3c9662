/* test_strlist.c - unit tests for core/strlist.c: pushing copies (NUL bytes
 * included), growing, truncating, freeing. */
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "strlist.h"

/* A string literal and its length, NUL bytes included. */
#define L(s) s, sizeof(s) - 1

/* ---- ft_strlist ----------------------------------------------------------- */

FT_TEST(test_strlist) {
  ft_strlist l = {0};
  FT_CHECK_EQ_INT(ft_strlist_push(&l, "abc", 2), 0);
  FT_CHECK_EQ_INT(ft_strlist_push(&l, NULL, 0), 0);
  FT_CHECK_EQ_INT(ft_strlist_push(&l, L("x\0y")), 0);
  FT_CHECK_EQ_INT(ft_strlist_push(&l, NULL, 1), FT_EINVAL);
  FT_CHECK_EQ_INT(ft_strlist_push(NULL, "a", 1), FT_EINVAL);
  FT_CHECK_EQ_INT(l.n, 3);
  FT_CHECK(strcmp(l.items[0], "ab") == 0);
  FT_CHECK(strcmp(l.items[1], "") == 0);
  FT_CHECK(memcmp(l.items[2], "x\0y\0", 4) == 0);
  for (int i = 0; i < 1000; i++)
    FT_CHECK_EQ_INT(ft_strlist_push(&l, "z", 1), 0);
  FT_CHECK_EQ_INT(l.n, 1003);
  ft_strlist_truncate(&l, 1004); /* longer than the list: nothing */
  FT_CHECK_EQ_INT(l.n, 1003);
  ft_strlist_truncate(&l, 2);
  FT_CHECK_EQ_INT(l.n, 2);
  FT_CHECK(strcmp(l.items[1], "") == 0);
  FT_CHECK_EQ_INT(ft_strlist_push(&l, "w", 1), 0);
  FT_CHECK(l.n == 3 && strcmp(l.items[2], "w") == 0);
  ft_strlist_free(&l);
  FT_CHECK(l.items == NULL && l.n == 0 && l.cap == 0);
  ft_strlist_free(&l);
  ft_strlist_free(NULL);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_strlist);
  return FT_DONE();
}
