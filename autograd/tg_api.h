/* tg_api.h — the mark of a public function: TG_API.
 *
 * The libraries are compiled with hidden visibility, so only declarations
 * marked TG_API leave libtapegrad.so and libtapegrad-plot.so; everything
 * else (helpers shared between files, the GEMM planner) stays inside.
 * Every declaration of an installed header carries it, and the exports
 * test compares the two lists both ways. Nothing else belongs here.
 */
#ifndef TG_API_H
#define TG_API_H

#define TG_API __attribute__((visibility("default")))

#endif
