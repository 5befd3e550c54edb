/* outside_plot.c — a program that draws, built against an installed
 * tapegrad-plot.
 *
 * The install test compiles it with nothing but `pkg-config --cflags
 * --libs tapegrad-plot` and runs it in a scratch directory: plot.h must be
 * self-contained beside the engine's headers, and libtapegrad-plot must
 * link (it alone brings cairo) and draw. It plots a line and checks that
 * the PNG exists and starts with the PNG signature.
 */
#include <stdio.h>
#include <string.h>

#include <plot.h>
#include <tapegrad.h>

int main(void) {
  static const double y[] = {3, 1, 4, 1, 5};
  tg_figure *f = tg_figure_new(1, 1, 160, 120);
  tg_axes_line(tg_figure_axes(f, 0, 0), NULL, y, 5, "y", NULL);
  tg_error err = {0};
  if (tg_figure_save(f, "outside.png", &err) != TG_OK) {
    fprintf(stderr, "outside_plot: %s\n", err.msg);
    tg_figure_free(f);
    return 1;
  }
  tg_figure_free(f);
  tg_plot_release_caches(); /* cairo's and fontconfig's, for the leak checker */

  unsigned char sig[8] = {0};
  FILE *png = fopen("outside.png", "rb");
  size_t got = png ? fread(sig, 1, sizeof sig, png) : 0;
  if (png)
    fclose(png);
  if (got != sizeof sig || memcmp(sig, "\x89PNG\r\n\x1a\n", sizeof sig) != 0) {
    fprintf(stderr, "outside_plot: outside.png is not a PNG\n");
    return 1;
  }
  printf("outside_plot: drew outside.png\n");
  return 0;
}
