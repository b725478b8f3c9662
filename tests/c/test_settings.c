/* test_settings.c - unit tests for core/settings.c: the table's shape, text
 * parsing, ranges, NaN and infinities, messages, nearest names, --help. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ft_test.h"
#include "settings.h"

static const ft_setting *S(const char *name) {
  const ft_setting *s = ft_settings_find(name, ~0u);
  if (!s) {
    fprintf(stderr, "  no setting %s\n", name);
    abort();
  }
  return s;
}

/* parse text for name: the return code, the reason in why */
static int parse(const char *name, const char *text, ft_setting_value *v,
                 char *why) {
  return ft_setting_parse(S(name), text, v, why, 512);
}

FT_TEST(table_rows_are_in_id_order_and_names_unique) {
  FT_CHECK_EQ_INT(ft_settings_count, FT_S_COUNT);
  for (size_t i = 0; i < ft_settings_count; i++) {
    FT_CHECK_EQ_INT(ft_settings[i].id, i);
    FT_CHECK(ft_settings[i].places != 0);
    for (size_t j = i + 1; j < ft_settings_count; j++) {
      FT_CHECK(strcmp(ft_settings[i].name, ft_settings[j].name) != 0);
      if (ft_settings[i].option && ft_settings[j].option)
        FT_CHECK(strcmp(ft_settings[i].option, ft_settings[j].option) != 0);
      if (ft_settings[i].short_opt)
        FT_CHECK(ft_settings[i].short_opt != ft_settings[j].short_opt);
    }
    /* a command-line option has one, and only CLI places have them */
    FT_CHECK(!(ft_settings[i].places & FT_PLACE_CLI) == !ft_settings[i].option);
    const ft_setting *s = &ft_settings[i];
    if (s->type == FT_SETTING_INT || s->type == FT_SETTING_NUMBER ||
        s->type == FT_SETTING_SIZE)
      FT_CHECK(s->min < s->max);
  }
}

FT_TEST(whole_numbers_refuse_fractions_and_the_range) {
  ft_setting_value v;
  char why[512];
  FT_CHECK_EQ_INT(parse("concurrency", "8", &v, why), 0);
  FT_CHECK(v.num == 8);
  FT_CHECK_EQ_INT(parse("concurrency", "1e5", &v, why), 0);
  FT_CHECK_EQ_INT(parse("concurrency", "2.7", &v, why), FT_ERANGE);
  FT_CHECK_EQ_STR(why, "must be a whole number from 1 to 100000, got 2.7");
  FT_CHECK_EQ_INT(parse("concurrency", "1e6", &v, why), FT_ERANGE);
  FT_CHECK_EQ_STR(why,
                  "must be a whole number from 1 to 100000, got 1000000");
  FT_CHECK_EQ_INT(parse("concurrency", "0", &v, why), FT_ERANGE);
  FT_CHECK_EQ_INT(parse("retries", "0", &v, why), 0);
  FT_CHECK_EQ_INT(parse("retries", "-1", &v, why), FT_ERANGE);
  FT_CHECK_EQ_STR(why, "must be a whole number from 0 to 1000, got -1");
  FT_CHECK_EQ_INT(parse("max_redirects", "-4", &v, why), FT_ERANGE);
  FT_CHECK_EQ_INT(parse("concurrency", "zero", &v, why), FT_EINVAL);
  FT_CHECK_EQ_STR(why,
                  "must be a whole number from 1 to 100000, got 'zero'");
  FT_CHECK_EQ_INT(parse("concurrency", "", &v, why), FT_EINVAL);
  FT_CHECK_EQ_INT(parse("concurrency", "8x", &v, why), FT_EINVAL);
}

