/*
 * tls.c -- TLS sessions for client connections with OpenSSL, and the
 * plain-socket transport beside them (tls.h).
 *
 * Context: one SSL_CTX per load of the certificates.  tls_server_reload
 * builds a new one from the files and swaps the pointer under `lock`; a
 * new session takes a reference to the current one under the same lock,
 * so the swap never frees a context a session uses.  memcached reloads
 * into its live context step by step, so a bad key after a good chain
 * leaves it serving a mismatched pair; building aside avoids that.
 *
 * Sessions: accept state, non-blocking; the handshake is advanced from
 * the connection's events (tls_handshake).  Partial writes and moving
 * write buffers are enabled, so a write that would block is retried from
 * the output queue with the same bytes at whatever address they now sit,
 * and a large value goes from item memory into SSL_write with no copy of
 * ours.  Client-initiated renegotiation is refused
 * (SSL_OP_NO_RENEGOTIATION).  Read and write buffers are released while
 * idle (SSL_MODE_RELEASE_BUFFERS), so an idle TLS connection costs little
 * more than a plain one.  Reads go ahead (SSL_CTX_set_read_ahead): one
 * read(2) takes whatever the socket holds, where OpenSSL would otherwise
 * read each record's 5-byte header and its body separately (3 system
 * calls per request instead of 2).  The bytes it holds beyond the record
 * returned are not on the socket any more, so tls_pending reports them
 * unless the last read found only part of a record (the rest will make
 * the socket readable).
 *
 * OpenSSL's error queue is per thread; it is cleared before every call
 * whose outcome SSL_get_error reads.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "tls.h"

struct tls_server {
	const struct options	*opts;
	pthread_mutex_t		 lock;
	SSL_CTX			*ctx;		/* lock */
	time_t			 refreshed;	/* lock */
	uint64_t		 handshake_errors;	/* atomic */
	uint64_t		 new_sessions;		/* atomic */
};

struct tls_conn {
	SSL			*ssl;
	struct tls_server	*srv;
	bool			 handshaking;
	bool			 want_write;
	bool			 failed;	/* no close_notify then */
	bool			 read_blocked;	/* last read wanted more input */
};

/* ---- the plain transport --------------------------------------------- */

/* readv on a socket; read for one buffer. */
static ssize_t
plain_readv(void *ctx, const struct iovec *iov, int cnt)
{
	int fd = *(int *)ctx;

	return cnt == 1 ? read(fd, iov[0].iov_base, iov[0].iov_len) :
	    readv(fd, iov, cnt);
}

/* writev on a socket. */
static ssize_t
plain_writev(void *ctx, const struct iovec *iov, int cnt)
{
	return writev(*(int *)ctx, iov, cnt);
}

/* The plain-socket transport on *fd. */
void
conn_io_plain(struct conn_io *io, int *fd)
{
	*io = (struct conn_io){ .readv = plain_readv, .writev = plain_writev,
	    .ctx = fd, .tls = NULL };
}

/* ---- the server context ---------------------------------------------- */

/* OpenSSL's reason for the last failure, for error messages. */
static const char *
ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_error();

	if (e == 0)
		snprintf(buf, cap, "unknown error");
	else
		ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* The protocol version -o ssl_min_version names (0-3). */
static int
min_version(int v)
{
	static const int versions[] = { TLS1_VERSION, TLS1_1_VERSION,
	    TLS1_2_VERSION, TLS1_3_VERSION };

	return versions[v >= 0 && v <= 3 ? v : 2];
}

/* OpenSSL verify flags for -o ssl_verify_mode, as memcached maps them. */
static int
verify_flags(int mode)
{
	switch (mode) {
	case 1:
		return SSL_VERIFY_PEER;
	case 2:
		return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	case 3:
		return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT |
		    SSL_VERIFY_CLIENT_ONCE;
	default:
		return SSL_VERIFY_NONE;
	}
}

/* Counts sessions the server-side cache takes in (ssl_new_sessions). */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_server *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	(void)sess;
	if (t != NULL)
		__atomic_fetch_add(&t->new_sessions, 1, __ATOMIC_RELAXED);
	return 0;	/* we keep no reference to sess */
}

/* Loads certificate chain, key and CA list into ctx; false with
 * memcached's message in err. */
