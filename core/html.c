/* html.c - links and XPath over HTML and XML documents, on libxml2. */

/* Design note.
 *
 * libxml2 does all the parsing: the recovering HTML parser (htmlReadMemory)
 * for web pages, the XML parser (xmlReadMemory) for feeds and sitemaps, and
 * its XPath 1.0 engine. This file walks the tree and turns results into
 * strings.
 *
 * Safety. Documents come from the network, so:
 *  - HTML is parsed with RECOVER|NOERROR|NOWARNING|NONET, plus HUGE:
 *    without it the parser stops at nesting depth 256, and pages with a few
 *    hundred unclosed <div>s are common enough that we would lose every
 *    link after them. HUGE only lifts size and depth limits there (the HTML
 *    parser has no entity declarations to amplify), the tree code is
 *    iterative (a million nested elements parse, query and free fine) and
 *    the body is at most INT_MAX bytes anyway.
 *  - XML is parsed with NONET|NOERROR|NOWARNING and without NOENT, DTDLOAD
 *    or HUGE, so an external entity (XXE: <!ENTITY e SYSTEM
 *    "file:///etc/passwd">) is never loaded, an entity reference to it has
 *    no content, and libxml2's limits on depth and entity nesting stay on.
 *    Internal entities are still expanded on demand; see "entity expansion
 *    limit" below for what that costs and how it is bounded.
 *  - libxml2 reports errors through process-wide (per-thread) handlers that
 *    print to stderr by default, and NOERROR does not reach every path
 *    (encoding errors, XPath errors). For the length of each call we install
 *    a no-op generic handler and a structured handler that keeps the first
 *    XPath message for err, then put the caller's handlers back. Nothing is
 *    ever printed.
 *  - libxml2 takes int lengths: bodies over INT_MAX bytes are refused.
 *  - Encoding: no encoding is forced; libxml2 follows a BOM or <meta
 *    charset>, else reads UTF-8 (the HTML parser falls back to Latin-1 on
 *    bytes that are not UTF-8). All strings we return are UTF-8.
 *
 * Links are gathered by an iterative walk in document order (no recursion,
 * so deeply nested garbage cannot exhaust the stack), after a first walk
 * that finds the first <base href>. Duplicates are found with a small
 * open-addressing set of list indices, local to the call. */

#include "html.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/entities.h>
#include <libxml/hash.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

#include "error.h"
#include "hash.h"
#include "url.h"

/* ---- keeping libxml2 quiet ---------------------------------------------- */

/* The caller's error handlers, saved for the length of one call, and the
 * first XPath error message seen meanwhile. */
typedef struct ft_html_quiet {
  xmlGenericErrorFunc generic;
  void *generic_ctx;
  xmlStructuredErrorFunc structured;
  void *structured_ctx;
  char xpath_msg[128];
} ft_html_quiet;

