/*
 * server.h - the FastCGI accept loop: a pool of worker threads.
 *
 * Each worker blocks in FCGX_Accept_r on the shared listening socket and
 * handles one request at a time from start to end, so a slow upstream
 * download holds only its own worker while the others go on answering
 * cache hits. nginx keeps FastCGI connections alive (fastcgi_keep_conn), so
 * a worker may also wait for the next request on its kept connection.
 */
#ifndef FCGI_SERVER_H
#define FCGI_SERVER_H

#include "core/registry.h"
#include "fcgi/options.h"

struct fcgi_server;

/*
 * Opens the listening socket: "unix:PATH", "HOST:PORT", ":PORT", or NULL
 * for the socket inherited on fd 0. Returns the fd, or -1 after printing
 * one line naming the problem.
 */
int fcgi_server_listen(const char *spec);

/* Starts the workers. Returns NULL (after logging) when threads cannot start. */
struct fcgi_server *fcgi_server_start(int listen_fd, int workers, enum fcgi_front front,
                                      const struct oci_registry *reg);

/*
 * Stops taking requests, lets every request in progress finish, and frees
 * the server. Idle workers are woken with SIGUSR1 (which the server
 * reserves); the listening socket stays open for others that share it.
 */
void fcgi_server_stop(struct fcgi_server *server);

#endif
