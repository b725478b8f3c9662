/* dedupe.c - the crawl's "seen" set, as 128-bit hashes in an
 * open-addressing table. */

/* Design note.
 *
 * A crawl of ten million pages must remember ten million keys, and URLs
 * average ~80 bytes: storing them would cost a gigabyte with allocator
 * overhead. We store a 128-bit fingerprint instead, 16 bytes flat.
 *
 * The key is the three fields, each preceded by its length as 8 bytes, so
 * ("GET", "ab", "") and ("GETa", "b", "") differ, and NUL bytes are ordinary
 * data. Two independent 64-bit hashes are taken over that encoding:
 *  - a: FNV-1a 64, byte at a time, then the murmur3 fmix64 avalanche (FNV's
 *    low bits are weak on their own, and we index the table with them);
 *  - b: a seeded word-at-a-time mixer (each 8-byte little-endian word goes
 *    through a multiply and fmix64 before it is folded into the state by a
 *    rotate and multiply-add; each field's last word is zero-padded, which
 *    is unambiguous because the length came first), then fmix64.
 * The two share no structure, so a collision needs both to collide: for n
 * keys the chance is about n^2 / 2^129, 1.5e-25 for ten million.
 *
 * The table is linear-probing open addressing over 2^k slots, slot index
 * a & (2^k - 1); the all-zero fingerprint marks an empty slot, so a real
 * (0, 0) fingerprint is stored as (0, 1). It doubles when an insert would
 * pass 70% load, rehashing into a fresh array. No deletion is needed. */

#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define FT_DEDUPE_INITIAL 1024 /* slots; a power of two */

typedef struct ft_dedupe_key {
  uint64_t a, b;
} ft_dedupe_key;

struct ft_dedupe {
  ft_dedupe_key *slots; /* cap entries; (0, 0) = empty */
  size_t cap;           /* a power of two */
  size_t n;             /* occupied slots */
};

/* ---- hashing ------------------------------------------------------------ */

#define FT_FNV_OFFSET 0xcbf29ce484222325ULL
#define FT_FNV_PRIME 0x100000001b3ULL
#define FT_MIX_SEED 0x243f6a8885a308d3ULL /* pi, as good as any */
#define FT_MIX_K1 0x87c37b91114253d5ULL
#define FT_MIX_K2 0x4cf5ad432745937fULL
#define FT_MIX_K3 0x52dce729ULL

/* murmur3's 64-bit finaliser: every input bit affects every output bit. */
static uint64_t ft_fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static uint64_t ft_rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

typedef struct ft_dedupe_hash {
  uint64_t a; /* FNV-1a state */
  uint64_t b; /* word mixer state */
} ft_dedupe_hash;

static void ft_dedupe_fnv_(ft_dedupe_hash *h, const unsigned char *p,
                           size_t n) {
  uint64_t a = h->a;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a = (a ^ p[i]) * FT_FNV_PRIME;
    a = (a ^ p[i + 1]) * FT_FNV_PRIME;
    a = (a ^ p[i + 2]) * FT_FNV_PRIME;
    a = (a ^ p[i + 3]) * FT_FNV_PRIME;
  }
  for (; i < n; i++)
    a = (a ^ p[i]) * FT_FNV_PRIME;
  h->a = a;
}

/* FNV-1a over the eight bytes of v, least significant first. */
static void ft_dedupe_fnv_u64_(ft_dedupe_hash *h, uint64_t v) {
  uint64_t a = h->a;
  for (int i = 0; i < 8; i++)
    a = (a ^ ((v >> (8 * i)) & 0xff)) * FT_FNV_PRIME;
  h->a = a;
}

static void ft_dedupe_word_(ft_dedupe_hash *h, uint64_t w) {
  h->b ^= ft_fmix64(w * FT_MIX_K1);
  h->b = ft_rotl64(h->b, 27) * FT_MIX_K2 + FT_MIX_K3;
}

/* Little-endian load of n <= 8 bytes, zero-padded (one load where the
 * host is little-endian; a byte loop cost a fifth of the key). */
