/* repl.h - `fetchtree repl`: an interactive Lua prompt with ft loaded. */
#ifndef FT_REPL_H
#define FT_REPL_H

/* Run the REPL: argv[0] is "repl" (or the program, when fetchtree runs
 * with no arguments on a terminal). Reads statements from standard input,
 * with a prompt, line editing and history when it is a terminal, and
 * prints each result; returns the exit code (0 at end of input, 2 on a
 * usage error, 1 when Lua could not start). */
int ft_repl_main(int argc, char **argv);

#endif
