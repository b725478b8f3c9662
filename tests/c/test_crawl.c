/* test_crawl.c - unit tests for core/crawl.c: an ft_crawl driven through its API alone (a list crawl, no Lua).
 *
 * The requests go to a small HTTP responder on the test's own loop (the
 * one in test_engine.c: "200 ok" for every request head), which the crawl
 * runs on (ft_crawl_settings.loop). Records go to a temporary file, read
 * back and counted. Built with ASan like the other C tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "crawl.h"
#include "error.h"
#include "ft_responder.h"
#include "ft_test.h"

/* ---- the crawl's side ------------------------------------------------------ */

#define N_REQ 300

typedef struct fixture {
  uv_loop_t loop;
  server srv;
  char input[64];   /* the input file: N_REQ lines */
  FILE *out;        /* records */
  int checks;       /* calls of the interrupted callback */
  int stop_at;      /* answer "interrupted" at this call (0: never) */
  int progress;     /* calls of the progress callback */
} fixture;

/* The responder, and an input of n lines: URLs to it, a comment, a blank
 * line, and (with bad) one line that is not an http URL. */
static int fixture_start(fixture *f, int n, int bad) {
  memset(f, 0, sizeof(*f));
  if (uv_loop_init(&f->loop) != 0 || server_start(&f->srv, &f->loop) != 0)
    return -1;
  snprintf(f->input, sizeof(f->input), "/tmp/ft-test-crawl-XXXXXX");
  int fd = mkstemp(f->input);
  if (fd < 0)
    return -1;
  FILE *in = fdopen(fd, "w");
  fprintf(in, "# a comment\n\n");
  for (int i = 0; i < n; i++) {
    if (bad && i == n / 2)
      fprintf(in, "ftp://127.0.0.1/%d\n", i);
    else
      fprintf(in, "http://127.0.0.1:%d/%d\n", f->srv.port, i);
  }
  fclose(in);
  f->out = tmpfile();
  return f->out ? 0 : -1;
}

static int fixture_finish(fixture *f) {
  unlink(f->input);
  fclose(f->out);
  return loop_finish(&f->srv, &f->loop);
}

static void settings_for(fixture *f, ft_crawl_settings *set) {
  memset(set, 0, sizeof(*set));
  ft_config_default(&set->cfg);
  set->cfg.concurrency = 8;
  set->name = "test";
  set->loop = &f->loop;
  set->out = f->out;
  set->quiet = 1;
}

/* The records in f->out: how many lines, and whether their "index" fields
 * come in order 0, 1, 2... (*ordered); errors counts lines with an error. */
static int count_records(fixture *f, int *ordered, int *errors) {
  char line[4096];
  int n = 0;
  *ordered = 1;
  *errors = 0;
  rewind(f->out);
  while (fgets(line, sizeof(line), f->out)) {
    const char *ix = strstr(line, "\"index\":");
    if (!ix || atoi(ix + 8) != n)
      *ordered = 0;
    if (!strstr(line, "\"error\":null"))
      (*errors)++;
    n++;
  }
  return n;
}

static int interrupted_at(void *ud) {
  fixture *f = ud;
  f->checks++;
  return f->stop_at && f->checks >= f->stop_at;
}

static void count_progress(void *ud, ft_crawl *c) {
  fixture *f = ud;
  (void)c;
  f->progress++;
}

/* A progress callback that stops the run at its first call. */
static void stop_at_progress(void *ud, ft_crawl *c) {
  fixture *f = ud;
  if (f->progress++ == 0)
    ft_crawl_stop(c, 0);
}

/* A list crawl writes one record per line, a bad line's too, and its
 * stats add up. */
