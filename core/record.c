/* record.c - JSON Lines records: JSON string escaping and the writer of fetch results.
 *
 * Records are written by hand rather than through a JSON library because
 * they are flat, their shape is fixed, and this is the hot path of
 * `fetchtree fetch`: one pass over the body to validate UTF-8, one to
 * escape it. Reading JSON is another matter and goes through lua-cjson. */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "hash.h"
#include "utf8.h"

/* byte-wise constants for the word-at-a-time loops below */
#define FT_ONES 0x0101010101010101ull
#define FT_HIGHS 0x8080808080808080ull

/* 1 when none of the eight bytes of w needs escaping in a JSON string:
 * each is ASCII, at least 0x20, and neither '"' nor '\\' (the classic
 * has-zero-byte test on w, w ^ '"'s and w ^ '\\'s, and has-less-than on w;
 * a byte's borrow can flag a byte above it only when one is flagged). */
static int json_plain8(uint64_t w) {
  if (w & FT_HIGHS)
    return 0;
  uint64_t q = w ^ (0x22 * FT_ONES), bs = w ^ (0x5c * FT_ONES);
  uint64_t bad = ((w - 0x20 * FT_ONES) & ~w) | ((q - FT_ONES) & ~q) |
                 ((bs - FT_ONES) & ~bs);
  return (bad & FT_HIGHS) == 0;
}

/* 1 for the bytes a JSON string holds as they are: ASCII from 0x20 up,
 * but '"' and '\\' (0x00-0x1f and 0x80-0xff are 0) */
static const unsigned char json_plain_byte[256] = {
    [0x20] =
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
};

