/*
 * fuzz.h - what every fuzz target in tests/fuzz/ defines: libFuzzer's entry
 * point. A target is linked either with libFuzzer (configure
 * --enable-fuzzing, clang) or with tests/fuzz/regress.c, which replays the
 * target's seeds and regressions in make check.
 *
 * Targets touch neither the network nor the disk, free all they allocate
 * (LeakSanitizer checks), and return 0.
 */
#ifndef OCI_FUZZ_H
#define OCI_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (caller frees); aborts when out of memory (input.c). */
char *fuzz_string(const uint8_t *data, size_t size);

#endif
