/* test_input.c - unit tests for core/input.c: the lines `fetchtree fetch`
 * reads (blank lines and comments skipped, white space trimmed, file after
 * file, a file that cannot be read skipped and noted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ft_test.h"
#include "input.h"

/* A file with text in it, in a temporary directory; its path into path. */
static void write_file(char *path, size_t len, const char *dir,
                       const char *name, const char *text) {
  snprintf(path, len, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  FT_CHECK(f != NULL);
  if (!f)
    return;
  fputs(text, f);
  fclose(f);
}

/* The next line as a string ("<eof>" at the end), checking *len. */
static const char *next(ft_input *in) {
  size_t len = 12345;
  char *l = ft_input_next(in, &len);
  if (!l)
    return "<eof>";
  FT_CHECK_EQ_INT(len, strlen(l));
  return l;
}

FT_TEST(test_input_lines) {
  char dir[] = "/tmp/ft-input-XXXXXX";
  FT_CHECK(mkdtemp(dir) != NULL);
  char a[256], b[256], gone[256];
  write_file(a, sizeof(a), dir, "a",
             "http://a/1\n"
             "\n"
             "   \t\n"
             "# a comment\n"
             "   # an indented comment\n"
             "  \thttp://a/2 \t\r\n"
             "{\"url\":\"http://a/3\"}\n"
             "http://a/4"); /* no newline at the end */
  write_file(b, sizeof(b), dir, "b", "\n\nhttp://b/1\r\n#http://b/no\n");
  snprintf(gone, sizeof(gone), "%s/missing", dir);
  char *files[] = {a, gone, b, NULL};
  ft_input in;
  memset(&in, 0, sizeof(in));
  in.files = files;
  FT_CHECK_EQ_STR(next(&in), "http://a/1");
  FT_CHECK_EQ_STR(next(&in), "http://a/2");
  FT_CHECK_EQ_STR(next(&in), "{\"url\":\"http://a/3\"}");
  FT_CHECK_EQ_STR(next(&in), "http://a/4");
  FT_CHECK_EQ_INT(in.failed, 0);
  /* the missing file is said on stderr and skipped; b follows */
  FT_CHECK_EQ_STR(next(&in), "http://b/1");
  FT_CHECK_EQ_INT(in.failed, 1);
  FT_CHECK_EQ_INT(in.eof, 0);
  FT_CHECK_EQ_STR(next(&in), "<eof>");
  FT_CHECK_EQ_INT(in.eof, 1);
  FT_CHECK_EQ_STR(next(&in), "<eof>"); /* and stays there */
  ft_input_close(&in);
  FT_CHECK(in.line == NULL && in.f == NULL);
  ft_input_close(&in); /* twice: a no-op */
  unlink(a);
  unlink(b);
  rmdir(dir);
}

/* Closing in the middle of a file closes it (ASan's leak check sees a FILE
 * left open), and a list of no files is at its end at once. */
FT_TEST(test_input_close_early) {
  char dir[] = "/tmp/ft-input-XXXXXX";
  FT_CHECK(mkdtemp(dir) != NULL);
  char a[256];
  write_file(a, sizeof(a), dir, "a", "one\ntwo\n");
  char *files[] = {a, NULL};
  ft_input in;
  memset(&in, 0, sizeof(in));
  in.files = files;
  FT_CHECK_EQ_STR(next(&in), "one");
  FT_CHECK(in.f != NULL);
  ft_input_close(&in);
  FT_CHECK(in.f == NULL);

  char *none[] = {NULL};
  memset(&in, 0, sizeof(in));
  in.files = none;
  FT_CHECK_EQ_STR(next(&in), "<eof>");
  FT_CHECK_EQ_INT(in.eof, 1);
  FT_CHECK_EQ_INT(in.failed, 0);
  ft_input_close(&in);
  unlink(a);
  rmdir(dir);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  FT_RUN(test_input_lines);
  FT_RUN(test_input_close_early);
  return FT_DONE();
}