void ft_json_string(ft_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  /* Room for the quotes and every byte as it is; an escape (up to six
   * bytes for one) makes room again for itself and the rest. */
  if (ft_buf_reserve(b, n + 2) != 0)
    return;
  char *o = b->data + b->len;
  *o++ = '"';
  size_t i = 0;
  while (i < n) {
    uint64_t w;
    while (i + 8 <= n && (memcpy(&w, p + i, 8), json_plain8(w))) {
      memcpy(o, &w, 8);
      o += 8;
      i += 8;
    }
    if (i >= n)
      break;
    /* Fewer than eight bytes left: when the last eight of s are all plain,
     * those before i among them went out as they are, so write the eight
     * again over them, ending where s ends. */
    if (i + 8 > n && n >= 8 &&
        (memcpy(&w, p + n - 8, 8), json_plain8(w))) {
      memcpy(o - (i - (n - 8)), &w, 8);
      o += n - i;
      break;
    }
    while (i < n && json_plain_byte[p[i]])
      *o++ = (char)p[i++];
    if (i >= n)
      break;
    unsigned c = p[i];
    size_t k = c >= 0x80 ? ft_utf8_seq(p + i, n - i) : 0;
    if (k > 0) {
      memcpy(o, p + i, k);
      o += k;
      i += k;
      continue;
    }
    b->len = (size_t)(o - b->data);
    if (ft_buf_reserve(b, 6 + (n - i) + 1) != 0)
      return;
    o = b->data + b->len;
    *o++ = '\\';
    if (c == '"' || c == '\\') {
      *o++ = (char)c;
    } else if (c == '\n') {
      *o++ = 'n';
    } else if (c == '\r') {
      *o++ = 'r';
    } else if (c == '\t') {
      *o++ = 't';
    } else if (c < 0x20) {
      memcpy(o, "u00", 3);
      o[3] = hex[c >> 4];
      o[4] = hex[c & 15];
      o += 5;
    } else {
      memcpy(o, "ufffd", 5); /* invalid UTF-8 byte */
      o += 5;
    }
    i++;
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
}

/* Headers as one JSON object; a name that repeats gets its values joined
 * with ", " (RFC 9110's rule for combining field lines), in the place of
 * its first line. The name\0value\0 pairs are measured once into a table
 * (on the stack for the usual few dozen). Finding repeats is linear in the
 * number of lines, whatever they are: a 64-bit filter on length and first
 * and last bytes shows most responses have none; otherwise an open-
 * addressing hash table (hash.h's XXH3 over the name) links each line to the next
 * of its name. A response of 46,000 names took 12 s with the pairwise
 * search this replaced. */
typedef struct {
  const char *name, *value;
  size_t nlen, vlen;
  size_t next;  /* index + 1 of the next line of this name; 0: none */
  size_t last;  /* for the first line of a name: index of its last line */
  int repeat;   /* not the first line of its name */
} ft_hdr_ref;

static uint64_t name_hash(const char *s, size_t n) { return ft_hash64(s, n); }

/* Link lines of the same name (next, last, repeat) through a hash table
 * of at least 2n slots. Returns 0, or -1 when out of memory. */
static int link_repeats(ft_hdr_ref *h, size_t n, size_t *compares) {
  uint32_t local[256], *slot = local;
  size_t cap = 256;
  if (n >= UINT32_MAX / 2)
    return -1;
  while (cap < 2 * n)
    cap *= 2;
  if (cap > sizeof(local) / sizeof(local[0]) &&
      !(slot = malloc(cap * sizeof(*slot))))
    return -1;
  memset(slot, 0, cap * sizeof(*slot));
  for (size_t i = 0; i < n; i++) {
    size_t k = (size_t)name_hash(h[i].name, h[i].nlen) & (cap - 1);
    for (;; k = (k + 1) & (cap - 1)) {
      if (slot[k] == 0) {
        slot[k] = (uint32_t)(i + 1);
        h[i].last = i;
        break;
      }
      size_t j = slot[k] - 1;
      if (compares)
        ++*compares;
      if (h[j].nlen == h[i].nlen &&
          memcmp(h[j].name, h[i].name, h[i].nlen) == 0) {
        h[h[j].last].next = i + 1;
        h[j].last = i;
        h[i].repeat = 1;
        break;
      }
    }
  }
  if (slot != local)
    free(slot);
  return 0;
}

void ft_record_headers(ft_buf *b, const char *headers, size_t len,
                       size_t *compares) {
  ft_hdr_ref local[64], *h = local;
  size_t n = 0, cap = sizeof(local) / sizeof(local[0]);
  const char *end = headers ? headers + len : NULL;
  for (const char *p = headers; p && p < end;) {
    if (n == cap) {
      ft_hdr_ref *bigger = malloc(2 * cap * sizeof(*bigger));
      if (!bigger)
        break; /* out of memory: the headers so far */
      memcpy(bigger, h, n * sizeof(*h));
      if (h != local)
        free(h);
      h = bigger;
      cap *= 2;
    }
    h[n].name = p;
    h[n].nlen = strlen(p);
    h[n].value = p + h[n].nlen + 1;
    h[n].vlen = strlen(h[n].value);
    h[n].next = 0;
    h[n].repeat = 0;
    p = h[n].value + h[n].vlen + 1;
    n++;
  }
  ft_buf_putc(b, '{');
  /* A name repeated is rare: when no two names share a bucket of length
   * and first and last bytes, none is, and the search for repeats is
   * skipped. */
  uint64_t buckets = 0;
  int maybe_repeated = 0;
  for (size_t i = 0; i < n && !maybe_repeated; i++) {
    size_t l = h[i].nlen;
    unsigned k = l ? (unsigned)(l * 7 + (unsigned char)h[i].name[0] * 3 +
                                (unsigned char)h[i].name[l - 1])
                   : 0;
    maybe_repeated = (int)((buckets >> (k & 63)) & 1);
    buckets |= 1ull << (k & 63);
  }
  if (maybe_repeated && link_repeats(h, n, compares) != 0)
    b->oom = 1; /* each line then stands alone */
  ft_buf joined = {0};
  int first = 1;
  for (size_t i = 0; i < n; i++) {
    if (h[i].repeat)
      continue; /* written with the first of its name */
    if (!first)
      ft_buf_putc(b, ',');
    first = 0;
    ft_json_string(b, h[i].name, h[i].nlen);
    ft_buf_putc(b, ':');
    if (!h[i].next) {
      ft_json_string(b, h[i].value, h[i].vlen);
      continue;
    }
    joined.len = 0;
    ft_buf_put(&joined, h[i].value, h[i].vlen);
    for (size_t j = h[i].next; j; j = h[j - 1].next) {
      ft_buf_put(&joined, ", ", 2);
      ft_buf_put(&joined, h[j - 1].value, h[j - 1].vlen);
    }
    if (joined.oom)
      b->oom = 1;
    ft_json_string(b, joined.data ? joined.data : "", joined.len);
  }
  ft_buf_free(&joined);
  ft_buf_putc(b, '}');
  if (h != local)
    free(h);
}

/* ms with three decimals, from the nearest microsecond */
static void put_ms(ft_buf *b, double ms) {
  uint64_t us = ms > 0 ? (uint64_t)(ms * 1000.0 + 0.5) : 0;
  ft_buf_put_u64(b, us / 1000);
  char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                  (char)('0' + us % 10)};
  ft_buf_put(b, frac, 4);
}