FT_TEST(numbers_refuse_nan_infinities_and_the_range) {
  ft_setting_value v;
  char why[512];
  FT_CHECK_EQ_INT(parse("rps", "0.5", &v, why), 0);
  FT_CHECK(v.num == 0.5);
  /* rps > 0: no limit is the setting left out */
  FT_CHECK_EQ_INT(parse("rps", "0", &v, why), FT_ERANGE);
  FT_CHECK_EQ_STR(why, "must be a number of requests per window above 0, "
                       "at most 1000000000, got 0");
  FT_CHECK_EQ_INT(parse("rps", "nan", &v, why), FT_ERANGE);
  FT_CHECK(strstr(why, "got nan") != NULL);
  FT_CHECK_EQ_INT(parse("rps", "inf", &v, why), FT_ERANGE);
  FT_CHECK(strstr(why, "got inf") != NULL);
  FT_CHECK_EQ_INT(parse("timeout", "-inf", &v, why), FT_ERANGE);
  FT_CHECK(strstr(why, "got -inf") != NULL);
  FT_CHECK_EQ_INT(parse("timeout", "1e999", &v, why), FT_ERANGE);
  FT_CHECK_EQ_INT(parse("backoff_base", "-1", &v, why), FT_ERANGE);
  FT_CHECK_EQ_STR(why, "must be a number of milliseconds from 0 to 3600000, "
                       "got -1");
  FT_CHECK_EQ_INT(parse("timeout", "0.001", &v, why), 0);
  FT_CHECK_EQ_INT(parse("timeout", "0", &v, why), FT_ERANGE);
  /* the numbers are checked as numbers, the same from text or from Lua */
  FT_CHECK_EQ_INT(ft_setting_check_number(S("rps"), NAN, why, 512),
                  FT_ERANGE);
  FT_CHECK_EQ_INT(ft_setting_check_number(S("concurrency"), 2.7, why, 512),
                  FT_ERANGE);
  FT_CHECK_EQ_STR(why, "must be a whole number from 1 to 100000, got 2.7");
}

FT_TEST(sizes_take_suffixes_and_whole_bytes) {
  ft_setting_value v;
  char why[512];
  FT_CHECK_EQ_INT(parse("max_body", "65536", &v, why), 0);
  FT_CHECK_EQ_INT(v.size, 65536);
  FT_CHECK_EQ_INT(parse("max_body", "512K", &v, why), 0);
  FT_CHECK_EQ_INT(v.size, 512 * 1024);
  FT_CHECK_EQ_INT(parse("max_body", "64m", &v, why), 0);
  FT_CHECK_EQ_INT(v.size, 64 * 1024 * 1024);
  FT_CHECK_EQ_INT(parse("max_body", "1.5K", &v, why), 0);
  FT_CHECK_EQ_INT(v.size, 1536);
  FT_CHECK_EQ_INT(parse("max_body", "1.5", &v, why), FT_ERANGE);
  FT_CHECK_EQ_INT(parse("max_body", "-1", &v, why), FT_ERANGE);
  FT_CHECK_EQ_INT(parse("max_body", "5X", &v, why), FT_EINVAL);
  FT_CHECK(strstr(why, "got '5X'") != NULL);
  FT_CHECK_EQ_INT(parse("max_body", "K", &v, why), FT_EINVAL);
}

FT_TEST(statuses_and_names) {
  ft_setting_value v;
  char why[512];
  FT_CHECK_EQ_INT(parse("retry_on", "429, 503", &v, why), 0);
  FT_CHECK(v.statuses[429] && v.statuses[503] && !v.statuses[500]);
  FT_CHECK_EQ_INT(parse("retry_on", "429,99", &v, why), FT_EINVAL);
  FT_CHECK_EQ_STR(why, "must be a list of HTTP statuses 100..599, such as "
                       "429,503, got '429,99'");
  FT_CHECK_EQ_INT(parse("retry_on", "", &v, why), FT_EINVAL);
  FT_CHECK_EQ_INT(parse("sensitive_headers", "X-Api-Key", &v, why), 0);
  FT_CHECK_EQ_INT(parse("sensitive_headers", "X-A,X-B", &v, why), 0);
  FT_CHECK_EQ_INT(parse("sensitive_headers", "a b", &v, why), FT_EINVAL);
  FT_CHECK_EQ_INT(parse("sensitive_headers", "a,", &v, why), FT_EINVAL);
  FT_CHECK_EQ_INT(parse("cacert", "/no/such/file.pem", &v, why), FT_EINVAL);
}

FT_TEST(apply_sets_the_config) {
  ft_config cfg;
  ft_config_default(&cfg);
  ft_setting_value v;
  char why[512];
  FT_CHECK_EQ_INT(parse("timeout", "2.5", &v, why), 0);
  ft_setting_apply(S("timeout"), &v, &cfg);
  FT_CHECK_EQ_INT(cfg.timeout_ms, 2500);
  FT_CHECK_EQ_INT(parse("backoff_base", "1.5", &v, why), 0);
  ft_setting_apply(S("backoff_base"), &v, &cfg);
  FT_CHECK_EQ_INT(cfg.retry.base_ns, 1500000);
  FT_CHECK_EQ_INT(parse("max_retry_after", "2", &v, why), 0);
  ft_setting_apply(S("max_retry_after"), &v, &cfg);
  FT_CHECK_EQ_INT(cfg.retry.max_retry_after_ns, 2000000000);
  FT_CHECK_EQ_INT(parse("retry_on", "503", &v, why), 0);
  ft_setting_apply(S("retry_on"), &v, &cfg);
  FT_CHECK(cfg.retry.retry_status[503] && !cfg.retry.retry_status[429]);
  FT_CHECK_EQ_INT(parse("max_body", "1K", &v, why), 0);
  ft_setting_apply(S("max_body"), &v, &cfg);
  FT_CHECK_EQ_INT(cfg.max_body, 1024);
  FT_CHECK_EQ_INT(parse("concurrency", "3", &v, why), 0);
  ft_setting_apply(S("concurrency"), &v, &cfg);
  FT_CHECK_EQ_INT(cfg.concurrency, 3);
}

