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
 * data. The fingerprint is XXH3's 128-bit hash of that encoding (hash.h:
 * fetchtree's one hash function, from libxxhash); for n keys the chance of
 * a collision is about n^2 / 2^129, 1.5e-25 for ten million. XXH3 is frozen
 * (0.8.0 on), so fingerprints stored in a state database stay valid.
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
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include "hash.h"

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

/* Feeds one length-prefixed field (8 bytes, little-endian) to h. */
static void ft_dedupe_field_(XXH3_state_t *h, const void *data, size_t n) {
  unsigned char len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char)((uint64_t)n >> (8 * i));
  XXH3_128bits_update(h, len, sizeof len);
  if (n > 0)
    XXH3_128bits_update(h, data, n);
}

static ft_dedupe_key ft_dedupe_key_of_(const char *method, const char *url,
                                       const void *body, size_t body_len) {
  XXH3_state_t h;
  XXH3_INITSTATE(&h);
  XXH3_128bits_reset(&h);
  ft_dedupe_field_(&h, method, strlen(method));
  ft_dedupe_field_(&h, url, strlen(url));
  ft_dedupe_field_(&h, body_len > 0 ? body : "", body_len);
  XXH128_hash_t d = XXH3_128bits_digest(&h);
  /* low64 first: the table indexes its slots with k.a's low bits */
  ft_dedupe_key k = {d.low64, d.high64};
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
  for (int i = 0; i < 8; i++) { /* little-endian on every host */
    key[i] = (unsigned char)(k.a >> (8 * i));
    key[8 + i] = (unsigned char)(k.b >> (8 * i));
  }
}

int ft_dedupe_add_key(ft_dedupe *d, const unsigned char key[16]) {
  if (d == NULL || key == NULL)
    return FT_EINVAL;
  ft_dedupe_key k = {0, 0};
  for (int i = 0; i < 8; i++) {
    k.a |= (uint64_t)key[i] << (8 * i);
    k.b |= (uint64_t)key[8 + i] << (8 * i);
  }
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
