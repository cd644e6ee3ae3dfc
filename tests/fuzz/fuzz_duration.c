/*
 * fuzz_duration.c - fuzz target: durations ("30m", "14d") as core/upstream/config.c reads
 * them. An accepted duration is never negative.
 */
#include <stdlib.h>

#include "core/upstream/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    long seconds = -1;

    if (oci_duration_parse(text, &seconds) && seconds < 0)
        abort();
    free(text);
    return 0;
}
