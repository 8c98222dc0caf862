// A batch job: counts the lines, words and bytes of its stdin, like `wc`, and reports them with
// its arguments. Built as a wasip1 command module; Shoal runs it as a Job.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  long lines = 0, words = 0, bytes = 0;
  int c, in_word = 0;
  while ((c = getchar()) != EOF) {
    bytes++;
    if (c == '\n') lines++;
    if (isspace(c)) {
      in_word = 0;
    } else if (!in_word) {
      in_word = 1;
      words++;
    }
  }
  const char *title = argc > 1 ? argv[1] : "report";
  const char *run = getenv("SHOAL_JOB_RUN");
  printf("%s (run %s): %ld lines, %ld words, %ld bytes\n", title, run ? run : "?", lines, words, bytes);
  return 0;
}