void ft_record_write(ft_buf *b, const ft_request *req, const ft_response *res,
                     int flags) {
  FT_BUF_LIT(b, "{\"index\":");
  ft_buf_put_u64(b, req->index);
  FT_BUF_LIT(b, ",\"url\":");
  if (req->url)
    ft_json_string(b, req->url, strlen(req->url));
  else
    FT_BUF_LIT(b, "null");
  if (res->final_url && req->url && strcmp(res->final_url, req->url) != 0) {
    FT_BUF_LIT(b, ",\"final_url\":");
    ft_json_string(b, res->final_url, strlen(res->final_url));
  }
  if (res->status > 0) {
    FT_BUF_LIT(b, ",\"status\":");
    ft_buf_put_u64(b, (uint64_t)res->status);
  } else {
    FT_BUF_LIT(b, ",\"status\":null");
  }
  if (!(flags & FT_RECORD_NO_HEADERS) && res->status > 0) {
    FT_BUF_LIT(b, ",\"headers\":");
    ft_record_headers(b, res->headers, res->headers_len, NULL);
  }
  /* a too_large response's body was cut, and could be large: none */
  if (!(flags & FT_RECORD_NO_BODY) && res->status > 0 &&
      res->error != FT_ERR_TOO_LARGE) {
    if (ft_utf8_valid(res->body, res->body_len)) {
      FT_BUF_LIT(b, ",\"body\":");
      ft_json_string(b, res->body, res->body_len);
    } else {
      FT_BUF_LIT(b, ",\"body_base64\":\"");
      ft_base64_encode(b, res->body, res->body_len);
      ft_buf_putc(b, '"');
    }
  }
  FT_BUF_LIT(b, ",\"attempts\":");
  ft_buf_put_u64(b, res->attempts > 0 ? (uint64_t)res->attempts : 0);
  FT_BUF_LIT(b, ",\"elapsed_ms\":");
  put_ms(b, res->elapsed_ms);
  if (res->error == FT_ERR_NONE) {
    FT_BUF_LIT(b, ",\"error\":null");
  } else {
    FT_BUF_LIT(b, ",\"error\":{\"kind\":\"");
    ft_buf_puts(b, ft_errkind_name(res->error));
    FT_BUF_LIT(b, "\",\"message\":");
    const char *m = res->message ? res->message : "";
    ft_json_string(b, m, strlen(m));
    if (res->cause != FT_ERR_NONE) {
      FT_BUF_LIT(b, ",\"cause\":\"");
      ft_buf_puts(b, ft_errkind_name(res->cause));
      ft_buf_putc(b, '"');
    }
    ft_buf_putc(b, '}');
  }
  if (req->meta_json) {
    FT_BUF_LIT(b, ",\"meta\":");
    ft_buf_puts(b, req->meta_json);
  }
  FT_BUF_LIT(b, "}\n");
}
