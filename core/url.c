/* url.c - URL resolution and normalisation on libcurl's URL API. */

/* Design note.
 *
 * All parsing, resolution and dot-segment removal is libcurl's (curl_url_*);
 * this file only prepares the input and fixes up what curl 7.88 leaves
 * undone. What curl does and does not do, as measured:
 *
 *  - scheme: lower-cased. host: NOT lower-cased ("Example.COM" is kept), so
 *    we read CURLUPART_HOST, lower-case ASCII letters and set it back.
 *  - port: an explicit default port is kept (":80", even ":0080" -> ":80")
 *    unless CURLU_NO_DEFAULT_PORT is passed to curl_url_get.
 *  - a relative ref made only of a fragment ("#top") or empty ("") resolves
 *    to the base *directory* ("/d/e/"), not to the base document as RFC 3986
 *    says. We cut the fragment off the ref ourselves first, and an empty
 *    ref then means "the base itself".
 *  - spaces: in an absolute URL they are an error ("Bad path") without
 *    CURLU_ALLOW_SPACE; in a relative ref, and with CURLU_URLENCODE, a space
 *    becomes "%20" in the path but "+" in the query. Browsers write "%20"
 *    everywhere, so we replace spaces with "%20" before curl sees them.
 *  - CURLU_URLENCODE percent-encodes non-ASCII bytes in absolute URLs (in
 *    lower-case hex, "%c3%a9"), as curl already does for relative refs, so
 *    one href gives one URL whichever way it was written. Existing escapes
 *    are kept as written ("%7e" is not decoded or upper-cased).
 *  - a ref with another scheme (mailto:, javascript:, data:) fails with
 *    "Unsupported URL scheme"; ftp: and file: parse fine. Either way we want
 *    the scheme's name in the message, so a ref's scheme is checked before
 *    curl runs (the RFC 3986 rule: a letter, then letters, digits, "+-.",
 *    then ":"), and the result's scheme after (the base may be ftp:).
 *
 * Input cleaning follows what a browser does with an href attribute: trim
 * leading and trailing spaces and control bytes, drop tabs and newlines. */

#include "url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Longest scheme name we report; longer ones are cut in messages only. */
#define FT_URL_SCHEME_MAX 32

/* Set-flags for every URL we hand to curl. */
#define FT_URL_SET_FLAGS CURLU_URLENCODE

/* Returns a malloc'd cleaned copy of s, as a browser cleans an href: leading
 * and trailing bytes <= 0x20 trimmed, tabs, CR and LF removed, everything
 * from the first '#' dropped, and each remaining space written as "%20".
 * NULL when out of memory. */
static char *ft_url_clean_(const char *s) {
  size_t n = strlen(s);
  while (n > 0 && (unsigned char)s[0] <= 0x20) {
    s++;
    n--;
  }
  const char *hash = memchr(s, '#', n);
  if (hash != NULL)
    n = (size_t)(hash - s);
  while (n > 0 && (unsigned char)s[n - 1] <= 0x20)
    n--;
  char *out = malloc(3 * n + 1);
  if (out == NULL)
    return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '\t' || c == '\n' || c == '\r')
      continue;
    if (c == ' ') {
      memcpy(out + j, "%20", 3);
      j += 3;
    } else {
      out[j++] = c;
    }
  }
  out[j] = '\0';
  return out;
}

static int ft_url_alpha_(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* If s starts with a scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" /
 * "." ) ":"), copies it lower-cased into buf (cut to FT_URL_SCHEME_MAX - 1
 * bytes) and returns 1; otherwise returns 0. */
