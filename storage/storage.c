/*
 * storage.c - what all storage backends share: key checks and error names.
 */
#include "autoconfig.h"

#include <string.h>

#include "storage/storage.h"

const char *storage_strerror(enum storage_err err)
{
    switch (err) {
    case STORAGE_OK:
        return "ok";
    case STORAGE_NOT_FOUND:
        return "not found";
    case STORAGE_TOO_LARGE:
        return "object too large";
    case STORAGE_BAD_KEY:
        return "invalid key";
    case STORAGE_NO_MEMORY:
        return "out of memory";
    case STORAGE_EXISTS:
        return "already exists";
    case STORAGE_IN_PROGRESS:
        return "being written";
    case STORAGE_ABORTED:
        return "writer gave up";
    case STORAGE_FULL:
        return "out of space";
    case STORAGE_IO:
        break;
    }
    return "storage failure";
}

bool storage_keep_if_touched_since(void *cutoff, const char *key, const struct storage_info *info)
{
    (void)key;
    return info->mtime >= *(const time_t *)cutoff;
}

bool storage_key_valid(const char *key)
{
    const char *c = key;

    if (*key == '\0')
        return false;
    for (;;) {
        size_t len = strcspn(c, "/");

        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (c[len] == '\0')
            return true;
        c += len + 1;
    }
}
