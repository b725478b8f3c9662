/* ft_redis.h - a redis-server of the test's own, for the C tests of the
 * redis state backend: on 127.0.0.1, a free port, a temporary directory,
 * no persistence; started and stopped within bounded time, and gone with
 * the test process if that dies first. */
#ifndef FT_REDIS_H
#define FT_REDIS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct ft_redis_server {
  pid_t pid;
  int port;
  char dir[64]; /* its --dir, with its log */
} ft_redis_server;

/* A port no one listens on now: bind port 0, read it, close (redis-server
 * refuses --port 0). Another process may take it before redis-server does;
 * the start then fails and says so. */
static int ft_redis_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void ft_redis_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its
 * directory. Safe on a server that never started. */
static void ft_redis_stop(ft_redis_server *r) {
  if (r->pid > 0) {
    kill(r->pid, SIGTERM);
    int st;
    for (int i = 0; i < 500 && waitpid(r->pid, &st, WNOHANG) == 0; i++) {
      if (i == 499) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, &st, 0);
      }
      ft_redis_sleep_ms(10);
    }
    r->pid = 0;
  }
  if (r->dir[0] != '\0') {
    char p[96];
    snprintf(p, sizeof p, "%s/redis.log", r->dir);
    unlink(p);
    rmdir(r->dir);
    r->dir[0] = '\0';
  }
}

/* Starts redis-server and waits (at most 10 s) until it answers PING.
 * Returns 0, or -1 with the reason in err (redis-server missing: `make
 * deps` installs it). */
static int ft_redis_start(ft_redis_server *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  snprintf(r->dir, sizeof r->dir, "/tmp/ft_redis_XXXXXX");
  if (mkdtemp(r->dir) == NULL) {
    snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
    r->dir[0] = '\0';
    return -1;
  }
  if ((r->port = ft_redis_free_port()) < 0) {
    snprintf(err, errlen, "no free port: %s", strerror(errno));
    ft_redis_stop(r);
    return -1;
  }
  char port[16], log[96];
  snprintf(port, sizeof port, "%d", r->port);
  snprintf(log, sizeof log, "%s/redis.log", r->dir);
  r->pid = fork();
  if (r->pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    ft_redis_stop(r);
    return -1;
  }
  if (r->pid == 0) {
    /* a test that dies (a sanitizer's abort) takes its server with it */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execlp("redis-server", "redis-server", "--port", port, "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r->dir,
           "--daemonize", "no", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 1000; i++) {
    int st;
    if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
      r->pid = 0;
      snprintf(err, errlen,
               "redis-server exited (%s %d) before answering: is it installed?"
               " `make deps` installs it",
               WIFEXITED(st) ? "status" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      ft_redis_stop(r);
      return -1;
    }
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rep = c != NULL && !c->err ? redisCommand(c, "PING") : NULL;
    int up = rep != NULL && rep->type == REDIS_REPLY_STATUS &&
             strcmp(rep->str, "PONG") == 0;
    if (rep != NULL)
      freeReplyObject(rep);
    if (c != NULL)
      redisFree(c);
    if (up)
      return 0;
    ft_redis_sleep_ms(10);
  }
  snprintf(err, errlen, "redis-server on port %d did not answer PING in 10 s",
           r->port);
  ft_redis_stop(r);
  return -1;
}

#endif