FT_TEST(test_list_records) {
  fixture f;
  FT_CHECK(fixture_start(&f, N_REQ, 1) == 0);
  char *files[] = {f.input, NULL};
  ft_crawl_spec spec = {.kind = FT_CRAWL_LIST, .files = files};
  ft_crawl_settings set;
  settings_for(&f, &set);
  ft_crawl *c = NULL;
  char err[256];
  FT_CHECK_EQ_INT(ft_crawl_new(&c, &spec, &set, err, sizeof(err)), 0);
  FT_CHECK(ft_crawl_tree(c) == NULL); /* no engine before run */
  FT_CHECK_EQ_INT(ft_crawl_run(c), 0);
  ft_crawl_stats st;
  ft_crawl_get_stats(c, &st);
  FT_CHECK(st.ran);
  FT_CHECK(st.source_done);
  FT_CHECK(!st.interrupted && !st.failed && st.write_errno == 0);
  FT_CHECK_EQ_INT((int)st.stats.requests, N_REQ);
  FT_CHECK_EQ_INT((int)st.stats.ok, N_REQ - 1);
  FT_CHECK_EQ_INT((int)st.records, N_REQ);
  FT_CHECK_EQ_INT((int)st.taken, N_REQ);
  FT_CHECK(st.elapsed_s > 0);
  FT_CHECK(ft_crawl_tree(c) != NULL);
  FT_CHECK_EQ_INT(ft_crawl_run(c), FT_EINVAL); /* once per crawl */
  ft_crawl_free(c);
  int ordered, errors;
  FT_CHECK_EQ_INT(count_records(&f, &ordered, &errors), N_REQ);
  FT_CHECK_EQ_INT(errors, 1);
  FT_CHECK_EQ_INT(fixture_finish(&f), 0);
}

/* With ordered, records come in input order whatever the completion
 * order; the progress callback runs while the run does. */
FT_TEST(test_list_ordered) {
  fixture f;
  FT_CHECK(fixture_start(&f, N_REQ, 0) == 0);
  char *files[] = {f.input, NULL};
  ft_crawl_spec spec = {.kind = FT_CRAWL_LIST, .files = files};
  ft_crawl_settings set;
  settings_for(&f, &set);
  set.ordered = 1;
  set.progress = count_progress;
  set.progress_ud = &f;
  set.progress_ms = 1;
  ft_crawl *c = NULL;
  char err[256];
  FT_CHECK_EQ_INT(ft_crawl_new(&c, &spec, &set, err, sizeof(err)), 0);
  FT_CHECK_EQ_INT(ft_crawl_run(c), 0);
  ft_crawl_free(c);
  int ordered, errors;
  FT_CHECK_EQ_INT(count_records(&f, &ordered, &errors), N_REQ);
  FT_CHECK(ordered);
  FT_CHECK_EQ_INT(errors, 0);
  FT_CHECK_EQ_INT(fixture_finish(&f), 0);
}

/* The host's interrupt (settings.interrupted, asked at every turn of the
 * loop) stops the run: no more lines are read, what is in flight comes
 * back cancelled (a list writes its record, as fetch does), and the run
 * says it was interrupted. */
FT_TEST(test_interrupted) {
  fixture f;
  FT_CHECK(fixture_start(&f, N_REQ, 0) == 0);
  char *files[] = {f.input, NULL};
  ft_crawl_spec spec = {.kind = FT_CRAWL_LIST, .files = files};
  ft_crawl_settings set;
  settings_for(&f, &set);
  f.stop_at = 3;
  set.interrupted = interrupted_at;
  set.interrupted_ud = &f;
  ft_crawl *c = NULL;
  char err[256];
  FT_CHECK_EQ_INT(ft_crawl_new(&c, &spec, &set, err, sizeof(err)), 0);
  int rc = ft_crawl_run(c);
  FT_CHECK(rc < 0);
  ft_crawl_stats st;
  ft_crawl_get_stats(c, &st);
  FT_CHECK(st.interrupted);
  FT_CHECK(f.checks >= 3);
  FT_CHECK(st.stats.requests < N_REQ);
  FT_CHECK(!st.source_done);
  ft_crawl_free(c);
  int ordered, errors;
  int n = count_records(&f, &ordered, &errors);
  FT_CHECK_EQ_INT(n, (int)st.stats.requests);
  FT_CHECK_EQ_INT(errors, (int)st.stats.by_error[FT_ERR_CANCELLED]);
  FT_CHECK(st.stats.by_error[FT_ERR_CANCELLED] > 0);
  FT_CHECK_EQ_INT(fixture_finish(&f), 0);
}

