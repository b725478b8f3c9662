/* robots.c - robots.txt (RFC 9309): the parser, the matcher, and a per-origin cache of rules.
 *
 * Written here rather than taken from a library: Debian packages no C
 * library for robots.txt (apt-cache search robots finds only Perl's
 * libwww-robotrules-perl), and Google's reference parser (robotstxt) is
 * C++ with Abseil and is not packaged either. The format is small: a
 * line parser, a percent normaliser and a wildcard matcher. */
#include "robots.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "fetchtree.h"

typedef struct rule {
  char *pat; /* normalised; '*' a wildcard, a final '$' an anchor */
  size_t len;
  int allow;
} rule;

struct ft_robots {
  rule *rules;
  size_t n, cap;
  double crawl_delay;
};

/* ---- percent normalisation ------------------------------------------------ */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int unreserved(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* s[0..n) normalised (see robots.h) into a new string; *outlen gets its
 * length. pattern: '*' stays a wildcard and a final '$' an anchor; else
 * both are literal characters, compared as %2A and %24. NULL when out of
 * memory. */
static char *normalise(const char *s, size_t n, int pattern, size_t *outlen) {
  static const char hex[] = "0123456789ABCDEF";
  char *out = malloc(n * 3 + 1);
  size_t o = 0;
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int v;
    if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
      i += 2;
      if (unreserved(v)) {
        out[o++] = (char)v;
        continue;
      }
    } else if (pattern && (c == '*' || (c == '$' && i == n - 1))) {
      out[o++] = (char)c;
      continue;
    } else if (c <= 0x20 || c >= 0x7f || c == '%' || c == '*' || c == '$') {
      v = c;
    } else {
      out[o++] = (char)c;
      continue;
    }
    out[o++] = '%';
    out[o++] = hex[v >> 4];
    out[o++] = hex[v & 15];
  }
  out[o] = '\0';
  *outlen = o;
  return out;
}

/* ---- matching -------------------------------------------------------------- */

/* Does pattern p[0..pn) match path s[0..sn)? From the start of the path;
 * with anchored the whole path, else any prefix of it. '*' matches any run
 * of characters: the classic matcher that backtracks to the last '*' only
 * is exact for patterns whose one wildcard is '*'. */
static int wild(const char *s, size_t sn, const char *p, size_t pn,
                int anchored) {
  size_t si = 0, pi = 0, star = SIZE_MAX, mark = 0;
  while (si < sn) {
    if (pi < pn && p[pi] == '*') {
      star = pi++;
      mark = si;
      continue;
    }
    if (pi < pn && p[pi] == s[si]) {
      pi++;
      si++;
      continue;
    }
    if (pi == pn && !anchored)
      return 1; /* the pattern is a prefix of the path */
    if (star != SIZE_MAX) {
      pi = star + 1;
      si = ++mark;
      continue;
    }
    return 0;
  }
  while (pi < pn && p[pi] == '*')
    pi++;
  return pi == pn;
}

static int rule_matches(const rule *r, const char *path, size_t n) {
  int anchored = r->len > 0 && r->pat[r->len - 1] == '$';
  return wild(path, n, r->pat, anchored ? r->len - 1 : r->len, anchored);
}

int ft_robots_allowed(const ft_robots *r, const char *path, size_t len) {
  if (len == 0) {
    path = "/";
    len = 1;
  }
  if (len == 11 && memcmp(path, "/robots.txt", 11) == 0)
    return 1;
  if (!r || r->n == 0)
    return 1;
  size_t nlen;
  char *norm = normalise(path, len, 0, &nlen);
  if (!norm)
    return 0; /* out of memory: do not fetch what may be forbidden */
  size_t best = 0;
  int found = 0, allow = 1;
  for (size_t i = 0; i < r->n; i++) {
    const rule *ru = &r->rules[i];
    if (found && ru->len < best)
      continue;
    if (found && ru->len == best && (allow || !ru->allow))
      continue; /* a tie changes only a Disallow into an Allow */
    if (rule_matches(ru, norm, nlen)) {
      found = 1;
      best = ru->len;
      allow = ru->allow;
    }
  }
  free(norm);
  return allow;
}

