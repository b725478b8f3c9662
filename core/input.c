/* input.c - the input lines of `fetchtree fetch`: blank lines and comments skipped, white space trimmed, file after file (pure C). */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

char *ft_input_next(ft_input *in, size_t *len) {
  for (;;) {
    if (!in->f) {
      const char *name = in->files[in->cur];
      if (!name) {
        in->eof = 1;
        return NULL;
      }
      in->cur++;
      in->f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
      if (!in->f) {
        fprintf(stderr, "fetchtree: %s: %s\n", name, strerror(errno));
        in->failed = 1;
        continue;
      }
    }
    errno = 0;
    ssize_t n = getline(&in->line, &in->cap, in->f);
    if (n < 0) {
      if (ferror(in->f)) {
        const char *name = in->files[in->cur - 1];
        fprintf(stderr, "fetchtree: %s: %s\n",
                strcmp(name, "-") == 0 ? "standard input" : name,
                strerror(errno ? errno : EIO));
        in->failed = 1;
      }
      if (in->f != stdin)
        fclose(in->f);
      in->f = NULL;
      continue;
    }
    char *s = in->line;
    char *e = s + n;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
      s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                     e[-1] == '\n'))
      e--;
    if (s == e || *s == '#')
      continue;
    *e = '\0';
    *len = (size_t)(e - s);
    return s;
  }
}

void ft_input_close(ft_input *in) {
  free(in->line);
  in->line = NULL;
  in->cap = 0;
  if (in->f && in->f != stdin)
    fclose(in->f);
  in->f = NULL;
}
