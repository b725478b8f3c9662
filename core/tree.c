/* tree.c - the object tree: named objects with subtree limits, inherited
 * settings and subtree stats. */

/* Design note.
 *
 * Objects. Every object lives in a private ft_node whose first member is the
 * public ft_object, so the two pointers convert with a cast. A node also
 * holds its hash-chain link, its first child and next sibling (for walking a
 * subtree), the configured rate (for reporting) and its own retries setting.
 * The name is stored in the same allocation, after the node, and after the
 * name (aligned as malloc aligns) the slot the tree's creator asked for:
 * the engine keeps its per-object queue there, the tree never looks in it.
 *
 * Lookup. A chained hash table keyed by the full name gives O(1) average
 * ft_tree_get. A miss walks the name's prefixes from the longest down to the
 * deepest existing ancestor, then creates the missing objects top-down, so
 * ancestors always exist before their descendants and no recursion is needed
 * however deep a name is. Nodes are also kept in an array in creation order:
 * that order is parents-before-children, which ft_tree_foreach, configure
 * and ft_tree_free use.
 *
 * Patterns. A pattern matches only names with the same number of segments,
 * segment by segment ("*" matches any one). A new object merges the matching
 * patterns field by field in configuration order and applies the result with
 * ft_object_set; a pattern configured later is applied to the existing
 * matching objects with ft_object_set too, which is the same result because
 * it is the latest and so wins every field it sets.
 *
 * Retries. The effective value is the object's own setting, else its
 * parent's effective value, else -1. Changing an own setting re-derives the
 * subtree below it, stopping at descendants that have their own.
 *
 * Admission. An attempt for o may start when no object on the path from o to
 * "/" has reached its concurrency cap and every limiter on the path allows a
 * start. A cap wins over a rate: its wait is unknown (until a completion), so
 * ft_object_admit reports FT_TREE_BUSY rather than a time.
 *
 * Stats. ft_object_count adds one request to every object on the path, so a
 * parent's counters are the sums over its subtree (of requests counted on
 * it or below it). Statuses keep the first 16 distinct codes per object,
 * which is why a parent may put a code in "other" that a child lists. */

#include "tree.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "stats.h"

typedef struct ft_node {
  ft_object obj; /* first: (ft_node *)&obj == node */
  struct ft_node *hnext;
  uint64_t hash;
  size_t len;
  struct ft_node *first_child, *next_sibling;
  double rps, window_ms; /* as configured (rps 0: no limiter) */
  int own_retries;       /* 1 when retries_own is this object's setting */
  int retries_own;
  char name_buf[];
} ft_node;

typedef struct ft_pattern {
  char *text;
  size_t len;
  int nseg;
  ft_obj_settings s;
} ft_pattern;

struct ft_tree {
  ft_node **buckets; /* power-of-two sized hash table */
  size_t nbuckets;
  ft_node **nodes; /* creation order: parents before children */
  size_t count, cap;
  ft_pattern *patterns;
  size_t npatterns, cap_patterns;
  uint64_t seed;
  ft_node *root;
  ft_node *last; /* ft_tree_get's last answer (NULL: none yet) */
  size_t slot_size; /* bytes of ft_object.slot on every object */
};

/* calloc's alignment, which the slot keeps: whatever the user puts there */
#define FT_SLOT_ALIGN _Alignof(max_align_t)

static ft_node *ft_node_of_(ft_object *o) { return (ft_node *)o; }

/* ---- names and patterns ------------------------------------------------ */

/* hash.h's XXH3 over n bytes, seeded per tree. */
static uint64_t ft_tree_hash_(const ft_tree *t, const char *s, size_t n) {
  return XXH3_64bits_withSeed(s, n, t->seed);
}

/* Checks the syntax shared by names and patterns: "/" or "/seg/seg..." with
 * non-empty segments and no trailing slash. Returns the number of segments,
 * or -1 when invalid. */
static int ft_tree_parse_(const char *s, size_t *len) {
  if (s == NULL || s[0] != '/')
    return -1;
  if (s[1] == '\0') {
    *len = 1;
    return 0;
  }
  int nseg = 0;
  size_t i = 0;
  while (s[i] == '/') {
    size_t j = i + 1;
    while (s[j] != '\0' && s[j] != '/')
      j++;
    if (j == i + 1) /* empty segment: "//", or a trailing "/" */
      return -1;
    nseg++;
    i = j;
  }
  *len = i;
  return nseg;
}

