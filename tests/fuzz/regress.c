/*
 * regress.c - replays a fuzz target's inputs without libFuzzer, so that
 * every seed and every crash input ever found runs in make check with the
 * normal (gcc, ASan+UBSan) build.
 *
 *   <target>_regress            every file of tests/fuzz/<target>/seeds
 *                               and .../regressions under $top_srcdir
 *                               (default "."); the target is the
 *                               program's name without "_regress"
 *   <target>_regress FILE...    those files
 *
 * Prints TAP, one test point per file. A crash or a sanitizer report ends
 * the process, which the TAP driver reports as an error naming the last
 * file begun (printed as a comment before it runs).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

#define SUFFIX "_regress"

static int count;

/* Reads path whole (caller frees); NULL when it cannot. */
static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL, *grown;
    size_t cap = 0, n;

    *len = 0;
    if (f == NULL)
        return NULL;
    do {
        if (*len == cap) {
            cap = cap ? cap * 2 : 4096;
            if ((grown = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
    } while (n > 0);
    fclose(f);
    return buf;
}

static void replay(const char *path)
{
    size_t len;
    uint8_t *buf;

    printf("# %s\n", path);
    fflush(stdout);
    buf = read_all(path, &len);
    if (buf != NULL)
        LLVMFuzzerTestOneInput(buf, len);
    printf("%sok %d - %s\n", buf != NULL ? "" : "not ", ++count, path);
    free(buf);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of dir, in name order; a missing dir holds none. */
static void replay_dir(const char *top, const char *target, int target_len, const char *sub)
{
    char dir[4096], path[8192];
    struct dirent **names;
    int n, i;

    snprintf(dir, sizeof(dir), "%s/tests/fuzz/%.*s/%s", top, target_len, target, sub);
    n = scandir(dir, &names, NULL, by_name);
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            replay(path);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
}

int main(int argc, char **argv)
{
    const char *top = getenv("top_srcdir"), *slash = strrchr(argv[0], '/');
    const char *target = slash != NULL ? slash + 1 : argv[0];
    int i, len = (int)strlen(target) - (int)strlen(SUFFIX);

    if (len <= 0 || strcmp(target + len, SUFFIX) != 0) {
        fprintf(stderr, "%s: the program's name must be <target>" SUFFIX "\n", argv[0]);
        return 2;
    }
    if (argc > 1) {
        for (i = 1; i < argc; i++)
            replay(argv[i]);
    } else {
        replay_dir(top != NULL ? top : ".", target, len, "seeds");
        replay_dir(top != NULL ? top : ".", target, len, "regressions");
    }
    printf("1..%d\n", count);
    return count > 0 ? 0 : 1;
}