static bool
load_certs(SSL_CTX *ctx, const struct options *o, char *err, size_t cap)
{
	char			 why[256];
	const char		*key = o->ssl_key != NULL ? o->ssl_key :
				    o->ssl_chain_cert;
	STACK_OF(X509_NAME)	*names;

	if (SSL_CTX_use_certificate_chain_file(ctx, o->ssl_chain_cert) != 1) {
		snprintf(err, cap, "Error loading the certificate chain: %s : "
		    "%s\r\n", o->ssl_chain_cert, ssl_reason(why, sizeof why));
		return false;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, o->ssl_keyformat) != 1) {
		snprintf(err, cap, "Error loading the key: %s : %s\r\n", key,
		    ssl_reason(why, sizeof why));
		return false;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, cap, "Error validating the certificate: %s\r\n",
		    ssl_reason(why, sizeof why));
		return false;
	}
	if (o->ssl_ca_cert == NULL)
		return true;
	if (SSL_CTX_load_verify_locations(ctx, o->ssl_ca_cert, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(o->ssl_ca_cert)) == NULL) {
		snprintf(err, cap, "Error loading the CA certificate: %s : "
		    "%s\r\n", o->ssl_ca_cert, ssl_reason(why, sizeof why));
		return false;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	return true;
}

/* A complete context from the options and the files they name; NULL
 * with the reason in err. */
static SSL_CTX *
build_ctx(struct tls_server *t, char *err, size_t cap)
{
	static const unsigned char sid_ctx[] = "cached";
	const struct options	*o = t->opts;
	SSL_CTX			*ctx;
	char			 why[256];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, cap, "Error creating the TLS context: %s\r\n",
		    ssl_reason(why, sizeof why));
		return NULL;
	}
	SSL_CTX_set_app_data(ctx, t);
	SSL_CTX_set_min_proto_version(ctx, min_version(o->ssl_min_version));
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A client that closes without close_notify has still sent its
	 * requests: end of input, as on a plain socket, so a half-closed
	 * client gets its replies. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_verify(ctx, verify_flags(o->ssl_verify_mode), NULL);
	/* Needed for resumption whenever client certificates are asked. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	if (o->ssl_session_cache) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	} else
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (o->ssl_ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, o->ssl_ciphers) != 1) {
		snprintf(err, cap, "Error setting the provided cipher(s): %s\r\n",
		    o->ssl_ciphers);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (!load_certs(ctx, o, err, cap)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Builds the server context from opts. */
struct tls_server *
tls_server_create(const struct options *opts, char *err, size_t cap)
{
	struct tls_server *t;

	if ((t = calloc(1, sizeof *t)) == NULL) {
		snprintf(err, cap, "out of memory\r\n");
		return NULL;
	}
	t->opts = opts;
	pthread_mutex_init(&t->lock, NULL);
	if ((t->ctx = build_ctx(t, err, cap)) == NULL) {
		tls_server_free(t);
		return NULL;
	}
	t->refreshed = time(NULL);
	return t;
}

/* Frees the context; open sessions keep their own reference. */
void
tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Reloads the certificates into a new context and swaps it in. */
bool
tls_server_reload(struct tls_server *t, char *err, size_t cap)
{
	SSL_CTX *ctx, *old;

	if ((ctx = build_ctx(t, err, cap)) == NULL)
		return false;
	pthread_mutex_lock(&t->lock);
	old = t->ctx;
	t->ctx = ctx;
	t->refreshed = time(NULL);
	pthread_mutex_unlock(&t->lock);
	SSL_CTX_free(old);
	return true;
}

/* Failed handshakes. */
uint64_t
tls_handshake_errors(struct tls_server *t)
{
	return __atomic_load_n(&t->handshake_errors, __ATOMIC_RELAXED);
}

/* Sessions the server-side cache took in. */
uint64_t
tls_new_sessions(struct tls_server *t)
{
	return __atomic_load_n(&t->new_sessions, __ATOMIC_RELAXED);
}

/* Seconds since certificates were last loaded. */
uint64_t
tls_since_refresh(struct tls_server *t)
{
	time_t then, now = time(NULL);

	pthread_mutex_lock(&t->lock);
	then = t->refreshed;
	pthread_mutex_unlock(&t->lock);
	return now > then ? (uint64_t)(now - then) : 0;
}

/* ---- sessions -------------------------------------------------------- */

/* Maps a failed SSL call to the transport's return: -1 with EAGAIN when
 * it must wait (want_write set when for writability), 0 at the peer's
 * close, -1 with an errno otherwise. */