/* Does pattern p match the name (both valid, same segment count)? */
static int ft_pattern_match_(const ft_pattern *p, const char *name,
                             size_t nlen) {
  size_t pi = 1, ni = 1;
  if (p->nseg == 0)
    return nlen == 1;
  while (pi < p->len && ni < nlen) {
    size_t pe = pi, ne = ni;
    while (pe < p->len && p->text[pe] != '/')
      pe++;
    while (ne < nlen && name[ne] != '/')
      ne++;
    int star = pe - pi == 1 && p->text[pi] == '*';
    if (!star &&
        (pe - pi != ne - ni || memcmp(p->text + pi, name + ni, pe - pi) != 0))
      return 0;
    pi = pe + 1;
    ni = ne + 1;
  }
  return pi >= p->len && ni >= nlen;
}

/* Copies the fields src sets over dst. */
static void ft_settings_merge_(ft_obj_settings *dst,
                               const ft_obj_settings *src) {
  if (src->has_rps) {
    dst->has_rps = 1;
    dst->rps = src->rps;
    dst->window_ms = src->window_ms;
  }
  if (src->has_concurrency) {
    dst->has_concurrency = 1;
    dst->concurrency = src->concurrency;
  }
  if (src->has_retries) {
    dst->has_retries = 1;
    dst->retries = src->retries;
  }
}

/* Validates s; for a rate, sets *window_ms (default applied) and *window_ns.
 * The window is parsed here (milliseconds to ns); whether the limiter can
 * hold the rate is the limiter's own check, so that configure refuses
 * exactly what ft_object_set would, before storing a pattern. */
static int ft_settings_check_(const ft_obj_settings *s, double *window_ms,
                              uint64_t *window_ns) {
  if (s == NULL)
    return FT_EINVAL;
  if (!s->has_rps)
    return FT_OK;
  double wm = s->window_ms == 0 ? 1000.0 : s->window_ms;
  if (isnan(wm) || isinf(wm) || wm < 0)
    return FT_EINVAL;
  uint64_t wns = 0;
  if (isfinite(s->rps) && s->rps > 0) { /* the window matters */
    double ns = wm * 1e6;
    if (ns >= 18446744073709551615.0) /* 2^64: not representable */
      return FT_ERANGE;
    wns = (uint64_t)ns;
  }
  int rc = ft_limiter_check(s->rps, wns);
  if (rc < 0)
    return rc;
  *window_ms = wm;
  *window_ns = wns;
  return FT_OK;
}

/* ---- the table ---------------------------------------------------------- */

static ft_node *ft_tree_lookup_(const ft_tree *t, const char *name,
                                size_t len) {
  uint64_t h = ft_tree_hash_(t, name, len);
  for (ft_node *n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->hnext)
    if (n->hash == h && n->len == len && memcmp(n->name_buf, name, len) == 0)
      return n;
  return NULL;
}

/* Makes room for one more node in the table and the creation-order array. */
static int ft_tree_reserve_(ft_tree *t) {
  if (t->count == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    ft_node **nodes = realloc(t->nodes, cap * sizeof(*nodes));
    if (nodes == NULL)
      return FT_ENOMEM;
    t->nodes = nodes;
    t->cap = cap;
  }
  if (t->count + 1 > t->nbuckets) { /* load factor <= 1 */
    size_t nb = t->nbuckets * 2;
    ft_node **b = calloc(nb, sizeof(*b));
    if (b == NULL)
      return FT_ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
      ft_node *n = t->buckets[i];
      while (n) {
        ft_node *next = n->hnext;
        n->hnext = b[n->hash & (nb - 1)];
        b[n->hash & (nb - 1)] = n;
        n = next;
      }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
  }
  return FT_OK;
}

/* Creates the object for name[0..len) under parent (NULL for "/"), applies
 * the matching patterns and links it in. */
