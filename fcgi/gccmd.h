/*
 * gccmd.h - the `gc` command: garbage collection of hosted content on the
 * storage the options name (core/ops/gc.h does the work; this prints it).
 *
 *   oci-registry [OPTIONS] STORAGE... gc [--dry-run] [--grace DURATION]
 *                                        [--delete-untagged]
 *
 * One line per object removed ("removed" or, with --dry-run, "would remove",
 * then its kind, key and size, tab-separated), then a summary line. Exit
 * status: 0 done, 1 a storage failure (the run stopped there), 2 a bad
 * command line.
 */
#ifndef FCGI_GCCMD_H
#define FCGI_GCCMD_H

#include "core/cache/evict.h"
#include "storage/storage.h"

/* Runs gc with the words after "gc" in argv[0..argc); returns the exit status. */
int fcgi_gc_command(int argc, char **argv, struct storage *st, struct oci_evictor *e);

#endif