double ft_robots_crawl_delay(const ft_robots *r) {
  return r ? r->crawl_delay : 0;
}

/* ---- parsing ----------------------------------------------------------------- */

static int add_rule(ft_robots *r, const char *v, size_t n, int allow) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    rule *p = realloc(r->rules, cap * sizeof(*p));
    if (!p)
      return FT_ENOMEM;
    r->rules = p;
    r->cap = cap;
  }
  rule *ru = &r->rules[r->n];
  ru->pat = normalise(v, n, 1, &ru->len);
  if (!ru->pat)
    return FT_ENOMEM;
  ru->allow = allow;
  r->n++;
  return 0;
}

void ft_robots_free(ft_robots *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    free(r->rules[i].pat);
  free(r->rules);
  free(r);
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

static int token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         c == '-';
}

static int ieq(const char *a, size_t an, const char *b) {
  size_t bn = strlen(b);
  if (an != bn)
    return 0;
  for (size_t i = 0; i < an; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = (char)(x + 32);
    if (y >= 'A' && y <= 'Z')
      y = (char)(y + 32);
    if (x != y)
      return 0;
  }
  return 1;
}

size_t ft_robots_product(const char *ua, char *buf, size_t buflen) {
  size_t n = 0;
  while (ua && token_char(ua[n]))
    n++;
  if (buflen > 0) {
    size_t k = n < buflen - 1 ? n : buflen - 1;
    memcpy(buf, ua ? ua : "", k);
    buf[k] = '\0';
  }
  return n;
}

/* A run of bytes in the robots.txt. */
typedef struct span {
  const char *p;
  size_t n;
} span;

/* p[0..end) without the blanks around it. */
static span trim(const char *p, const char *end) {
  while (p < end && is_space(*p))
    p++;
  while (end > p && is_space(end[-1]))
    end--;
  return (span){p, (size_t)(end - p)};
}

/* Reads the line at txt + *pos (of len bytes) and moves *pos past it and
 * its line breaks. Returns 1 for a "key: value" line, with key and value
 * trimmed and a '#' comment cut off; 0 for any other line. */
static int next_line(const char *txt, size_t len, size_t *pos, span *key,
                     span *value) {
  const char *s = txt + *pos;
  size_t i = *pos;
  while (i < len && txt[i] != '\n' && txt[i] != '\r')
    i++;
  const char *end = txt + i;
  while (i < len && (txt[i] == '\n' || txt[i] == '\r'))
    i++;
  *pos = i;
  const char *hash = memchr(s, '#', (size_t)(end - s));
  if (hash)
    end = hash;
  const char *colon = memchr(s, ':', (size_t)(end - s));
  if (!colon)
    return 0;
  *key = trim(s, colon);
  *value = trim(colon + 1, end);
  return 1;
}

/* A Crawl-delay value in seconds, or 0 when it is not a number in
 * (0, 86400]. */
static double crawl_delay_value(span v) {
  char num[32];
  size_t m = v.n < sizeof(num) - 1 ? v.n : sizeof(num) - 1;
  memcpy(num, v.p, m);
  num[m] = '\0';
  char *end;
  double d = strtod(num, &end);
  return end == num || !(d > 0 && d <= 86400) ? 0 : d;
}

/* Reads every line, keeping two rule sets: the groups that name agent and
 * the "*" groups; the first that has a group is the answer (robots.h). */