static int ft_tree_create_(ft_tree *t, ft_node *parent, const char *name,
                           size_t len, ft_node **out) {
  int rc = ft_tree_reserve_(t);
  if (rc < 0)
    return rc;
  /* one allocation: the node, its name, then the user's slot, aligned */
  size_t slot_at = sizeof(ft_node) + len + 1;
  if (t->slot_size > 0)
    slot_at = (slot_at + FT_SLOT_ALIGN - 1) / FT_SLOT_ALIGN * FT_SLOT_ALIGN;
  ft_node *n = calloc(1, slot_at + t->slot_size);
  if (n == NULL)
    return FT_ENOMEM;
  if (t->slot_size > 0)
    n->obj.slot = (char *)n + slot_at;
  memcpy(n->name_buf, name, len);
  n->name_buf[len] = '\0';
  n->len = len;
  n->hash = ft_tree_hash_(t, name, len);
  n->obj.name = n->name_buf;
  n->obj.parent = parent ? &parent->obj : NULL;
  n->obj.depth = parent ? parent->obj.depth + 1 : 0;
  n->obj.retries = parent ? parent->obj.retries : -1;

  ft_obj_settings merged = {0};
  for (size_t i = 0; i < t->npatterns; i++) {
    const ft_pattern *p = &t->patterns[i];
    if (p->nseg == n->obj.depth && ft_pattern_match_(p, name, len))
      ft_settings_merge_(&merged, &p->s);
  }
  rc = ft_object_set(&n->obj, &merged); /* no children yet: no walk */
  if (rc < 0) {
    free(n);
    return rc;
  }

  size_t b = n->hash & (t->nbuckets - 1);
  n->hnext = t->buckets[b];
  t->buckets[b] = n;
  t->nodes[t->count++] = n;
  if (parent) {
    n->next_sibling = parent->first_child;
    parent->first_child = n;
  }
  *out = n;
  return FT_OK;
}

/* ---- the tree ----------------------------------------------------------- */

int ft_tree_new(ft_tree **out, size_t slot_size) {
  if (out == NULL || slot_size > FT_TREE_SLOT_MAX)
    return FT_EINVAL;
  ft_tree *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return FT_ENOMEM;
  t->slot_size = slot_size;
  t->nbuckets = 64;
  t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
  uintptr_t a = (uintptr_t)t;
  t->seed = (uint64_t)a * 0x9e3779b97f4a7c15ull;
  if (t->buckets == NULL || ft_tree_create_(t, NULL, "/", 1, &t->root) < 0) {
    ft_tree_free(t);
    return FT_ENOMEM;
  }
  *out = t;
  return FT_OK;
}

void ft_tree_free(ft_tree *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->count; i++) {
    ft_limiter_free(t->nodes[i]->obj.limiter);
    free(t->nodes[i]);
  }
  for (size_t i = 0; i < t->npatterns; i++)
    free(t->patterns[i].text);
  free(t->patterns);
  free(t->nodes);
  free(t->buckets);
  free(t);
}

int ft_tree_configure(ft_tree *t, const char *pattern,
                      const ft_obj_settings *s) {
  size_t len;
  double wm = 0;
  uint64_t wns = 0;
  if (t == NULL)
    return FT_EINVAL;
  int nseg = ft_tree_parse_(pattern, &len);
  if (nseg < 0 || pattern[len] != '\0')
    return FT_EINVAL;
  int rc = ft_settings_check_(s, &wm, &wns);
  if (rc < 0)
    return rc;
  if (t->npatterns == t->cap_patterns) {
    size_t cap = t->cap_patterns ? t->cap_patterns * 2 : 8;
    ft_pattern *p = realloc(t->patterns, cap * sizeof(*p));
    if (p == NULL)
      return FT_ENOMEM;
    t->patterns = p;
    t->cap_patterns = cap;
  }
  ft_pattern *p = &t->patterns[t->npatterns];
  p->text = malloc(len + 1);
  if (p->text == NULL)
    return FT_ENOMEM;
  memcpy(p->text, pattern, len + 1);
  p->len = len;
  p->nseg = nseg;
  p->s = *s;
  t->npatterns++;
  /* the newest pattern wins every field it sets: apply it alone */
  int first_err = FT_OK;
  for (size_t i = 0; i < t->count; i++) {
    ft_node *n = t->nodes[i];
    if (n->obj.depth != nseg || !ft_pattern_match_(p, n->name_buf, n->len))
      continue;
    rc = ft_object_set(&n->obj, s);
    if (rc < 0 && first_err == FT_OK)
      first_err = rc;
  }
  return first_err;
}

void ft_tree_get_error(const char *name, int err, char *buf, size_t len) {
  snprintf(buf, len, "cannot make object '%.300s': %s", name,
           err == FT_EINVAL ? "not an object name such as /host/example.com"
                            : ft_strerror(err));
}