/* ft_crawl_stop(c, 0) from a callback of the run: it ends early, not as
 * interrupted, and says it was stopped. */
FT_TEST(test_stop) {
  fixture f;
  FT_CHECK(fixture_start(&f, 5000, 0) == 0);
  char *files[] = {f.input, NULL};
  ft_crawl_spec spec = {.kind = FT_CRAWL_LIST, .files = files};
  ft_crawl_settings set;
  settings_for(&f, &set);
  set.cfg.concurrency = 2;
  set.progress = stop_at_progress;
  set.progress_ud = &f;
  set.progress_ms = 1;
  ft_crawl *c = NULL;
  char err[256];
  FT_CHECK_EQ_INT(ft_crawl_new(&c, &spec, &set, err, sizeof(err)), 0);
  FT_CHECK_EQ_INT(ft_crawl_run(c), 0);
  ft_crawl_stats st;
  ft_crawl_get_stats(c, &st);
  FT_CHECK(st.stopped);
  FT_CHECK(!st.interrupted);
  FT_CHECK(f.progress >= 1);
  FT_CHECK(st.stats.requests < 5000);
  FT_CHECK(!st.source_done);
  ft_crawl_free(c);
  FT_CHECK_EQ_INT(fixture_finish(&f), 0);
}

/* An output that cannot be opened: FT_EINVAL (a usage error), nothing
 * ran; ft_crawl_stop outside a run does nothing. */
FT_TEST(test_bad_output) {
  fixture f;
  FT_CHECK(fixture_start(&f, 3, 0) == 0);
  char *files[] = {f.input, NULL};
  ft_crawl_spec spec = {.kind = FT_CRAWL_LIST, .files = files};
  ft_crawl_settings set;
  settings_for(&f, &set);
  set.out_path = "/nonexistent-dir/out.jsonl";
  ft_crawl *c = NULL;
  char err[256];
  FT_CHECK_EQ_INT(ft_crawl_new(&c, &spec, &set, err, sizeof(err)), 0);
  ft_crawl_stop(c, 1);
  FT_CHECK_EQ_INT(ft_crawl_run(c), FT_EINVAL);
  ft_crawl_stats st;
  ft_crawl_get_stats(c, &st);
  FT_CHECK(!st.ran);
  FT_CHECK(!st.interrupted);
  FT_CHECK_EQ_INT((int)st.stats.requests, 0);
  ft_crawl_free(c);
  FT_CHECK_EQ_INT(fixture_finish(&f), 0);
}

/* A crawl script that does not load: ft_crawl_new says where. */
FT_TEST(test_script_load_error) {
  char path[] = "/tmp/ft-test-crawl-XXXXXX";
  int fd = mkstemp(path);
  FT_CHECK(fd >= 0);
  FILE *s = fdopen(fd, "w");
  fputs("return { start = 5 }\n", s);
  fclose(s);
  ft_crawl_spec spec = {.kind = FT_CRAWL_SCRIPT, .path = path};
  ft_crawl_settings set;
  memset(&set, 0, sizeof(set));
  ft_config_default(&set.cfg);
  ft_crawl *c = (ft_crawl *)&set; /* set to NULL on failure */
  char err[512] = "";
  FT_CHECK(ft_crawl_new(&c, &spec, &set, err, sizeof(err)) < 0);
  FT_CHECK(c == NULL);
  FT_CHECK(strstr(err, path) != NULL);
  unlink(path);
}

int main(void) {
  FT_RUN(test_list_records);
  FT_RUN(test_list_ordered);
  FT_RUN(test_interrupted);
  FT_RUN(test_stop);
  FT_RUN(test_bad_output);
  FT_RUN(test_script_load_error);
  return FT_DONE();
}
