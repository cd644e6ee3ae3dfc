/*
 * fs.h - the filesystem storage backend.
 *
 * Objects are files under a root directory at their key's path. Writers
 * write to root/tmp/ and commit with fsync + rename(2), so an object is
 * either absent or whole, even across a crash. A writer holds an flock on
 * its temporary file; files in tmp/ whose lock can be taken belong to no
 * live writer and are removed at open.
 */
#ifndef OCI_STORAGE_FS_H
#define OCI_STORAGE_FS_H

#include "storage/storage.h"

/*
 * Opens (creating if needed) the cache at root. On failure returns NULL and
 * writes one line naming the problem into err.
 */
struct storage *storage_fs_open(const char *root, char *err, size_t errlen);

#endif
