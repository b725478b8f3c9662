/* html.h - links and XPath over HTML and XML documents, on libxml2. */
#ifndef FT_HTML_H
#define FT_HTML_H

#include <stddef.h>

#include "strlist.h"

/* Appends to out the absolute URLs of the links in an HTML page, in document
 * order, each distinct URL once (duplicates are checked among the URLs this
 * call appends): the href of every <a> and <area> element, resolved with
 * ft_url_resolve against the href of the document's first <base> element
 * that has one (itself resolved against page_url), or else against
 * page_url. page_url may be NULL, and then only absolute hrefs count. Links
 * that do not resolve or are not http/https are skipped; fragments are
 * dropped. The recovering HTML parser takes any bytes: garbage or an empty
 * body gives whatever links it finds, maybe none. Nothing is printed.
 * Returns 0, FT_ENOMEM, FT_ERANGE (len > INT_MAX) or FT_EINVAL (out NULL,
 * or body NULL with len > 0); on error out is as it was. */
int ft_html_links(const char *body, size_t len, const char *page_url,
                  ft_strlist *out);

/* Evaluates the XPath 1.0 expression expr over the document (HTML parser
 * when is_xml == 0, XML parser otherwise; no network, no DTD loading, no
 * external entities) and appends the result to out as strings: for a
 * node-set, each node's string value in document order (xmlNodeGetContent:
 * an element's text, an attribute's value, a text node's text); for a
 * string, the string; for a number, XPath's string() form ("3", "0.5",
 * "NaN", "-Infinity"); for a boolean, "true" or "false". Nothing is
 * printed. Returns 0, FT_ENOMEM, FT_ERANGE ("document too large": len >
 * INT_MAX) or FT_EINVAL with a message in err (at most errlen bytes, err may
 * be NULL): "cannot parse document", "invalid XPath expression: <expr>
 * (<libxml2's reason>)", "XPath evaluation failed: <expr> (<reason>)"; on
 * error out is as it was. */
int ft_xpath(const char *body, size_t len, int is_xml, const char *expr,
             ft_strlist *out, char *err, size_t errlen);

#endif