static ssize_t
tls_io_error(struct tls_conn *tc, int rc)
{
	int e = SSL_get_error(tc->ssl, rc);

	switch (e) {
	case SSL_ERROR_WANT_WRITE:
		tc->want_write = true;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		tc->failed = true;
		/* errno 0: the peer closed without close_notify. */
		if (errno == 0)
			return 0;
		ERR_clear_error();
		return -1;
	default:
		tc->failed = true;
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

/* readv through the session: fills the buffers in order, taking every
 * record already read ahead, and stops at the first buffer left short. */
static ssize_t
tls_readv(void *ctx, const struct iovec *iov, int cnt)
{
	struct tls_conn	*tc = ctx;
	size_t		 total = 0, off, got;
	ssize_t		 r;

	tc->want_write = false;
	tc->read_blocked = false;
	for (int i = 0; i < cnt; i++) {
		for (off = 0; off < iov[i].iov_len; off += got) {
			ERR_clear_error();
			errno = 0;
			if (SSL_read_ex(tc->ssl, (char *)iov[i].iov_base + off,
			    iov[i].iov_len - off, &got) == 1) {
				if (SSL_has_pending(tc->ssl) != 1) {
					off += got;
					break;
				}
				continue;
			}
			if (total + off > 0) {
				/* the error comes back on the next call */
				tc->read_blocked = SSL_get_error(tc->ssl, 0) ==
				    SSL_ERROR_WANT_READ;
				ERR_clear_error();
				return (ssize_t)(total + off);
			}
			r = tls_io_error(tc, 0);
			tc->read_blocked = r < 0 && errno == EAGAIN;
			return r;
		}
		total += off;
		if (off < iov[i].iov_len)
			break;
	}
	return (ssize_t)total;
}

/* writev through the session, a buffer at a time.  A write that would
 * block is repeated by the output queue with the same buffer (grown, at
 * most, and maybe moved), as SSL_write requires. */
static ssize_t
tls_writev(void *ctx, const struct iovec *iov, int cnt)
{
	struct tls_conn	*tc = ctx;
	size_t		 total = 0, done;

	tc->want_write = false;
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		ERR_clear_error();
		errno = 0;
		if (SSL_write_ex(tc->ssl, iov[i].iov_base, iov[i].iov_len,
		    &done) != 1) {
			if (total > 0)
				return (ssize_t)total;
			if (tls_io_error(tc, 0) == 0)
				errno = EPIPE;
			return -1;
		}
		total += done;
		if (done < iov[i].iov_len)
			break;
	}
	return (ssize_t)total;
}

/* Starts a TLS session on an accepted socket. */
bool
tls_conn_start(struct tls_server *t, int fd, struct conn_io *io)
{
	struct tls_conn	*tc;
	SSL_CTX		*ctx;

	if ((tc = calloc(1, sizeof *tc)) == NULL)
		return false;
	pthread_mutex_lock(&t->lock);
	ctx = t->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->lock);
	tc->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);	/* the session holds its own reference */
	if (tc->ssl == NULL || SSL_set_fd(tc->ssl, fd) != 1) {
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc);
		return false;
	}
	SSL_set_accept_state(tc->ssl);
	tc->srv = t;
	tc->handshaking = true;
	*io = (struct conn_io){ .readv = tls_readv, .writev = tls_writev,
	    .ctx = tc, .tls = tc };
	return true;
}

/* Sends close_notify if possible without blocking, frees the session. */
void
tls_conn_free(struct tls_conn *tc)
{
	if (tc == NULL)
		return;
	if (!tc->handshaking && !tc->failed) {
		ERR_clear_error();
		(void)SSL_shutdown(tc->ssl);
	}
	ERR_clear_error();
	SSL_free(tc->ssl);
	free(tc);
}

/* Advances the handshake. */
enum tls_hs
tls_handshake(struct tls_conn *tc)
{
	char	why[256];
	int	rc, e;

	ERR_clear_error();
	errno = 0;
	tc->want_write = false;
	if ((rc = SSL_do_handshake(tc->ssl)) == 1) {
		tc->handshaking = false;
		return TLS_HS_DONE;
	}
	e = SSL_get_error(tc->ssl, rc);
	if (e == SSL_ERROR_WANT_READ)
		return TLS_HS_WANT_READ;
	if (e == SSL_ERROR_WANT_WRITE) {
		tc->want_write = true;
		return TLS_HS_WANT_WRITE;
	}
	__atomic_fetch_add(&tc->srv->handshake_errors, 1, __ATOMIC_RELAXED);
	if (log_enabled(LOG_INFO)) {
		if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
			snprintf(why, sizeof why, "%s", errno == 0 ?
			    "connection closed" : strerror(errno));
		else
			ssl_reason(why, sizeof why);
		log_msg(LOG_INFO, "<%d TLS handshake failed: %s",
		    SSL_get_fd(tc->ssl), why);
	}
	ERR_clear_error();
	return TLS_HS_FAILED;
}

/* True while the handshake is not complete. */
bool
tls_handshaking(const struct tls_conn *tc)
{
	return tc->handshaking;
}

/* True when input waits inside the session: decrypted bytes, or read
 * ahead unless the last read showed them to be an incomplete record. */
bool
tls_pending(const struct tls_conn *tc)
{
	if (tc->handshaking)
		return false;
	return SSL_pending(tc->ssl) > 0 ||
	    (!tc->read_blocked && SSL_has_pending(tc->ssl) == 1);
}

/* True when the last read or write needs the socket writable. */
bool
tls_want_write(const struct tls_conn *tc)
{
	return tc->want_write;
}

/* Bytes written to the socket. */
uint64_t
tls_wire_written(const struct tls_conn *tc)
{
	return BIO_number_written(SSL_get_wbio(tc->ssl));
}
