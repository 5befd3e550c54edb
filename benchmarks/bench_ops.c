/* bench_ops.c — placeholder until the op benchmarks land. */
int main(void) { return 0; }