ft_object *ft_tree_get(ft_tree *t, const char *name, int *err) {
  size_t len;
  int rc = FT_EINVAL;
  /* Runs of lookups of one name (the requests to one host) skip the
   * parse, hash and probe: the last answer is kept, and a name that is
   * byte for byte the cached one (a valid name) is that object. Objects
   * live as long as the tree, so the cache never goes stale. */
  if (t != NULL && name != NULL && t->last != NULL &&
      strcmp(name, t->last->name_buf) == 0) {
    if (err)
      *err = FT_OK;
    return &t->last->obj;
  }
  if (t == NULL || ft_tree_parse_(name, &len) < 0 || name[len] != '\0')
    goto fail;
  ft_node *n = ft_tree_lookup_(t, name, len);
  if (n) {
    t->last = n;
    if (err)
      *err = FT_OK;
    return &n->obj;
  }
  /* the deepest existing ancestor covers name[0..cut) ("/" when cut == 0) */
  size_t cut = len;
  ft_node *anc = NULL;
  while (anc == NULL) {
    size_t i = cut - 1;
    while (name[i] != '/')
      i--;
    cut = i;
    anc = cut == 0 ? t->root : ft_tree_lookup_(t, name, cut);
  }
  while (cut < len) {
    size_t end = cut + 1;
    while (end < len && name[end] != '/')
      end++;
    rc = ft_tree_create_(t, anc, name, end, &anc);
    if (rc < 0)
      goto fail;
    cut = end;
  }
  t->last = anc;
  if (err)
    *err = FT_OK;
  return &anc->obj;
fail:
  if (err)
    *err = rc;
  return NULL;
}

ft_object *ft_tree_root(ft_tree *t) { return t ? &t->root->obj : NULL; }

size_t ft_tree_count(const ft_tree *t) { return t ? t->count : 0; }

void ft_tree_foreach(ft_tree *t, void (*fn)(ft_object *o, void *ud), void *ud) {
  if (t == NULL || fn == NULL)
    return;
  /* re-reads count and nodes, so objects fn creates are visited too */
  for (size_t i = 0; i < t->count; i++)
    fn(&t->nodes[i]->obj, ud);
}

/* ---- live settings ------------------------------------------------------ */

/* Re-derives the effective retries of top and of its descendants, skipping
 * the subtrees below descendants that have their own setting. */
static void ft_retries_derive_(ft_node *top) {
  ft_object *p = top->obj.parent;
  top->obj.retries =
      top->own_retries ? top->retries_own : (p ? p->retries : -1);
  ft_node *cur = top->first_child;
  while (cur) {
    if (!cur->own_retries) {
      cur->obj.retries = cur->obj.parent->retries;
      if (cur->first_child) {
        cur = cur->first_child;
        continue;
      }
    }
    /* next sibling, else climb until one has a next sibling */
    while (cur != NULL && cur->next_sibling == NULL) {
      cur = ft_node_of_(cur->obj.parent);
      if (cur == top)
        cur = NULL;
    }
    if (cur)
      cur = cur->next_sibling;
  }
}

int ft_object_set(ft_object *o, const ft_obj_settings *s) {
  double wm = 0;
  uint64_t wns = 0;
  if (o == NULL)
    return FT_EINVAL;
  int rc = ft_settings_check_(s, &wm, &wns);
  if (rc < 0)
    return rc;
  ft_node *n = ft_node_of_(o);
  if (s->has_rps) { /* first: the only step that can fail */
    if (s->rps <= 0) {
      ft_limiter_free(o->limiter);
      o->limiter = NULL;
    } else if (o->limiter) {
      rc = ft_limiter_set(o->limiter, s->rps, wns); /* keeps history */
    } else {
      rc = ft_limiter_new(&o->limiter, s->rps, wns);
    }
    if (rc < 0)
      return rc;
    n->rps = s->rps > 0 ? s->rps : 0;
    n->window_ms = wm;
  }
  if (s->has_concurrency)
    o->concurrency = s->concurrency > 0 ? s->concurrency : 0;
  if (s->has_retries) {
    n->own_retries = s->retries >= 0;
    n->retries_own = s->retries;
    ft_retries_derive_(n);
  }
  return FT_OK;
}

/* ---- admission ---------------------------------------------------------- */

uint64_t ft_object_admit(const ft_object *o, uint64_t now_ns) {
  uint64_t worst = 0;
  for (const ft_object *p = o; p; p = p->parent) {
    if (p->concurrency > 0 && p->active >= p->concurrency)
      return FT_TREE_BUSY;
    uint64_t d = ft_limiter_delay(p->limiter, now_ns);
    if (d > worst)
      worst = d;
  }
  return worst < FT_TREE_BUSY ? worst : FT_TREE_BUSY - 1;
}

void ft_object_start(ft_object *o, uint64_t now_ns) {
  for (ft_object *p = o; p; p = p->parent) {
    ft_limiter_take(p->limiter, now_ns);
    p->active++;
  }
}

void ft_object_finish(ft_object *o) {
  for (ft_object *p = o; p; p = p->parent)
    if (p->active > 0)
      p->active--;
}

/* ---- stats -------------------------------------------------------------- */

