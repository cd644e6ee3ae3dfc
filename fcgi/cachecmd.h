/*
 * cachecmd.h - the `cache` command: an operator's view of the storage the
 * options name, printed as text or JSON.
 *
 *   oci-registry [OPTIONS] STORAGE... cache ls [NS[/REPO]] [--json]
 *                                       cache du [--json]
 *                                       cache verify [--repair] [--json]
 *                                       cache evict --to SIZE [--json]
 *                                       cache rm REF [--json]
 *
 * The work is core/cache/inventory.h's and core/cache/evict.h's; this prints it. Exit
 * status: 0 done, 1 something was wrong with the cache (corrupt blobs,
 * nothing under REF, a storage failure), 2 a bad command line.
 */
#ifndef FCGI_CACHECMD_H
#define FCGI_CACHECMD_H

#include "core/cache/evict.h"
#include "storage/storage.h"

/* Runs the command of argv[0..argc) (the words after "cache"); returns the exit status. */
int fcgi_cache_command(int argc, char **argv, struct storage *st, struct oci_evictor *e);

#endif
