/*
 * log.c - timestamped, single-write log lines on stderr.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX 1024

static const char *level_name(enum oci_log_level level)
{
    switch (level) {
    case OCI_LOG_ERROR:
        return "error";
    case OCI_LOG_WARN:
        return "warn";
    case OCI_LOG_INFO:
        break;
    }
    return "info";
}

/* Request paths come from clients: no newline or escape sequence of theirs reaches the log. */
static void neutralise_controls(char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = '?';
}

void oci_log(enum oci_log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int head, body;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    /* The pid tells apart responders that share one log (spawn-fcgi -F N). */
    head = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%ld] ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    now.tv_nsec / 1000000, level_name(level), (long)getpid());
    va_start(ap, fmt);
    body = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
    va_end(ap);
    len = (size_t)head + (body < 0 ? 0 : (size_t)body);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: still one whole line */
    neutralise_controls(line + head, len - (size_t)head);
    line[len++] = '\n';
    /* A failed log write has nowhere better to be reported. */
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}