static void ft_obj_stats_status_(ft_obj_stats *s, long status) {
  if (status <= 65535) {
    for (int i = 0; i < FT_OBJ_STATUSES; i++) {
      if (s->status_code[i] == status) {
        s->status_count[i]++;
        return;
      }
      if (s->status_code[i] == 0) {
        s->status_code[i] = (uint16_t)status;
        s->status_count[i] = 1;
        return;
      }
    }
  }
  s->status_other++;
}

void ft_object_count(ft_object *o, const ft_response *res) {
  if (res == NULL)
    return;
  uint64_t us = 0;
  int timed = res->attempts > 0;
  if (timed && res->elapsed_ms > 0) {
    double d = res->elapsed_ms * 1000.0;
    us = d < 18446744073709551615.0 ? (uint64_t)d : UINT64_MAX;
  }
  int bucket = ft_hist_bucket_bits(us, FT_OBJ_HIST_BITS, FT_OBJ_HIST_BUCKETS);
  for (ft_object *p = o; p; p = p->parent) {
    ft_obj_stats *s = &p->stats;
    s->requests++;
    if (res->attempts > 0) {
      s->attempts += (uint64_t)res->attempts;
      s->retries += (uint64_t)res->attempts - 1;
    }
    s->bytes += res->body_len;
    if (res->error == FT_ERR_NONE)
      s->ok++;
    else if (res->error > 0 && res->error < FT_ERR_COUNT)
      s->by_error[res->error]++;
    else
      s->by_error[FT_ERR_INTERNAL]++;
    if (res->status > 0)
      ft_obj_stats_status_(s, res->status);
    if (timed) {
      if (s->hist[bucket] < UINT32_MAX)
        s->hist[bucket]++;
      if (us > s->max_us)
        s->max_us = us;
    }
  }
}

/* ft_stats_percentile's walk, over this histogram's 32-bit counters. */
double ft_obj_stats_percentile(const ft_obj_stats *s, double q) {
  uint64_t total = 0;
  for (int i = 0; i < FT_OBJ_HIST_BUCKETS; i++)
    total += s->hist[i];
  if (total == 0)
    return 0;
  uint64_t want = q > 0 ? (uint64_t)(q * (double)total) : 0;
  if (want >= total)
    want = total - 1;
  uint64_t seen = 0;
  for (int i = 0; i < FT_OBJ_HIST_BUCKETS; i++) {
    seen += s->hist[i];
    if (seen > want)
      return (double)ft_hist_lower_bits(i, FT_OBJ_HIST_BITS) / 1000.0;
  }
  return (double)s->max_us / 1000.0;
}

/* ---- walking in name order --------------------------------------------- */

/* Sorts a sibling list by name (bytewise), merge sort, O(n log n). */
static ft_node *ft_sort_siblings_(ft_node *head) {
  if (head == NULL || head->next_sibling == NULL)
    return head;
  ft_node *slow = head, *fast = head->next_sibling;
  while (fast && fast->next_sibling) {
    slow = slow->next_sibling;
    fast = fast->next_sibling->next_sibling;
  }
  ft_node *b = slow->next_sibling;
  slow->next_sibling = NULL;
  ft_node *a = ft_sort_siblings_(head);
  b = ft_sort_siblings_(b);
  ft_node *out = NULL, **tail = &out;
  while (a && b) {
    ft_node **least = strcmp(a->name_buf, b->name_buf) <= 0 ? &a : &b;
    *tail = *least;
    tail = &(*least)->next_sibling;
    *least = (*least)->next_sibling;
  }
  *tail = a ? a : b;
  return out;
}

void ft_tree_walk(ft_tree *t, void (*enter)(ft_object *o, void *ud),
                  void (*leave)(ft_object *o, void *ud), void *ud) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->count; i++)
    t->nodes[i]->first_child = ft_sort_siblings_(t->nodes[i]->first_child);
  /* preorder walk without recursion: names may be arbitrarily deep */
  ft_node *n = t->root;
  for (;;) {
    if (enter)
      enter(&n->obj, ud);
    if (n->first_child) {
      n = n->first_child;
      continue;
    }
    for (;;) {
      if (leave)
        leave(&n->obj, ud);
      if (n == t->root)
        return;
      if (n->next_sibling) {
        n = n->next_sibling;
        break;
      }
      n = ft_node_of_(n->obj.parent);
    }
  }
}

int ft_object_rate(const ft_object *o, double *rps, double *window_ms) {
  if (o->limiter == NULL)
    return 0;
  const ft_node *n = (const ft_node *)o;
  *rps = n->rps;
  *window_ms = n->window_ms;
  return 1;
}
