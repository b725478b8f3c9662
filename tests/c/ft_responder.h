/* ft_responder.h - a tiny HTTP responder on a test's own libuv loop, for the C tests that
 * drive the engine or a crawl (test_engine.c, test_crawl.c).
 *
 * It answers "200 ok" to every request head it reads (each "\r\n\r\n"),
 * on 127.0.0.1 and an ephemeral port, and counts its open handles so a test
 * can check that nothing was left open. Header-only (static functions), as
 * each C test is one program built from one file. */
#ifndef FT_RESPONDER_H
#define FT_RESPONDER_H

#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct client {
  uv_tcp_t h;
  int matched; /* how much of "\r\n\r\n" the stream ended with */
  struct client *next, **prev;
} client;

typedef struct server {
  uv_tcp_t listener;
  int port;
  client *clients;
  int open; /* handles not yet closed */
} server;

static const char answer[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

static void on_client_closed(uv_handle_t *h) {
  client *c = h->data;
  server *s = c->h.loop->data;
  s->open--;
  free(c);
}

static void client_close(client *c) {
  if (uv_is_closing((uv_handle_t *)&c->h))
    return;
  *c->prev = c->next;
  if (c->next)
    c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->h, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(n);
  buf->len = buf->base ? n : 0;
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

/* One answer per request head read (GETs only: no body follows it). */
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  client *c = st->data;
  static const char end[] = "\r\n\r\n";
  for (ssize_t i = 0; i < n; i++) {
    if (buf->base[i] == end[c->matched])
      c->matched++;
    else
      c->matched = buf->base[i] == '\r' ? 1 : 0;
    if (c->matched == 4) {
      c->matched = 0;
      uv_write_t *w = malloc(sizeof(*w));
      uv_buf_t b = uv_buf_init((char *)answer, sizeof(answer) - 1);
      if (w && uv_write(w, st, &b, 1, on_written) != 0)
        free(w);
    }
  }
  free(buf->base);
  if (n < 0)
    client_close(c);
}

static void on_connection(uv_stream_t *l, int status) {
  server *s = l->loop->data;
  if (status < 0)
    return;
  client *c = calloc(1, sizeof(*c));
  if (!c)
    return;
  uv_tcp_init(l->loop, &c->h);
  c->h.data = c;
  s->open++;
  c->next = s->clients;
  if (c->next)
    c->next->prev = &c->next;
  c->prev = &s->clients;
  s->clients = c;
  if (uv_accept(l, (uv_stream_t *)&c->h) != 0 ||
      uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) != 0)
    client_close(c);
}

static void on_listener_closed(uv_handle_t *h) {
  server *s = h->data;
  s->open--;
}

/* Starts the responder on loop (loop->data points to it from then on).
 * Returns 0, or -1 when it cannot listen. */
static int server_start(server *s, uv_loop_t *loop) {
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof(got);
  memset(s, 0, sizeof(*s));
  loop->data = s;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->open = 1;
  if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0) != 0 ||
      uv_listen((uv_stream_t *)&s->listener, 1024, on_connection) != 0 ||
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len) != 0)
    return -1;
  s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  return 0;
}

static void server_stop(server *s) {
  while (s->clients)
    client_close(s->clients);
  if (!uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

/* Closes the responder and the loop: 0 when nothing was left open on it
 * (the engine's handles included). */
static int loop_finish(server *s, uv_loop_t *loop) {
  server_stop(s);
  for (int i = 0; i < 1000 && s->open > 0; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

#endif