FT_TEST(nearest_names) {
  FT_CHECK_EQ_INT(ft_settings_distance("on_respnose", "on_response"), 1);
  FT_CHECK_EQ_INT(ft_settings_distance("rsp", "rps"), 1);
  FT_CHECK_EQ_INT(ft_settings_distance("", "abc"), 3);
  FT_CHECK_EQ_INT(ft_settings_distance("kitten", "sitting"), 3);
  FT_CHECK_EQ_STR(ft_settings_nearest("on_respnose", FT_PLACE_SPEC, 0),
                  "on_response");
  FT_CHECK_EQ_STR(ft_settings_nearest("concurency", FT_PLACE_ENGINE, 0),
                  "concurrency");
  FT_CHECK_EQ_STR(ft_settings_nearest("timout", FT_PLACE_REQUEST, 0),
                  "timeout");
  FT_CHECK_EQ_STR(ft_settings_nearest("concurency", FT_PLACE_CLI, 1),
                  "concurrency");
  FT_CHECK_EQ_STR(ft_settings_nearest("max-retry-afer", FT_PLACE_CLI, 1),
                  "max-retry-after");
  /* only names the place accepts: on_response is not engine.new's */
  FT_CHECK(ft_settings_nearest("on_respnose", FT_PLACE_ENGINE, 0) == NULL);
  /* nothing near */
  FT_CHECK(ft_settings_nearest("xyzzy", FT_PLACE_SPEC, 0) == NULL);
  FT_CHECK(ft_settings_nearest("q", FT_PLACE_SPEC, 0) == NULL);
}

FT_TEST(find_by_place_and_option) {
  FT_CHECK(ft_settings_find("start", FT_PLACE_SPEC) != NULL);
  FT_CHECK(ft_settings_find("start", FT_PLACE_ENGINE) == NULL);
  FT_CHECK(ft_settings_find("rps", FT_PLACE_OBJECT) != NULL);
  FT_CHECK(ft_settings_find("timeout", FT_PLACE_OBJECT) == NULL);
  FT_CHECK(ft_settings_find_option("max-redirects") == S("max_redirects"));
  FT_CHECK(ft_settings_find_option("sensitive-header") ==
           S("sensitive_headers"));
  FT_CHECK(ft_settings_find_option("max_redirects") == NULL);
}

/* --help lists every command-line option of the place, aligned. */
FT_TEST(usage_lists_every_option) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ft_settings_usage(f, FT_PLACE_FETCH, 0);
  fclose(f);
  for (size_t i = 0; i < ft_settings_count; i++) {
    const ft_setting *s = &ft_settings[i];
    if (!s->option || !s->section || !(s->places & FT_PLACE_FETCH))
      continue;
    char want[80];
    snprintf(want, sizeof(want), "--%s", s->option);
    FT_CHECK(strstr(buf, want) != NULL);
  }
  FT_CHECK(strstr(buf, "--state") == NULL); /* run's own */
  FT_CHECK(strstr(buf, "  -c, --concurrency N     requests in flight") != NULL);
  FT_CHECK(strstr(buf, "      --sensitive-header NAME\n                     "
                       "     a header") != NULL);
  free(buf);
}

int main(void) {
  FT_RUN(table_rows_are_in_id_order_and_names_unique);
  FT_RUN(whole_numbers_refuse_fractions_and_the_range);
  FT_RUN(numbers_refuse_nan_infinities_and_the_range);
  FT_RUN(sizes_take_suffixes_and_whole_bytes);
  FT_RUN(statuses_and_names);
  FT_RUN(apply_sets_the_config);
  FT_RUN(nearest_names);
  FT_RUN(find_by_place_and_option);
  FT_RUN(usage_lists_every_option);
  return FT_DONE();
}