int ft_robots_parse(const char *txt, size_t len, const char *agent,
                    ft_robots **out) {
  ft_robots *mine = calloc(1, sizeof(*mine)); /* groups naming agent */
  ft_robots *star = calloc(1, sizeof(*star)); /* "*" groups */
  int rc = FT_ENOMEM;
  int has_mine = 0;
  int in_agents = 0, cur_mine = 0, cur_star = 0;
  size_t alen = agent ? strlen(agent) : 0;
  if (!mine || !star)
    goto cleanup;
  if (len > FT_ROBOTS_MAX_BYTES) {
    len = FT_ROBOTS_MAX_BYTES;
    while (len > 0 && txt[len - 1] != '\n' && txt[len - 1] != '\r')
      len--; /* drop the line the limit cut */
  }
  size_t i = 0;
  if (len >= 3 && memcmp(txt, "\xEF\xBB\xBF", 3) == 0)
    i = 3; /* a UTF-8 byte order mark */
  span k, v;
  while (i < len) {
    if (!next_line(txt, len, &i, &k, &v))
      continue;
    if (ieq(k.p, k.n, "user-agent")) {
      if (!in_agents)
        cur_mine = cur_star = 0; /* a new group */
      in_agents = 1;
      if (v.n > 0 && v.p[0] == '*') {
        cur_star = 1;
      } else {
        size_t t = 0;
        while (t < v.n && token_char(v.p[t]))
          t++;
        if (t > 0 && t == alen && ieq(v.p, t, agent))
          cur_mine = has_mine = 1;
      }
      continue;
    }
    int allow = ieq(k.p, k.n, "allow");
    if (allow || ieq(k.p, k.n, "disallow")) {
      in_agents = 0;
      if (v.n == 0)
        continue; /* "Disallow:" with no path: no rule */
      if ((cur_mine && add_rule(mine, v.p, v.n, allow) != 0) ||
          (cur_star && add_rule(star, v.p, v.n, allow) != 0))
        goto cleanup;
    } else if (ieq(k.p, k.n, "crawl-delay")) {
      in_agents = 0;
      double d = crawl_delay_value(v);
      if (d > 0 && cur_mine && mine->crawl_delay == 0)
        mine->crawl_delay = d;
      if (d > 0 && cur_star && star->crawl_delay == 0)
        star->crawl_delay = d;
    }
    /* other lines (Sitemap, unknown keys) neither end nor join a group */
  }
  /* without a "*" group star is empty, which allows everything */
  ft_robots **pick = has_mine ? &mine : &star;
  *out = *pick;
  *pick = NULL;
  rc = 0;
cleanup:
  ft_robots_free(mine);
  ft_robots_free(star);
  return rc;
}

int ft_robots_new_all(int allow, ft_robots **out) {
  ft_robots *r = calloc(1, sizeof(*r));
  if (!r || (!allow && add_rule(r, "/", 1, 0) != 0)) {
    ft_robots_free(r);
    return FT_ENOMEM;
  }
  *out = r;
  return 0;
}

int ft_robots_from_status(long status, const char *body, size_t len,
                          const char *agent, ft_robots **out) {
  if (status >= 200 && status < 300)
    return ft_robots_parse(body ? body : "", body ? len : 0, agent, out);
  return ft_robots_new_all(status >= 300 && status < 500, out);
}

/* ---- URLs ----------------------------------------------------------------------- */

static size_t lower_copy(char *dst, const char *src, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = src[i];
    dst[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
  }
  return n;
}

int ft_robots_origin(const char *url, char *buf, size_t buflen,
                     const char **path, size_t *path_len) {
  const char *p;
  const char *def_port;
  size_t slen;
  if (strlen(url) >= 7 && ieq(url, 7, "http://")) {
    slen = 7;
    def_port = "80";
  } else if (strlen(url) >= 8 && ieq(url, 8, "https://")) {
    slen = 8;
    def_port = "443";
  } else {
    return FT_EINVAL;
  }
  p = url + slen;
  size_t an = strcspn(p, "/?#");
  const char *auth = p, *aend = p + an;
  for (const char *q = aend; q > p; q--)
    if (q[-1] == '@') {
      auth = q;
      break;
    }
  /* the port: after the last ':' that is not inside [an IPv6 address] */
  const char *colon = NULL;
  for (const char *q = auth; q < aend; q++) {
    if (*q == ']')
      colon = NULL;
    else if (*q == ':')
      colon = q;
  }
  const char *hend = colon ? colon : aend;
  if (hend == auth)
    return FT_EINVAL;
  size_t need = slen + (size_t)(hend - auth) + 1;
  int keep_port = 0;
  if (colon) {
    size_t pn = (size_t)(aend - colon - 1);
    keep_port = pn > 0 && !(pn == strlen(def_port) &&
                            memcmp(colon + 1, def_port, pn) == 0);
    if (keep_port)
      need += pn + 1;
  }
  if (need > buflen)
    return FT_ERANGE;
  size_t o = lower_copy(buf, url, slen);
  o += lower_copy(buf + o, auth, (size_t)(hend - auth));
  if (keep_port) {
    size_t pn = (size_t)(aend - colon);
    memcpy(buf + o, colon, pn);
    o += pn;
  }
  buf[o] = '\0';
  if (path) {
    *path = aend;
    *path_len = strcspn(aend, "#");
  }
  return 0;
}

