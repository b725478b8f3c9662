/* input.h - the input lines of `fetchtree fetch`: one URL or JSON request per line, from files and standard input, read as the run has room. */
#ifndef FT_INPUT_H
#define FT_INPUT_H

#include <stddef.h>
#include <stdio.h>

/* Start with files set (the rest zero); ft_input_close when done. */
typedef struct ft_input {
  char **files; /* NULL-terminated; "-" is stdin */
  int cur;      /* the next file to open */
  FILE *f;      /* the file being read, or NULL */
  char *line;   /* getline's buffer */
  size_t cap;
  int eof;    /* the last file is read to its end */
  int failed; /* an input could not be opened or read to its end */
} ft_input;

/* Next line that is neither blank nor a comment (its first non-blank
 * character is '#'), with surrounding white space trimmed, or NULL at the
 * end of the last file. A file that cannot be opened or read (a directory
 * given as standard input, an I/O error) is said on stderr by name, sets
 * in->failed and is skipped: the files named were checked before the
 * run, but standard input and later failures cannot be. The line
 * returned (NUL-terminated, *len its length) is in->line's buffer, valid
 * until the next call. */
char *ft_input_next(ft_input *in, size_t *len);

/* Frees the line buffer and closes the file being read (standard input
 * stays open). */
void ft_input_close(ft_input *in);

#endif
