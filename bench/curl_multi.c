/* curl_multi.c - the benchmark's floor: a bare libcurl multi loop that
 * fetches every URL it reads (stdin, or the file named by argv[1]) with a
 * fixed number of transfers in flight (argv[2], default 64), and nothing
 * else. It is what libcurl itself costs, so fetchtree is measured against it.
 *
 * The loop is the simplest efficient one: curl_multi_perform, then
 * curl_multi_poll, then drain curl_multi_info_read. Easy handles are made
 * once and reused (a finished handle is removed, given the next URL and
 * added again), which also lets libcurl reuse its connections. A write
 * callback counts bytes. On exit it prints one line to stderr:
 * "requests N ok M bytes B" (ok: status 200), and exits 1 if any failed. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t count_bytes(char *data, size_t size, size_t nmemb, void *userp)
{
  (void)data;
  *(unsigned long long *)userp += size * nmemb;
  return size * nmemb;
}

/* Reads the next non-empty line into *line (getline's buffer), without its
 * newline. Returns 0, or -1 at the end of input. */
static int next_url(FILE *in, char **line, size_t *cap)
{
  ssize_t n;
  while ((n = getline(line, cap, in)) >= 0) {
    while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
      (*line)[--n] = '\0';
    if (n > 0)
      return 0;
  }
  return -1;
}

int main(int argc, char **argv)
{
  FILE *in = stdin;
  int conc = argc > 2 ? atoi(argv[2]) : 64;
  if (argc > 1 && strcmp(argv[1], "-") != 0 && !(in = fopen(argv[1], "r"))) {
    perror(argv[1]);
    return 2;
  }
  if (conc < 1)
    conc = 1;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *multi = curl_multi_init();
  CURL **pool = calloc((size_t)conc, sizeof *pool);
  unsigned long long bytes = 0, requests = 0, ok = 0;
  char *line = NULL;
  size_t cap = 0;
  int running = 0, in_flight = 0, eof = 0;

  /* Start up to conc transfers, one easy handle each. */
  for (int i = 0; i < conc && !eof; i++) {
    if (next_url(in, &line, &cap) < 0) {
      eof = 1;
      break;
    }
    pool[i] = curl_easy_init();
    curl_easy_setopt(pool[i], CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(pool[i], CURLOPT_WRITEFUNCTION, count_bytes);
    curl_easy_setopt(pool[i], CURLOPT_WRITEDATA, &bytes);
    curl_easy_setopt(pool[i], CURLOPT_URL, line); /* libcurl copies it */
    curl_multi_add_handle(multi, pool[i]);
    in_flight++;
  }

  while (in_flight > 0) {
    curl_multi_perform(multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      CURL *e = msg->easy_handle;
      long status = 0;
      requests++;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result == CURLE_OK && status == 200)
        ok++;
      curl_multi_remove_handle(multi, e);
      if (!eof && next_url(in, &line, &cap) == 0) {
        curl_easy_setopt(e, CURLOPT_URL, line);
        curl_multi_add_handle(multi, e); /* reused: same options, new URL */
      } else {
        eof = 1;
        in_flight--;
      }
    }
    if (in_flight > 0)
      curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }

  fprintf(stderr, "requests %llu ok %llu bytes %llu\n", requests, ok, bytes);
  for (int i = 0; i < conc; i++)
    if (pool[i])
      curl_easy_cleanup(pool[i]);
  free(pool);
  free(line);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  if (in != stdin)
    fclose(in);
  return ok == requests ? 0 : 1;
}
