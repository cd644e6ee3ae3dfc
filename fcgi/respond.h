/*
 * respond.h - writes answers on a FastCGI request.
 *
 * Carries out a plan of core/registry.h on a libfcgi request: a head and a
 * body from memory, a stored object handed to the front server
 * (X-Accel-Redirect for nginx, X-Sendfile for lighttpd), or a fetch whose
 * answer streams out as the upstream delivers it.
 */
#ifndef FCGI_RESPOND_H
#define FCGI_RESPOND_H

#include <fcgiapp.h>
#include <stdbool.h>

#include "core/registry.h"
#include "fcgi/options.h"

/* nginx's internal location that maps to the cache root (contrib/nginx). */
#define FCGI_ACCEL_PREFIX "/_oci_cache/"
/* nginx's internal location that proxies X-Oci-Presigned-Url (S3 storage). */
#define FCGI_S3_ACCEL_PREFIX "/_oci_s3/"

/* --s3-redirect: answer hits stored in S3 with a 307 to a presigned URL. */
void fcgi_respond_set_s3_redirect(bool on);

/* --front-cache-time: the longest nginx may keep an answer (X-Accel-Expires); 0: never. */
void fcgi_respond_set_front_cache_time(long seconds);

/* Answers the request req according to plan, fetching from the upstream if the plan says so. */
void fcgi_respond(FCGX_Request *req, enum fcgi_front front, const struct oci_registry *reg,
                  struct oci_plan *plan);

#endif
