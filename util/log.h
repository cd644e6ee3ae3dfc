/*
 * log.h - one line per event on stderr, where nginx, spawn-fcgi, systemd or
 * the container runtime collect it.
 *
 * util/ is the floor of the house: every layer (fcgi/, core/, storage/) may
 * use it, and it uses none of them.
 *
 * Lines are written whole with one write(2), so lines of concurrent workers
 * never interleave; control characters are replaced, so a client's input
 * cannot forge lines. Nothing secret is ever passed here: callers log names,
 * references, statuses and sizes, never credentials or tokens.
 */
#ifndef OCI_LOG_H
#define OCI_LOG_H

enum oci_log_level {
    OCI_LOG_ERROR,
    OCI_LOG_WARN,
    OCI_LOG_INFO,
};

void oci_log(enum oci_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