static void ft_html_generic_noop_(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

/* Structured handler: drops everything but keeps the first XPath message,
 * without its trailing newline. */
#if LIBXML_VERSION >= 21200
static void ft_html_structured_(void *ctx, const xmlError *e) {
#else
static void ft_html_structured_(void *ctx, xmlErrorPtr e) {
#endif
  ft_html_quiet *q = ctx;
  if (e == NULL || e->domain != XML_FROM_XPATH || e->message == NULL ||
      q->xpath_msg[0] != '\0')
    return;
  snprintf(q->xpath_msg, sizeof q->xpath_msg, "%s", e->message);
  size_t n = strlen(q->xpath_msg);
  while (n > 0 && (q->xpath_msg[n - 1] == '\n' || q->xpath_msg[n - 1] == ' '))
    q->xpath_msg[--n] = '\0';
}

/* Initialises libxml2 (idempotent), saves the caller's handlers and installs
 * ours. Pair with ft_html_quiet_end_. */
static void ft_html_quiet_begin_(ft_html_quiet *q) {
  xmlInitParser();
  q->generic = xmlGenericError;
  q->generic_ctx = xmlGenericErrorContext;
  q->structured = xmlStructuredError;
  q->structured_ctx = xmlStructuredErrorContext;
  q->xpath_msg[0] = '\0';
  xmlSetGenericErrorFunc(q, ft_html_generic_noop_);
  xmlSetStructuredErrorFunc(q, ft_html_structured_);
}

static void ft_html_quiet_end_(ft_html_quiet *q) {
  xmlSetGenericErrorFunc(q->generic_ctx, q->generic);
  xmlSetStructuredErrorFunc(q->structured_ctx, q->structured);
}

/* Parses body with the options described in the design note. NULL when the
 * parser gives up (or runs out of memory). len must be <= INT_MAX. */
static xmlDocPtr ft_html_parse_(const char *body, size_t len, int is_xml) {
  if (body == NULL)
    body = "";
  if (is_xml)
    return xmlReadMemory(body, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR |
                             XML_PARSE_NOWARNING);
  return htmlReadMemory(body, (int)len, NULL, NULL,
                        HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                            HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                            XML_PARSE_HUGE);
}

/* ---- links -------------------------------------------------------------- */

/* The node after n in document order below root, descending into elements
 * only; NULL at the end. Iterative, so any depth is fine. */
static xmlNodePtr ft_html_next_(xmlNodePtr n, xmlNodePtr root) {
  if (n->type == XML_ELEMENT_NODE && n->children != NULL)
    return n->children;
  while (n != NULL && n != root) {
    if (n->next != NULL)
      return n->next;
    n = n->parent;
  }
  return NULL;
}

static int ft_html_is_(xmlNodePtr n, const char *name) {
  return n->type == XML_ELEMENT_NODE && n->name != NULL &&
         xmlStrcasecmp(n->name, BAD_CAST name) == 0;
}

/* A set of list indices, keyed by the strings they point at. Slots hold
 * index + 1; 0 is empty. Kept at most half full. */
typedef struct ft_html_seen {
  size_t *slots;
  size_t cap; /* a power of two, or 0 */
  size_t n;
} ft_html_seen;

static uint64_t ft_html_hash_(const char *s) { return ft_hash_str(s); }

/* Adds index i (the string l->items[i]) unless an equal string is in the
 * set. Returns 1 if added, 0 if already there, FT_ENOMEM. */
static int ft_html_seen_add_(ft_html_seen *s, const ft_strlist *l, size_t i) {
  if (2 * (s->n + 1) > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    size_t *slots = calloc(cap, sizeof(size_t));
    if (slots == NULL)
      return FT_ENOMEM;
    for (size_t k = 0; k < s->cap; k++) {
      if (s->slots[k] == 0)
        continue;
      size_t j = ft_html_hash_(l->items[s->slots[k] - 1]) & (cap - 1);
      while (slots[j] != 0)
        j = (j + 1) & (cap - 1);
      slots[j] = s->slots[k];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
  }
  const char *str = l->items[i];
  size_t j = ft_html_hash_(str) & (s->cap - 1);
  while (s->slots[j] != 0) {
    if (strcmp(l->items[s->slots[j] - 1], str) == 0)
      return 0;
    j = (j + 1) & (s->cap - 1);
  }
  s->slots[j] = i + 1;
  s->n++;
  return 1;
}

/* The href of the first <base> with one, resolved against page_url, or a
 * copy of page_url (NULL when page_url is NULL). Returns 0 or FT_ENOMEM. */
static int ft_html_base_(xmlDocPtr doc, const char *page_url, char **out) {
  *out = NULL;
  xmlNodePtr root = (xmlNodePtr)doc;
  for (xmlNodePtr n = doc->children; n != NULL; n = ft_html_next_(n, root)) {
    if (!ft_html_is_(n, "base"))
      continue;
    xmlChar *href = xmlGetNoNsProp(n, BAD_CAST "href");
    if (href == NULL)
      continue;
    int rc = ft_url_resolve(page_url, (const char *)href, out, NULL, 0);
    xmlFree(href);
    if (rc == FT_ENOMEM)
      return rc;
    break; /* only the first <base href> counts, even when it is bad */
  }
  if (*out == NULL && page_url != NULL) {
    *out = strdup(page_url);
    if (*out == NULL)
      return FT_ENOMEM;
  }
  return 0;
}

int ft_html_links(const char *body, size_t len, const char *page_url,
                  ft_strlist *out) {
  if (out == NULL || (body == NULL && len > 0))
    return FT_EINVAL;
  if (len > INT_MAX)
    return FT_ERANGE;
  ft_html_quiet q;
  ft_html_quiet_begin_(&q);
  xmlDocPtr doc = ft_html_parse_(body, len, 0);
  if (doc == NULL) {
    ft_html_quiet_end_(&q);
    return 0;
  }
  size_t start = out->n;
  ft_html_seen seen = {NULL, 0, 0};
  char *base = NULL;
  int rc = ft_html_base_(doc, page_url, &base);
  xmlNodePtr root = (xmlNodePtr)doc;
  for (xmlNodePtr n = doc->children; rc == 0 && n != NULL;
       n = ft_html_next_(n, root)) {
    if (!ft_html_is_(n, "a") && !ft_html_is_(n, "area"))
      continue;
    xmlChar *href = xmlGetNoNsProp(n, BAD_CAST "href");
    if (href == NULL)
      continue;
    char *url = NULL;
    int r = ft_url_resolve(base, (const char *)href, &url, NULL, 0);
    xmlFree(href);
    if (r == FT_ENOMEM) {
      rc = r;
      break;
    }
    if (r != 0)
      continue;
    rc = ft_strlist_push(out, url, strlen(url));
    free(url);
    if (rc != 0)
      break;
    r = ft_html_seen_add_(&seen, out, out->n - 1);
    if (r < 0)
      rc = r;
    if (r <= 0)
      ft_strlist_truncate(out, out->n - 1);
  }
  if (rc != 0)
    ft_strlist_truncate(out, start);
  free(seen.slots);
  free(base);
  xmlFreeDoc(doc);
  ft_html_quiet_end_(&q);
  return rc;
}

/* ---- entity expansion limit ---------------------------------------------- */

/* Without NOENT, references to internal entities stay in the tree as
 * entity-reference nodes, and libxml2 expands them every time it takes a
 * string value (xmlNodeGetContent, XPath's string(), comparisons). libxml2's
 * own amplification checks count nested entities, not bytes, so one 100 KB
 * entity referenced 100,000 times parses fine and then costs XPath 10 GB of
 * copying. So before evaluating anything we measure the fully expanded size
 * of the document (one unit per node plus the bytes of its text, attribute
 * values included), each entity's size computed once and memoised, and
 * refuse documents above FT_HTML_EXPAND_FACTOR * len + FT_HTML_EXPAND_SLACK.
 * The walk stops as soon as the limit is passed, so it is linear in the
 * parsed size. Documents without entity declarations skip all of this. */

#define FT_HTML_EXPAND_FACTOR 2
#define FT_HTML_EXPAND_SLACK ((size_t)16 << 20)
#define FT_HTML_EXPAND_DEPTH 64 /* entity nesting; libxml2 stops at 40 */

typedef struct ft_html_expand {
  xmlDocPtr doc;
  xmlHashTablePtr memo; /* entity name -> expanded size + 1 */
  size_t limit;
  int depth;
} ft_html_expand;

static size_t ft_html_list_size_(ft_html_expand *x, xmlNodePtr first);

/* a + b, saturating at limit + 1. */
static size_t ft_html_add_(const ft_html_expand *x, size_t a, size_t b) {
  if (a > x->limit || b > x->limit - a)
    return x->limit + 1;
  return a + b;
}

/* The expanded size of a reference to the entity named name: its parsed
 * content's size, or its raw length when it has no parsed content. 0 for
 * unknown and predefined entities. Saturates at limit + 1. */
static size_t ft_html_entity_size_(ft_html_expand *x, const xmlChar *name) {
  xmlEntityPtr ent = xmlGetDocEntity(x->doc, name);
  if (ent == NULL || ent->etype == XML_INTERNAL_PREDEFINED_ENTITY)
    return 0;
  if (ent->children == NULL)
    return (size_t)(ent->length > 0 ? ent->length : 0);
  void *hit = xmlHashLookup(x->memo, ent->name);
  if (hit != NULL)
    return (size_t)(uintptr_t)hit - 1;
  if (x->depth >= FT_HTML_EXPAND_DEPTH)
    return x->limit + 1;
  x->depth++;
  size_t size = ft_html_list_size_(x, ent->children);
  x->depth--;
  /* a failed insert only costs a recomputation later */
  xmlHashAddEntry(x->memo, ent->name, (void *)(uintptr_t)(size + 1));
  return size;
}

/* The expanded size of the node list starting at first and of everything
 * below it (element children, attribute values, entity content). Walks
 * iteratively; recursion happens only per attribute and per entity level.
 * Saturates at limit + 1. */
static size_t ft_html_list_size_(ft_html_expand *x, xmlNodePtr first) {
  if (first == NULL)
    return 0;
  xmlNodePtr root = first->parent;
  size_t total = 0;
  for (xmlNodePtr n = first; n != NULL && total <= x->limit;
       n = ft_html_next_(n, root)) {
    total = ft_html_add_(x, total, 1);
    switch (n->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
    case XML_COMMENT_NODE:
    case XML_PI_NODE:
      if (n->content != NULL)
        total = ft_html_add_(x, total, strlen((const char *)n->content));
      break;
    case XML_ENTITY_REF_NODE:
      total = ft_html_add_(x, total, ft_html_entity_size_(x, n->name));
      break;
    case XML_ELEMENT_NODE:
      for (xmlAttrPtr a = n->properties; a != NULL && total <= x->limit;
           a = a->next) {
        if (x->depth >= FT_HTML_EXPAND_DEPTH)
          return x->limit + 1;
        x->depth++;
        total = ft_html_add_(x, total, ft_html_list_size_(x, a->children));
        x->depth--;
      }
      break;
    default:
      break;
    }
  }
  return total;
}

/* Returns 1 if doc's expanded size is within the limit for a body of len
 * bytes, 0 if not, FT_ENOMEM. */
static int ft_html_expansion_ok_(xmlDocPtr doc, size_t len) {
  if (doc->intSubset == NULL || doc->intSubset->entities == NULL ||
      xmlHashSize((xmlHashTablePtr)doc->intSubset->entities) <= 0)
    return 1;
  ft_html_expand x = {doc, xmlHashCreate(64), 0, 0};
  if (x.memo == NULL)
    return FT_ENOMEM;
  x.limit = FT_HTML_EXPAND_SLACK;
  if (len <= (SIZE_MAX - x.limit) / FT_HTML_EXPAND_FACTOR)
    x.limit += FT_HTML_EXPAND_FACTOR * len;
  size_t size = ft_html_list_size_(&x, doc->children);
  xmlHashFree(x.memo, NULL);
  return size <= x.limit;
}

/* ---- XPath -------------------------------------------------------------- */

/* Appends a libxml2 string (NULL counts as "") and frees it when owned. */
static int ft_html_push_xml_(ft_strlist *l, xmlChar *s, int owned) {
  const char *c = s != NULL ? (const char *)s : "";
  int rc = ft_strlist_push(l, c, strlen(c));
  if (owned && s != NULL)
    xmlFree(s);
  return rc;
}

/* Appends the strings of an XPath result to out. Returns 0 or FT_ENOMEM. */
static int ft_html_result_(xmlXPathObjectPtr res, ft_strlist *out) {
  switch (res->type) {
  case XPATH_NODESET: {
    xmlNodeSetPtr set = res->nodesetval;
    int n = set != NULL ? set->nodeNr : 0;
    for (int i = 0; i < n; i++) {
      int rc = ft_html_push_xml_(out, xmlNodeGetContent(set->nodeTab[i]), 1);
      if (rc != 0)
        return rc;
    }
    return 0;
  }
  case XPATH_STRING:
    return ft_html_push_xml_(out, res->stringval, 0);
  case XPATH_BOOLEAN:
    return ft_html_push_xml_(out, BAD_CAST(res->boolval ? "true" : "false"),
                             0);
  case XPATH_NUMBER: {
    xmlChar *s = xmlXPathCastNumberToString(res->floatval);
    if (s == NULL)
      return FT_ENOMEM;
    return ft_html_push_xml_(out, s, 1);
  }
  default: {
    xmlChar *s = xmlXPathCastToString(res);
    if (s == NULL)
      return FT_ENOMEM;
    return ft_html_push_xml_(out, s, 1);
  }
  }
}

/* "what: expr (libxml2's reason)", the reason left out when there is none. */
static void xpath_err(char *err, size_t errlen, const char *what,
                      const char *expr, const char *why) {
  if (why[0])
    ft_errf(err, errlen, "%s: %s (%s)", what, expr, why);
  else
    ft_errf(err, errlen, "%s: %s", what, expr);
}

int ft_xpath(const char *body, size_t len, int is_xml, const char *expr,
             ft_strlist *out, char *err, size_t errlen) {
  if (out == NULL || expr == NULL || (body == NULL && len > 0)) {
    ft_errf(err, errlen, "invalid argument");
    return FT_EINVAL;
  }
  if (len > INT_MAX) {
    ft_errf(err, errlen, "document too large");
    return FT_ERANGE;
  }
  ft_html_quiet q;
  ft_html_quiet_begin_(&q);
  int rc = FT_EINVAL;
  size_t start = out->n;
  xmlXPathContextPtr ctx = NULL;
  xmlXPathCompExprPtr comp = NULL;
  xmlXPathObjectPtr res = NULL;
  xmlDocPtr doc = ft_html_parse_(body, len, is_xml);
  if (doc == NULL) {
    ft_errf(err, errlen, "cannot parse document");
    goto done;
  }
  int ok = ft_html_expansion_ok_(doc, len);
  if (ok <= 0) {
    rc = ok < 0 ? ok : FT_EINVAL;
    ft_errf(err, errlen, "document too large once entities are expanded");
    goto done;
  }
  ctx = xmlXPathNewContext(doc);
  if (ctx == NULL) {
    rc = FT_ENOMEM;
    goto done;
  }
  ctx->node = (xmlNodePtr)doc;
  comp = xmlXPathCtxtCompile(ctx, BAD_CAST expr);
  if (comp == NULL) {
    xpath_err(err, errlen, "invalid XPath expression", expr, q.xpath_msg);
    goto done;
  }
  res = xmlXPathCompiledEval(comp, ctx);
  if (res == NULL) {
    xpath_err(err, errlen, "XPath evaluation failed", expr, q.xpath_msg);
    goto done;
  }
  rc = ft_html_result_(res, out);
  if (rc != 0)
    ft_strlist_truncate(out, start);
done:
  if (rc == FT_ENOMEM)
    ft_errf(err, errlen, "out of memory");
  if (res != NULL)
    xmlXPathFreeObject(res);
  if (comp != NULL)
    xmlXPathFreeCompExpr(comp);
  if (ctx != NULL)
    xmlXPathFreeContext(ctx);
  if (doc != NULL)
    xmlFreeDoc(doc);
  ft_html_quiet_end_(&q);
  return rc;
}