static int ft_url_scheme_(const char *s, char buf[FT_URL_SCHEME_MAX]) {
  if (!ft_url_alpha_(s[0]))
    return 0;
  size_t i = 1;
  while (ft_url_alpha_(s[i]) || (s[i] >= '0' && s[i] <= '9') || s[i] == '+' ||
         s[i] == '-' || s[i] == '.')
    i++;
  if (s[i] != ':')
    return 0;
  size_t k = 0;
  for (; k < i && k < FT_URL_SCHEME_MAX - 1; k++) {
    char c = s[k];
    buf[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  buf[k] = '\0';
  return 1;
}

static int ft_url_web_scheme_(const char *scheme) {
  return strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
}

static int ft_url_code_(CURLUcode rc) {
  return rc == CURLUE_OUT_OF_MEMORY ? FT_ENOMEM : FT_EINVAL;
}

/* Lower-cases the ASCII letters of h's host in place. Returns 0, FT_ENOMEM
 * or FT_EINVAL (no host). */
static int ft_url_lower_host_(CURLU *h) {
  char *host = NULL;
  CURLUcode rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
  if (rc != CURLUE_OK)
    return ft_url_code_(rc);
  int changed = 0;
  for (char *p = host; *p != '\0'; p++) {
    if (*p >= 'A' && *p <= 'Z') {
      *p = (char)(*p - 'A' + 'a');
      changed = 1;
    }
  }
  rc = CURLUE_OK;
  if (changed)
    rc = curl_url_set(h, CURLUPART_HOST, host, 0);
  curl_free(host);
  return rc == CURLUE_OK ? 0 : ft_url_code_(rc);
}

/* The host of h is one fetchtree can judge as curl will connect to it: no
 * '%' (curl keeps an escape it cannot decode into a host, "o%m" becomes
 * "o%25m", a name no resolver has, and that "o%m" and "o%25m" would then
 * be two policy hosts for one name) and no IPv6 zone ID (curl's host part
 * leaves it out, so the host in the URL string and the host connected to
 * would differ). Returns 0, FT_ENOMEM or FT_EINVAL with a message in err. */
static int ft_url_check_host_(CURLU *h, char *err, size_t errlen) {
  char *host = NULL, *zone = NULL;
  CURLUcode rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
  if (rc != CURLUE_OK)
    return ft_url_code_(rc);
  int ret = 0;
  if (strchr(host, '%') != NULL) {
    ft_errf(err, errlen, "invalid URL: a '%%' in the host");
    ret = FT_EINVAL;
  } else if (curl_url_get(h, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
    ft_errf(err, errlen, "invalid URL: an IPv6 zone ID in the host");
    ret = FT_EINVAL;
  }
  curl_free(host);
  curl_free(zone);
  return ret;
}

/* Sets a cleaned copy of url on h, which resolves it against the URL h
 * already holds, if any. An empty cleaned url leaves h as it is. Returns 0
 * or the CURLUcode of the failure, with CURLUE_OUT_OF_MEMORY for our own
 * allocation failure. */
static CURLUcode ft_url_set_clean_(CURLU *h, const char *url) {
  char *clean = ft_url_clean_(url);
  if (clean == NULL)
    return CURLUE_OUT_OF_MEMORY;
  CURLUcode rc = CURLUE_OK;
  if (clean[0] != '\0')
    rc = curl_url_set(h, CURLUPART_URL, clean, FT_URL_SET_FLAGS);
  free(clean);
  return rc;
}

/* ---- already normal ----------------------------------------------------
 * Most URLs a crawl emits are already what ft_url_resolve would return, and
 * a trip through curl's URL API (a handle, a parse, three copies) costs
 * more than the rest of a request's bookkeeping. ft_url_is_normal accepts a
 * deliberately narrow form that curl provably leaves as it is, and sends
 * everything else the long way:
 *   http:// or https:// in lower case; a host of lower-case letters,
 *   digits, '-' and '.', a dotted quad when it starts with a digit (curl
 *   rewrites "127.1" and "0x7f.1"); an optional port of 1-5 digits, no
 *   leading zero, not the scheme's default; then '/' and a path and query
 *   of RFC 3986 unreserved and sub-delimiter characters, ':', '@', '/',
 *   '?' and %HH escapes, with no "." or ".." segment and no empty query.
 * tests/c/test_url.c checks it against the long way on hand-picked and
 * generated URLs, and every byte value in a path and a host.
 *
 * Byte classes of the narrow form (0x80 and up are neither):
 * FT_URL_HOST  a host's characters here: lower-case letters, digits, - .
 * FT_URL_PLAIN a path's or query's characters but '/', '?' and '%':
 *              letters, digits and -._~!$&'()*+,;=:@ */
#define FT_URL_HOST 1
#define FT_URL_PLAIN 2
static const unsigned char ft_url_class_[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 2, 0, 0, 2, 0, 2, 2, 2, 2, 2, 2, 2, 3, 3, 0, /* 0x20 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 0, 2, 0, 0, /* 0x30 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x40 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, /* 0x50 */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x60 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 2, 0, /* 0x70 */
};

static int ft_url_hex_(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* h[0..n) is a dotted quad of decimal octets without leading zeros. */
static int ft_url_quad_(const char *h, size_t n) {
  int parts = 0;
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    unsigned v = 0;
    while (i < n && h[i] >= '0' && h[i] <= '9' && i - start < 3)
      v = v * 10 + (unsigned)(h[i++] - '0');
    if (i == start || v > 255 || (h[start] == '0' && i - start > 1))
      return 0;
    parts++;
    if (i < n && h[i++] != '.')
      return 0;
    if (i == n && h[n - 1] == '.')
      return 0;
  }
  return parts == 4;
}

int ft_url_is_normal(const char *u, size_t n, size_t *host_off,
                     size_t *host_len) {
  size_t i;
  unsigned dflt;
  if (n > 7 && memcmp(u, "http://", 7) == 0) {
    i = 7;
    dflt = 80;
  } else if (n > 8 && memcmp(u, "https://", 8) == 0) {
    i = 8;
    dflt = 443;
  } else {
    return 0;
  }
  size_t h0 = i;
  while (i < n && (ft_url_class_[(unsigned char)u[i]] & FT_URL_HOST))
    i++;
  size_t hn = i - h0;
  if (hn == 0 || (u[h0] >= '0' && u[h0] <= '9' && !ft_url_quad_(u + h0, hn)))
    return 0;
  if (i < n && u[i] == ':') {
    size_t p0 = ++i;
    unsigned port = 0;
    while (i < n && u[i] >= '0' && u[i] <= '9' && i - p0 < 5)
      port = port * 10 + (unsigned)(u[i++] - '0');
    if (i == p0 || u[p0] == '0' || port > 65535 || port == dflt)
      return 0;
  }
  if (i >= n || u[i] != '/')
    return 0;
  int in_query = 0;
  size_t seg = ++i; /* start of the current path segment */
  for (;;) {
    while (i < n && (ft_url_class_[(unsigned char)u[i]] & FT_URL_PLAIN))
      i++;
    if (i < n && u[i] == '%') {
      if (i + 2 >= n || !ft_url_hex_((unsigned char)u[i + 1]) ||
          !ft_url_hex_((unsigned char)u[i + 2]))
        return 0;
      i += 3;
      continue;
    }
    if (i < n && u[i] != '/' && u[i] != '?')
      return 0; /* not in the narrow form (a NUL inside included) */
    if (!in_query) { /* the end of a path segment */
      size_t len = i - seg;
      if ((len == 1 && u[seg] == '.') ||
          (len == 2 && u[seg] == '.' && u[seg + 1] == '.'))
        return 0;
      seg = i + 1;
      if (i < n && u[i] == '?') {
        in_query = 1;
        if (i + 1 == n)
          return 0; /* an empty query */
      }
    }
    if (i >= n)
      break;
    i++;
  }
  if (host_off)
    *host_off = h0;
  if (host_len)
    *host_len = hn;
  return 1;
}

void ft_url_host_span(const char *norm, size_t *off, size_t *len) {
  const char *a = strstr(norm, "://");
  a = a ? a + 3 : norm;
  size_t alen = strcspn(a, "/?#");
  const char *at = NULL;
  for (const char *p = a; p < a + alen; p++)
    if (*p == '@')
      at = p;
  const char *h = at ? at + 1 : a;
  size_t hlen = (size_t)(a + alen - h);
  if (hlen > 0 && h[0] == '[') {
    const char *close = memchr(h, ']', hlen);
    hlen = close ? (size_t)(close - h) + 1 : hlen;
  } else {
    const char *colon = memchr(h, ':', hlen);
    if (colon)
      hlen = (size_t)(colon - h);
  }
  *off = (size_t)(h - norm);
  *len = hlen;
}

/* rc's error code (ft_url_code_), with "<what>: <curl's reason>" in err. */
static int ft_url_fail_(CURLUcode rc, const char *what, char *err,
                        size_t errlen) {
  ft_errf(err, errlen, "%s: %s", what, curl_url_strerror(rc));
  return ft_url_code_(rc);
}

/* Whether ref can be resolved at all, before curl sees it: a scheme it
 * starts with (leading blanks skipped) must be http or https, and without
 * one there must be a base. Sets *absolute to whether ref has a scheme.
 * Returns 0, or FT_EINVAL with a message in err. */
static int ft_url_check_ref_(const char *base, const char *ref, int *absolute,
                             char *err, size_t errlen) {
  const char *r = ref;
  while ((unsigned char)*r != 0 && (unsigned char)*r <= 0x20)
    r++;
  char scheme[FT_URL_SCHEME_MAX];
  *absolute = ft_url_scheme_(r, scheme);
  if (*absolute && !ft_url_web_scheme_(scheme)) {
    ft_errf(err, errlen, "scheme not allowed: %s", scheme);
    return FT_EINVAL;
  }
  if (!*absolute && (base == NULL || base[0] == '\0')) {
    ft_errf(err, errlen, "not an absolute URL: %s", ref);
    return FT_EINVAL;
  }
  return 0;
}

/* Sets the empty handle h to ref, resolved against base unless absolute,
 * both cleaned as a browser cleans an href, with no fragment; the result's
 * scheme (a relative ref takes the base's) must be http or https. Returns
 * 0, FT_ENOMEM or FT_EINVAL with a message in err. */
static int ft_url_parse_(CURLU *h, const char *base, const char *ref,
                         int absolute, char *err, size_t errlen) {
  CURLUcode rc;
  if (!absolute && (rc = ft_url_set_clean_(h, base)) != CURLUE_OK)
    return ft_url_fail_(rc, "invalid base URL", err, errlen);
  if ((rc = ft_url_set_clean_(h, ref)) != CURLUE_OK)
    return ft_url_fail_(rc, "invalid URL", err, errlen);
  curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
  char *scheme = NULL;
  if ((rc = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK)
    return ft_url_fail_(rc, "invalid URL", err, errlen);
  int ret = 0;
  if (!ft_url_web_scheme_(scheme)) {
    ft_errf(err, errlen, "scheme not allowed: %.*s", FT_URL_SCHEME_MAX - 1,
            scheme);
    ret = FT_EINVAL;
  }
  curl_free(scheme);
  return ret;
}

/* Normalises the URL h holds to a fixed point: curl's own output, parsed
 * again, must come back the same, or the URL fetched (curl parses the
 * string again) would not be the one judged here. Each round lower-cases
 * the host and refuses one fetchtree cannot judge (ft_url_check_host_).
 * One round is not always enough: a host curl decodes ("5%34" -> "54") is
 * read as a number only on the next parse ("0.0.0.54"). Two rounds reach
 * it for every input we know of; the third is a margin. test_url checks
 * the fixed point on generated URLs. Returns 0 with *out set (free it with
 * curl_free), FT_ENOMEM or FT_EINVAL with a message in err. */
static int ft_url_fixed_point_(CURLU *h, char **out, char *err, size_t errlen) {
  char *s = NULL;
  int ret;
  for (int round = 0;; round++) {
    ret = ft_url_lower_host_(h);
    if (ret != 0) {
      ft_errf(err, errlen, ret == FT_ENOMEM ? "out of memory" : "no host");
      break;
    }
    ret = ft_url_check_host_(h, err, errlen);
    if (ret != 0)
      break;
    char *again = NULL;
    CURLUcode rc =
        curl_url_get(h, CURLUPART_URL, &again, CURLU_NO_DEFAULT_PORT);
    if (rc != CURLUE_OK) {
      ret = ft_url_fail_(rc, "invalid URL", err, errlen);
      break;
    }
    /* a URL in the narrow normal form is one curl leaves as it is (see
     * ft_url_is_normal): most results are, and need no second parse */
    int stable = (s != NULL && strcmp(s, again) == 0) ||
                 ft_url_is_normal(again, strlen(again), NULL, NULL);
    curl_free(s);
    s = again;
    if (stable) {
      *out = s;
      return 0;
    }
    if (round == 2) {
      ft_errf(err, errlen, "invalid URL: it does not normalise");
      ret = FT_EINVAL;
      break;
    }
    rc = curl_url_set(h, CURLUPART_URL, s, FT_URL_SET_FLAGS);
    if (rc != CURLUE_OK) {
      ret = ft_url_fail_(rc, "invalid URL", err, errlen);
      break;
    }
  }
  curl_free(s);
  return ret;
}

/* The caller must not pass NULL for ref or out. */
int ft_url_resolve(const char *base, const char *ref, char **out, char *err,
                   size_t errlen) {
  if (ref == NULL || out == NULL) {
    ft_errf(err, errlen, "invalid argument");
    return FT_EINVAL;
  }
  int absolute;
  int ret = ft_url_check_ref_(base, ref, &absolute, err, errlen);
  if (ret != 0)
    return ret;
  CURLU *h = curl_url();
  if (h == NULL)
    return FT_ENOMEM;
  char *s = NULL;
  ret = ft_url_parse_(h, base, ref, absolute, err, errlen);
  if (ret == 0)
    ret = ft_url_fixed_point_(h, &s, err, errlen);
  if (ret == 0) {
    char *copy = strdup(s);
    if (copy == NULL)
      ret = FT_ENOMEM;
    else
      *out = copy;
  }
  if (ret == FT_ENOMEM)
    ft_errf(err, errlen, "out of memory");
  curl_free(s);
  curl_url_cleanup(h);
  return ret;
}

int ft_url_host(const char *url, char **out) {
  if (url == NULL || out == NULL)
    return FT_EINVAL;
  CURLU *h = curl_url();
  if (h == NULL)
    return FT_ENOMEM;
  int ret;
  char *host = NULL;
  char *clean = ft_url_clean_(url);
  if (clean == NULL) {
    ret = FT_ENOMEM;
    goto done;
  }
  CURLUcode rc = curl_url_set(h, CURLUPART_URL, clean,
                              FT_URL_SET_FLAGS | CURLU_NON_SUPPORT_SCHEME);
  if (rc == CURLUE_OK)
    rc = curl_url_get(h, CURLUPART_HOST, &host, 0);
  if (rc != CURLUE_OK) {
    ret = ft_url_code_(rc);
    goto done;
  }
  if (host[0] == '\0') {
    ret = FT_EINVAL;
    goto done;
  }
  char *copy = strdup(host);
  if (copy == NULL) {
    ret = FT_ENOMEM;
    goto done;
  }
  for (char *p = copy; *p != '\0'; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  *out = copy;
  ret = 0;
done:
  free(clean);
  curl_free(host);
  curl_url_cleanup(h);
  return ret;
}

int ft_url_check(const char *url, char *err, size_t errlen) {
  if (ft_url_is_normal(url, strlen(url), NULL, NULL))
    return 0; /* the common plain form, known good without curl */
  int rc = FT_EINVAL;
  char *scheme = NULL;
  CURLU *u = curl_url();
  if (!u) {
    snprintf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK) {
    snprintf(err, errlen, "bad URL: %s", curl_url_strerror(uc));
    goto cleanup;
  }
  uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  if (uc != CURLUE_OK) {
    snprintf(err, errlen, "bad URL: %s", curl_url_strerror(uc));
    goto cleanup;
  }
  if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
    snprintf(err, errlen, "scheme not allowed: %s (only http and https)",
             scheme);
    goto cleanup;
  }
  rc = 0;
cleanup:
  curl_free(scheme);
  curl_url_cleanup(u);
  return rc;
}
