/* test_reorder.c - unit tests for core/reorder.c: records out in input
 * order whatever order they finish in, the window's bound, memory. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "reorder.h"

/* Everything whose turn has come, appended to out (each record ends with
 * its own separator). Returns how many went out. */
static int drain(ft_reorder *w, char *out, size_t cap) {
  int n = 0;
  const char *data;
  size_t len;
  while ((data = ft_reorder_peek(w, &len)) != NULL) {
    size_t have = strlen(out);
    FT_CHECK(have + len < cap);
    if (have + len < cap) {
      memcpy(out + have, data, len);
      out[have + len] = '\0';
    }
    ft_reorder_pop(w);
    n++;
  }
  return n;
}

static void put(ft_reorder *w, uint64_t i) {
  char rec[32];
  int len = snprintf(rec, sizeof(rec), "%llu;", (unsigned long long)i);
  FT_CHECK_EQ_INT(ft_reorder_put(w, i, rec, (size_t)len), 0);
}

FT_TEST(test_reorder_order) {
  ft_reorder w;
  char out[256] = "";
  FT_CHECK_EQ_INT(ft_reorder_init(&w, 4), 0);
  FT_CHECK_EQ_INT(drain(&w, out, sizeof(out)), 0); /* nothing yet */
  put(&w, 2);
  put(&w, 1);
  FT_CHECK_EQ_INT(drain(&w, out, sizeof(out)), 0); /* 0 has not come */
  FT_CHECK_EQ_STR(out, "");
  put(&w, 0);
  FT_CHECK_EQ_INT(drain(&w, out, sizeof(out)), 3);
  FT_CHECK_EQ_STR(out, "0;1;2;");
  FT_CHECK_EQ_INT(w.next, 3);
  /* the ring wraps: 3 .. 6 fit, 7 does not until 3 is out */
  FT_CHECK_EQ_INT(ft_reorder_full(&w, 6), 0);
  FT_CHECK_EQ_INT(ft_reorder_full(&w, 7), 1);
  put(&w, 6);
  put(&w, 4);
  put(&w, 5);
  FT_CHECK_EQ_INT(drain(&w, out, sizeof(out)), 0);
  put(&w, 3);
  FT_CHECK_EQ_INT(ft_reorder_full(&w, 7), 1); /* held is not out */
  FT_CHECK_EQ_INT(drain(&w, out, sizeof(out)), 4);
  FT_CHECK_EQ_STR(out, "0;1;2;3;4;5;6;");
  FT_CHECK_EQ_INT(ft_reorder_full(&w, 10), 0);
  FT_CHECK_EQ_INT(ft_reorder_full(&w, 11), 1);
  ft_reorder_free(&w);
}

/* Records still held when the window goes are freed (ASan's leak check),
 * and an empty record (len 0) still counts as finished. */
FT_TEST(test_reorder_free_held) {
  ft_reorder w;
  char out[64] = "";
  FT_CHECK_EQ_INT(ft_reorder_init(&w, 8), 0);
  put(&w, 1);
  put(&w, 5);
  FT_CHECK_EQ_INT(ft_reorder_put(&w, 0, "", 0), 0);
  FT_CHECK_EQ_INT(drain(&w, out, sizeof(out)), 2);
  FT_CHECK_EQ_STR(out, "1;");
  ft_reorder_free(&w);
  FT_CHECK(w.slots == NULL);
  ft_reorder_free(&w); /* twice: a no-op */
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_reorder_order);
  FT_RUN(test_reorder_free_held);
  return FT_DONE();
}
