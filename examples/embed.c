/* embed.c - fetchtree's C API in one page: fetch the URLs on the command line and print one line per request.
 *
 * Build it against an installed fetchtree, with the shared library or (the
 * second way) the static one, and run it:
 *
 *   cc -o embed examples/embed.c $(pkg-config --cflags --libs fetchtree)
 *   cc -o embed examples/embed.c $(pkg-config --cflags fetchtree) \
 *     $(pkg-config --static --libs fetchtree | sed 's/-lfetchtree/-l:libfetchtree.a/')
 *   ./embed [-l] [-r RETRIES] URL...
 *
 * For each URL, in the order they finish, it prints
 *
 *   INDEX STATUS BYTES ERROR
 *
 * (INDEX is the URL's position on the command line from 0, STATUS 0 when no
 * response arrived, BYTES the body's size, ERROR the error kind: "none",
 * "connect", "retries_exhausted"...), and the error message on stderr. It
 * exits 0 when every request finished, answered (any HTTP status) or failed
 * for good; 1 when some were cancelled (the deadline, below) or something
 * else went wrong; 2 on a usage error.
 *
 * By default the engine runs on a loop of its own. With -l it runs on a
 * libuv loop this program owns, which also serves a timer of ours: a
 * deadline that stops the engine after 10 seconds. That is how an
 * application with its own event loop embeds fetchtree. */
#include <fetchtree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEADLINE_MS 10000

/* What the callbacks share: handed to the engine as its user data. */
typedef struct app {
  ft_engine *engine;
  int submitted;
  int completed; /* came back finished, not cancelled */
} app;

/* The completion callback: once per request, whatever happened to it. We
 * own req from here on; res is only valid during the call. */
static void on_done(void *ud, ft_request *req, const ft_response *res) {
  app *a = ud;
  printf("%llu %ld %zu %s\n", (unsigned long long)req->index, res->status,
         res->body_len, ft_errkind_name(res->error));
  if (res->error != FT_ERR_NONE)
    fprintf(stderr, "embed: %s: %s\n", req->url, res->message);
  if (res->error != FT_ERR_CANCELLED)
    a->completed++;
  ft_request_free(req);
}

/* The deadline on the caller's loop (-l): cancels what is still going;
 * those requests come back through on_done as "cancelled". */
static void on_deadline(uv_timer_t *t) {
  app *a = t->data;
  fprintf(stderr, "embed: deadline passed, stopping\n");
  ft_engine_stop(a->engine);
}

static int usage(void) {
  fprintf(stderr, "usage: embed [-l] [-r RETRIES] URL...\n"
                  "  -l          run on a libuv loop of the caller's\n"
                  "  -r RETRIES  retries after the first attempt (5)\n");
  return 2;
}

int main(int argc, char **argv) {
  int own_loop = 1;
  int retries = -1; /* the default policy's */
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "-l") == 0) {
      own_loop = 0;
    } else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
      retries = atoi(argv[++i]);
    } else {
      return usage();
    }
  }
  if (i == argc)
    return usage();

  /* 1. Configure: start from the defaults, change what you need. */
  ft_config cfg;
  ft_config_default(&cfg);
  cfg.concurrency = 8;
  cfg.timeout_ms = 5000;
  if (retries >= 0)
    cfg.retry.max_retries = retries;

  /* 2. Create the engine, on its own loop (NULL) or on ours. */
  uv_loop_t loop;
  uv_timer_t deadline;
  if (!own_loop && uv_loop_init(&loop) != 0) {
    fprintf(stderr, "embed: cannot create a loop\n");
    return 1;
  }
  app a = {0};
  int rc = ft_engine_new(&a.engine, own_loop ? NULL : &loop, &cfg);
  if (rc != 0) {
    fprintf(stderr, "embed: %s\n", ft_strerror(rc));
    return 1;
  }
  ft_engine_set_done(a.engine, on_done, &a);
  if (!own_loop) {
    uv_timer_init(&loop, &deadline);
    deadline.data = &a;
    uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0);
  }

  /* 3. Submit one request per URL. The engine owns each from here until
   * on_done hands it back (which can happen at once, for a URL that is not
   * http or https). */
  int oom = 0; /* a URL not submitted: exit 1 */
  for (int k = 0; i < argc; i++, k++) {
    ft_request *r = ft_request_new();
    if (!r || ft_request_set(r, argv[i], NULL, NULL, 0) != 0 ||
        ft_request_add_header(r, "Accept: application/json, */*") != 0) {
      fprintf(stderr, "embed: out of memory\n");
      ft_request_free(r);
      oom = 1;
      break;
    }
    r->index = (uint64_t)k;
    a.submitted++;
    ft_engine_submit(a.engine, r);
  }

  /* 4. Run until every request is back (or the deadline stops the engine). */
  rc = ft_engine_run(a.engine);
  if (rc != 0)
    fprintf(stderr, "embed: %s\n", ft_strerror(rc));

  /* 5. Tear down: the engine first (it closes its handles on our loop),
   * then what else is on our loop, then the loop itself. */
  ft_engine_free(a.engine);
  if (!own_loop) {
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
      fprintf(stderr, "embed: handles left open on the loop\n");
      return 1;
    }
  }
  return rc == 0 && !oom && a.completed == a.submitted ? 0 : 1;
}
