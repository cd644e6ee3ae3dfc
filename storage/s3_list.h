/*
 * s3_list.h - listings of the S3 backend, internal to storage/
 * (storage/s3_list.c): ListObjectsV2 pages read out of their XML, and the
 * walk over them, bounded against a broken or hostile server.
 */
#ifndef OCI_STORAGE_S3_LIST_H
#define OCI_STORAGE_S3_LIST_H

#include <stdbool.h>

#include "storage/s3_http.h"
#include "storage/storage.h"

/* A page larger than this is an error, not a listing cut short. */
#define S3_LIST_BODY_MAX (8 * 1024 * 1024)
/* Truncated pages in a row without a key (a <Contents> without one counts
 * as none): a server going round in circles. */
#define S3_LIST_EMPTY_MAX 8

/* A walk over the pages of one listing. */
struct s3_listing {
    const char *prefix; /* the backend's key prefix, cut from every key */
    storage_list_fn fn;
    void *arg;
    char *last_key;     /* greatest key so far: keys must increase; owned */
    unsigned long keys; /* keys read so far */
    char *token;        /* NextContinuationToken of a truncated page, else NULL; owned */
    int empty_pages;    /* truncated pages in a row that held no key */
    bool stopped;       /* fn asked to stop */
};

/*
 * Reads one ListObjectsV2 page (body is modified) and calls fn for each of
 * its keys that lies under the prefix and is a valid storage key. Returns
 * STORAGE_OK; or STORAGE_IO when the page cannot be the next one (a key not
 * after the previous page's, a continuation token repeated or missing, too
 * many empty pages): the walk must stop.
 */
enum storage_err s3_list_page(struct s3_listing *l, char *body);

/* Frees what a listing owns. */
void s3_listing_free(struct s3_listing *l);

/* The storage operation: every object under prefix, page by page. */
enum storage_err s3_list(struct storage *st, const char *prefix, storage_list_fn fn, void *arg);

#endif
