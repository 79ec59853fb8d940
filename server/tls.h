/*
 * tls.h -- TLS for client connections (OpenSSL), and the byte transport a
 * connection reads and writes through: a plain socket or a TLS session.
 *
 * The server holds one struct tls_server: the current SSL_CTX (the
 * certificate chain, key, CA list and protocol settings of -Z and -o
 * ssl_*) and the TLS counters.  A reload (SIGHUP, "refresh_certs") builds
 * a complete new context from the files and swaps it in only if every
 * step worked, so a failed reload keeps the old certificate.  Sessions
 * already open keep the context they started with (OpenSSL counts its
 * references); new connections take the current one.
 *
 * A connection reads and writes through a struct conn_io: readv and
 * writev functions and their context, chosen when the connection is
 * created.  conn.c's parsing and dispatch never see which transport it
 * is.  The TLS transport's handshake is non-blocking and driven by the
 * connection's libevent read/write events (tls_handshake says which it
 * waits for); SSL_read may hold decrypted bytes the socket no longer
 * shows as readable, which conn_io.pending reports so reads do not stall.
 *
 * Locking: tls_server.lock guards the context pointer and the refresh
 * time; counters are atomics.  A struct tls_conn belongs to its
 * connection's worker thread.
 */
#ifndef CACHED_TLS_H
#define CACHED_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "options.h"

/* Exit status for configuration errors (sysexits' EX_CONFIG): a
 * certificate, key, CA file or cipher list that cannot be used. */
#define EXIT_CONFIG 78

struct tls_server;
struct tls_conn;

/* A connection's transport.  readv/writev behave like readv(2)/writev(2)
 * on a non-blocking socket: bytes moved, 0 at end of input, -1 with errno
 * (EAGAIN when it would block).  A TLS transport may need the socket
 * writable to make progress on a read (and the other way round):
 * want_write then says so. */
struct conn_io {
	ssize_t		(*readv)(void *ctx, const struct iovec *iov, int cnt);
	ssize_t		(*writev)(void *ctx, const struct iovec *iov, int cnt);
	void		*ctx;
	struct tls_conn	*tls;		/* NULL: plain socket */
};

/* The plain-socket transport on *fd. */
void	conn_io_plain(struct conn_io *io, int *fd);

/* Handshake progress. */
enum tls_hs {
	TLS_HS_DONE,		/* the session is up */
	TLS_HS_WANT_READ,	/* call again once the socket is readable */
	TLS_HS_WANT_WRITE,	/* call again once it is writable */
	TLS_HS_FAILED		/* close the connection */
};

/* Builds the server context from opts (-Z and -o ssl_*); NULL after
 * writing why into err (cap bytes).  Call only when opts->ssl_enabled. */
struct tls_server *tls_server_create(const struct options *opts, char *err,
	    size_t cap);
/* Frees the context; sessions still open keep their own reference. */
void	tls_server_free(struct tls_server *t);
/* Reloads certificate chain, key and CA list from their files into a new
 * context and swaps it in; on failure the old one stays, err holds
 * memcached's message (with "\r\n") and false is returned.  Any thread. */
bool	tls_server_reload(struct tls_server *t, char *err, size_t cap);
/* Counters for "stats". */
uint64_t tls_handshake_errors(struct tls_server *t);
uint64_t tls_new_sessions(struct tls_server *t);
/* Seconds since certificates were last loaded. */
uint64_t tls_since_refresh(struct tls_server *t);

/* Starts a TLS session on an accepted socket and makes io its transport;
 * false when memory ran out. */
bool	tls_conn_start(struct tls_server *t, int fd, struct conn_io *io);
/* Sends close_notify if it can without blocking and frees the session;
 * the socket stays open (the caller closes it). */
void	tls_conn_free(struct tls_conn *tc);
/* Advances the handshake; counts a failure in ssl_handshake_errors. */
enum tls_hs tls_handshake(struct tls_conn *tc);
/* True while the handshake is not complete. */
bool	tls_handshaking(const struct tls_conn *tc);
/* True when decrypted input waits inside the session: read again even if
 * the socket shows nothing. */
bool	tls_pending(const struct tls_conn *tc);
/* True when the last read or write needs the socket writable. */
bool	tls_want_write(const struct tls_conn *tc);
/* Bytes written to the socket (records, not plaintext), for measuring
 * what the client took off it against SIOCOUTQ. */
uint64_t tls_wire_written(const struct tls_conn *tc);

#endif