static uint64_t ft_dedupe_load_(const unsigned char *p, size_t n) {
  uint64_t w = 0;
  memcpy(&w, p, n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  return w;
}

/* Feeds one length-prefixed field to both hashes. */
static void ft_dedupe_field_(ft_dedupe_hash *h, const void *data, size_t n) {
  const unsigned char *p = data;
  ft_dedupe_fnv_u64_(h, (uint64_t)n);
  ft_dedupe_fnv_(h, p, n);
  ft_dedupe_word_(h, (uint64_t)n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    ft_dedupe_word_(h, ft_dedupe_load_(p + i, 8));
  if (i < n)
    ft_dedupe_word_(h, ft_dedupe_load_(p + i, n - i));
}

static ft_dedupe_key ft_dedupe_key_of_(const char *method, const char *url,
                                       const void *body, size_t body_len) {
  ft_dedupe_hash h = {FT_FNV_OFFSET, FT_MIX_SEED};
  ft_dedupe_field_(&h, method, strlen(method));
  ft_dedupe_field_(&h, url, strlen(url));
  ft_dedupe_field_(&h, body_len > 0 ? body : "", body_len);
  ft_dedupe_key k = {ft_fmix64(h.a), ft_fmix64(h.b)};
  if (k.a == 0 && k.b == 0)
    k.b = 1; /* (0, 0) marks an empty slot */
  return k;
}

/* ---- table -------------------------------------------------------------- */

/* The slot holding k, or the empty slot where it belongs. */
static ft_dedupe_key *ft_dedupe_find_(ft_dedupe_key *slots, size_t cap,
                                      ft_dedupe_key k) {
  size_t mask = cap - 1;
  size_t i = (size_t)k.a & mask;
  for (;;) {
    ft_dedupe_key *s = &slots[i];
    if ((s->a == k.a && s->b == k.b) || (s->a == 0 && s->b == 0))
      return s;
    i = (i + 1) & mask;
  }
}

/* Doubles the table. Returns 0 or FT_ENOMEM (the table is unchanged). */
static int ft_dedupe_grow_(ft_dedupe *d) {
  if (d->cap > SIZE_MAX / 2 / sizeof(ft_dedupe_key))
    return FT_ENOMEM;
  size_t cap = d->cap * 2;
  ft_dedupe_key *slots = calloc(cap, sizeof(ft_dedupe_key));
  if (slots == NULL)
    return FT_ENOMEM;
  for (size_t i = 0; i < d->cap; i++) {
    ft_dedupe_key k = d->slots[i];
    if (k.a != 0 || k.b != 0)
      *ft_dedupe_find_(slots, cap, k) = k;
  }
  free(d->slots);
  d->slots = slots;
  d->cap = cap;
  return 0;
}

int ft_dedupe_new(ft_dedupe **out) {
  if (out == NULL)
    return FT_EINVAL;
  ft_dedupe *d = malloc(sizeof *d);
  if (d == NULL)
    return FT_ENOMEM;
  d->slots = calloc(FT_DEDUPE_INITIAL, sizeof(ft_dedupe_key));
  if (d->slots == NULL) {
    free(d);
    return FT_ENOMEM;
  }
  d->cap = FT_DEDUPE_INITIAL;
  d->n = 0;
  *out = d;
  return 0;
}

void ft_dedupe_free(ft_dedupe *d) {
  if (d == NULL)
    return;
  free(d->slots);
  free(d);
}

static int ft_dedupe_insert_(ft_dedupe *d, ft_dedupe_key k);

int ft_dedupe_add(ft_dedupe *d, const char *method, const char *url,
                  const void *body, size_t body_len) {
  if (d == NULL || url == NULL || (body == NULL && body_len > 0))
    return FT_EINVAL;
  return ft_dedupe_insert_(
      d, ft_dedupe_key_of_(method != NULL ? method : "GET", url, body,
                           body_len));
}

void ft_dedupe_hash_key(const char *method, const char *url, const void *body,
                        size_t body_len, unsigned char key[16]) {
  ft_dedupe_key k = ft_dedupe_key_of_(method != NULL ? method : "GET", url,
                                      body_len > 0 ? body : "", body_len);
  memcpy(key, &k.a, 8);
  memcpy(key + 8, &k.b, 8);
}

int ft_dedupe_add_key(ft_dedupe *d, const unsigned char key[16]) {
  if (d == NULL || key == NULL)
    return FT_EINVAL;
  ft_dedupe_key k;
  memcpy(&k.a, key, 8);
  memcpy(&k.b, key + 8, 8);
  if (k.a == 0 && k.b == 0)
    k.b = 1;
  return ft_dedupe_insert_(d, k);
}

static int ft_dedupe_insert_(ft_dedupe *d, ft_dedupe_key k) {
  ft_dedupe_key *s = ft_dedupe_find_(d->slots, d->cap, k);
  if (s->a != 0 || s->b != 0)
    return 0;
  /* grow when this insert would pass 70% load: n + 1 > 0.7 cap */
  if ((d->n + 1) * 10 > d->cap * 7) {
    int rc = ft_dedupe_grow_(d);
    if (rc != 0)
      return rc;
    s = ft_dedupe_find_(d->slots, d->cap, k);
  }
  *s = k;
  d->n++;
  return 1;
}

size_t ft_dedupe_count(const ft_dedupe *d) {
  return d != NULL ? d->n : 0;
}