/* ---- the cache -------------------------------------------------------------- */

typedef struct entry {
  char *origin;
  ft_robots *rules;
  struct entry *next;
} entry;

struct ft_robots_cache {
  entry **buckets;
  size_t nb, n;
};

static uint64_t hash(const char *s) { return ft_hash_str(s); }

ft_robots_cache *ft_robots_cache_new(void) {
  ft_robots_cache *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->nb = 16;
  c->buckets = calloc(c->nb, sizeof(*c->buckets));
  if (!c->buckets) {
    free(c);
    return NULL;
  }
  return c;
}

void ft_robots_cache_free(ft_robots_cache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->nb; i++) {
    entry *e = c->buckets[i];
    while (e) {
      entry *next = e->next;
      free(e->origin);
      ft_robots_free(e->rules);
      free(e);
      e = next;
    }
  }
  free(c->buckets);
  free(c);
}

static entry **find(const ft_robots_cache *c, const char *origin) {
  entry **pp = &c->buckets[hash(origin) & (c->nb - 1)];
  while (*pp && strcmp((*pp)->origin, origin) != 0)
    pp = &(*pp)->next;
  return pp;
}

static void grow(ft_robots_cache *c) {
  size_t nb = c->nb * 2;
  entry **b = calloc(nb, sizeof(*b));
  if (!b)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < c->nb; i++) {
    entry *e = c->buckets[i];
    while (e) {
      entry *next = e->next;
      size_t h = hash(e->origin) & (nb - 1);
      e->next = b[h];
      b[h] = e;
      e = next;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nb = nb;
}

int ft_robots_cache_put(ft_robots_cache *c, const char *origin, ft_robots *r) {
  entry **pp = find(c, origin);
  if (*pp) {
    entry *e = *pp;
    if (r) {
      ft_robots_free(e->rules);
      e->rules = r;
    } else {
      *pp = e->next;
      free(e->origin);
      ft_robots_free(e->rules);
      free(e);
      c->n--;
    }
    return 0;
  }
  if (!r)
    return 0;
  entry *e = calloc(1, sizeof(*e));
  if (!e || !(e->origin = strdup(origin))) {
    free(e);
    ft_robots_free(r);
    return FT_ENOMEM;
  }
  e->rules = r;
  e->next = *pp;
  *pp = e;
  if (++c->n > c->nb)
    grow(c);
  return 0;
}

const ft_robots *ft_robots_cache_get(const ft_robots_cache *c,
                                     const char *origin) {
  entry *e = *find(c, origin);
  return e ? e->rules : NULL;
}

int ft_robots_cache_check(const ft_robots_cache *c, const char *url) {
  char origin[512];
  const char *path;
  size_t plen;
  if (ft_robots_origin(url, origin, sizeof(origin), &path, &plen) != 0)
    return FT_ROBOTS_UNKNOWN;
  const ft_robots *r = ft_robots_cache_get(c, origin);
  if (!r)
    return FT_ROBOTS_UNKNOWN;
  return ft_robots_allowed(r, path, plen) ? FT_ROBOTS_ALLOW
                                          : FT_ROBOTS_DISALLOW;
}

int ft_robots_url_check(void *ud, const ft_request *req, const char *url) {
  (void)ud;
  if (!req || !req->udata)
    return 0;
  return ft_robots_cache_check(req->udata, url) != FT_ROBOTS_ALLOW;
}
