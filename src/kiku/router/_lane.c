/* kiku.router._lane: the router's fast lane, in C.
 *
 * The usual request (a known host whose app is up, no body or a small one read whole,
 * no upgrade, no Expect) is carried from client to dyno and back here, on an epoll set
 * of the lane's own that the Python event loop polls when it is readable: no Python
 * frame runs per request. Anything else -- an unknown or wildcard host, a stopped app,
 * maintenance, affinity, chunked or large uploads, WebSockets, odd or oversized heads --
 * is handed to the Python router (protocol.py) whole, with the bytes read so far, before
 * a byte of it went to a dyno; the connection stays there. So every rule of the router
 * has one full implementation (the Python one) and this file repeats only the common
 * path and its errors (H11 H12 H13 H15 H17 H18 H19 H21 H22 H27), the same way byte for
 * byte: tests/router/test_lane.py sends the same requests through both and compares.
 *
 * Log lines are made here in the router's format, `<app_id> <unix time> <line>\n`, and
 * handed back in batches from poll() and tick().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE 65536
#define MAX_EVENTS 256
#define MAX_HEAD 16384         /* a client head longer than this goes to Python */
#define MAX_RESPONSE_HEAD 81920 /* a dyno's head longer than this is H17 */
#define MAX_OUT 262144         /* bytes waiting for a slow client before the dyno waits */
#define MAX_IN 65536           /* pipelined bytes held while a response is under way */
#define MAX_HEADERS 128        /* more headers than this: Python's path */
#define MAX_IDLE_PER_BACKEND 64
#define LONG_LINE 4096         /* a request line or header line longer: Python's path */

/* ------------------------------------------------------------------ buffers */

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(buf_t *b, const void *data, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

#define BUF_LIT(b, s) buf_add((b), (s), sizeof(s) - 1)

/* One number, formatted: `fmt` is short (its output fits 64 bytes). */
static int buf_fmt(buf_t *b, const char *fmt, long long v) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    if (n < 0 || n >= (int)sizeof tmp) return -1;
    return buf_add(b, tmp, (size_t)n);
}

static void buf_consume(buf_t *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(buf_t *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Shrink a buffer that grew for one big message back, so idle connections stay small. */
static void buf_trim(buf_t *b) {
    if (b->len == 0 && b->cap > 8192) buf_free(b);
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ the table */

typedef struct app {
    struct app *next;
    char *id;
    size_t idlen;
    long connections; /* client connections whose first request came here (H22) */
    long backlog;     /* requests in flight on this lane (H11) */
    PyObject *page;   /* the 503 application-error page, with %s for extra headers */
} app_t;

struct bconn;

typedef struct backend {
    struct backend *next;
    char *dyno;
    size_t dynolen;
    struct sockaddr_in addr;
    int live; /* in the current table */
    int held; /* during set_routes */
    int refs; /* routes, clients and connections that point here */
    struct bconn *idle;
    int nidle;
} backend_t;

typedef struct {
    char *host;
    size_t hostlen;
    app_t *app;
    backend_t **backends;
    int nb;
    unsigned rr;
    int backlog_limit;
} route_t;

/* ------------------------------------------------------------------ connections */

enum { K_LISTEN = 1, K_CLIENT, K_BACKEND };
enum { C_IDLE, C_CONNECT, C_WAIT, C_BODY, C_CLOSING };
enum { D_NONE, D_KEEPALIVE, D_PARTIAL, D_CONNECT, D_FIRSTBYTE, D_IDLE, D_CLOSING };
enum { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };
enum { CH_SIZE, CH_DATA, CH_CRLF, CH_TRAILER, CH_DONE };

typedef struct {
    int kind;
} tag_t;

struct lane;

typedef struct client {
    int kind;
    int fd;
    struct client *prev, *next;
    struct client *dead_next; /* freed at the end of the poll that closed it */
    struct lane *lane;
    uint32_t events;
    buf_t in, out;
    int state;
    char ip[INET_ADDRSTRLEN];
    size_t iplen;
    app_t *conn_app; /* the app this connection is counted against (H22) */
    /* the request */
    app_t *app;
    backend_t *backend;
    struct bconn *bc;
    buf_t req;  /* the head (and body) for the dyno, kept for a retry */
    buf_t meta; /* method, path, host, request id, fwd: the log's fields, in order */
    size_t m_method, m_path, m_host, m_rid, m_fwd; /* their ends in meta */
    size_t rid_at, rid_len;                      /* the X-Request-Id line within req */
    int keep_alive, http10, head_req, has_body, close_after, counted;
    int closing; /* the router stops: close after this response */
    int reused, retried, tries, tried_timeout;
    long connect_ms;
    double connect_started, sent_at;
    double deadline;
    int dkind;
    double last_activity;
    /* the response */
    int status, head_sent, interim_only;
    long long bytes_out;
    int body, rechunk, dyno_keep_alive;
    long long remaining;
    int chunk_state;
} client_t;

typedef struct bconn {
    int kind;
    int fd;
    struct bconn *prev, *next;
    struct bconn *dead_next;
    struct bconn *next_idle;
    backend_t *b;
    client_t *owner;
    uint32_t events;
    buf_t in, out;
    int connecting;
    double idle_since;
} bconn_t;

typedef struct lane {
    PyObject_HEAD
    int epfd;
    int listen_fd;
    tag_t listen_tag;
    int accepting;
    double accept_again; /* out of descriptors: accepting waits until then (0: it does not) */
    /* config */
    double connect_timeout, first_byte_timeout, idle_timeout, keepalive_timeout;
    double backend_idle_timeout, partial_timeout;
    int connect_tries, backlog_per_dyno;
    long max_app_connections;
    char listener[96]; /* "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080" */
    size_t listenerlen;
    char proto[8];
    /* state */
    app_t *apps;
    backend_t *backends;
    route_t *routes;
    int nroutes;
    int *index; /* open addressing over routes, -1 empty */
    client_t *dead_clients;
    bconn_t *dead_bconns;
    int depth;
    unsigned indexmask;
    client_t *clients;
    bconn_t *bconns;
    long nclients;
    buf_t log;
    long loglines;
    char ids[256 * 36];
    int idsleft;
    char *scratch;
    PyObject *pending; /* handoffs waiting for the end of poll(): list of (fd, bytes) */
} lane_t;

/* ------------------------------------------------------------------ epoll */

static void set_events(lane_t *L, int fd, void *tag, uint32_t *current, uint32_t want) {
    if (*current == want) return;
    struct epoll_event ev = {.events = want, .data.ptr = tag};
    int op = *current == 0 ? EPOLL_CTL_ADD : (want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
    epoll_ctl(L->epfd, op, fd, &ev);
    *current = want;
}

static void client_events(client_t *c, uint32_t want) {
    set_events(c->lane, c->fd, c, &c->events, want);
}

static void bconn_events(lane_t *L, bconn_t *bc, uint32_t want) {
    set_events(L, bc->fd, bc, &bc->events, want);
}

/* ------------------------------------------------------------------ small helpers */

static int lower_eq(const char *a, size_t alen, const char *lit) {
    size_t n = strlen(lit);
    if (alen != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = a[i];
        if (ch >= 'A' && ch <= 'Z') ch += 32;
        if (ch != lit[i]) return 0;
    }
    return 1;
}

static int lower_prefix(const char *a, size_t alen, const char *lit) {
    size_t n = strlen(lit);
    if (alen < n) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = a[i];
        if (ch >= 'A' && ch <= 'Z') ch += 32;
        if (ch != lit[i]) return 0;
    }
    return 1;
}

/* A hop-by-hop header (heads.is_hop in the Python path): never passed on. */
static int is_hop(const char *n, size_t nl) {
    return lower_eq(n, nl, "connection") || lower_eq(n, nl, "keep-alive") || lower_eq(n, nl, "te") ||
           lower_eq(n, nl, "trailer") || lower_eq(n, nl, "transfer-encoding") ||
           lower_eq(n, nl, "upgrade") || lower_prefix(n, nl, "proxy-");
}

static const char *find_crlf2(const char *p, size_t len) {
    if (len < 4) return NULL;
    const char *end = p + len - 3;
    for (const char *q = p; q < end; q++) {
        q = memchr(q, '\r', (size_t)(end - q));
        if (!q) return NULL;
        if (q[1] == '\n' && q[2] == '\r' && q[3] == '\n') return q;
    }
    return NULL;
}

static int is_tchar(unsigned char ch) {
    static const char *extra = "!#$%&'*+-.^_`|~";
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr(extra, ch));
}

static void ltrim(const char **p, size_t *n) {
    while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
}

static void trim(const char **p, size_t *n) {
    while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) (*n)--;
}

/* Bytes as Python's log sees them: decoded as latin-1, then UTF-8 encoded; '"' as %22
 * where `quote` is set. */
static int add_latin1(buf_t *b, const char *p, size_t n, int quote) {
    if (buf_reserve(b, n * 3)) return -1;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"' && quote) {
            memcpy(o, "%22", 3);
            o += 3;
        } else if (ch < 0x80) {
            *o++ = (char)ch;
        } else {
            *o++ = (char)(0xC0 | (ch >> 6));
            *o++ = (char)(0x80 | (ch & 0x3F));
        }
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* Connection header tokens: 1 when every token is one the router acts on itself. */
static int plain_tokens(const char *v, size_t n, int *close, int *keepalive) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        const char *t = v + i;
        size_t tl = j - i;
        trim(&t, &tl);
        if (tl) {
            if (lower_eq(t, tl, "close")) *close = 1;
            else if (lower_eq(t, tl, "keep-alive")) *keepalive = 1;
            else if (!(lower_eq(t, tl, "connection") || lower_eq(t, tl, "te") ||
                       lower_eq(t, tl, "trailer") || lower_eq(t, tl, "transfer-encoding") ||
                       lower_eq(t, tl, "upgrade")))
                return 0;
        }
        i = j + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------ request ids */

static const char *new_request_id(lane_t *L) {
    if (L->idsleft == 0) {
        unsigned char raw[256 * 16];
        size_t got = 0;
        while (got < sizeof raw) {
            ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
            if (r > 0) got += (size_t)r;
        }
        static const char hex[] = "0123456789abcdef";
        for (int k = 0; k < 256; k++) {
            unsigned char *u = raw + k * 16;
            u[6] = (u[6] & 0x0F) | 0x40;
            u[8] = (u[8] & 0x3F) | 0x80;
            char *o = L->ids + k * 36;
            for (int i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
                *o++ = hex[u[i] >> 4];
                *o++ = hex[u[i] & 15];
            }
        }
        L->idsleft = 256;
    }
    L->idsleft--;
    return L->ids + L->idsleft * 36;
}

static int valid_request_id(const char *p, size_t n) {
    if (n < 20 || n > 200) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '+' || ch == '/' || ch == '=' || ch == '-'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ the table */

static unsigned hash_host(const char *p, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static route_t *lookup(lane_t *L, const char *host, size_t n) {
    if (!L->index) return NULL;
    unsigned i = hash_host(host, n) & L->indexmask;
    while (L->index[i] >= 0) {
        route_t *r = &L->routes[L->index[i]];
        if (r->hostlen == n && memcmp(r->host, host, n) == 0) return r;
        i = (i + 1) & L->indexmask;
    }
    return NULL;
}

static void backend_unref(lane_t *L, backend_t *b);

static void free_routes(lane_t *L) {
    for (int i = 0; i < L->nroutes; i++) {
        route_t *r = &L->routes[i];
        for (int k = 0; k < r->nb; k++) backend_unref(L, r->backends[k]);
        free(r->backends);
        free(r->host);
    }
    free(L->routes);
    free(L->index);
    L->routes = NULL;
    L->index = NULL;
    L->nroutes = 0;
}

static app_t *find_app(lane_t *L, const char *id, size_t n) {
    for (app_t *a = L->apps; a; a = a->next)
        if (a->idlen == n && memcmp(a->id, id, n) == 0) return a;
    app_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->id = malloc(n + 1);
    memcpy(a->id, id, n);
    a->id[n] = 0;
    a->idlen = n;
    a->next = L->apps;
    L->apps = a;
    return a;
}

static backend_t *find_backend(lane_t *L, const char *dyno, size_t dn, struct sockaddr_in *addr) {
    for (backend_t *b = L->backends; b; b = b->next)
        if (b->dynolen == dn && memcmp(b->dyno, dyno, dn) == 0 &&
            b->addr.sin_addr.s_addr == addr->sin_addr.s_addr && b->addr.sin_port == addr->sin_port)
            return b;
    backend_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->dyno = malloc(dn + 1);
    memcpy(b->dyno, dyno, dn);
    b->dyno[dn] = 0;
    b->dynolen = dn;
    b->addr = *addr;
    b->next = L->backends;
    L->backends = b;
    return b;
}

/* ------------------------------------------------------------------ dyno connections */

static void bconn_close(lane_t *L, bconn_t *bc) {
    if (bc->b) {
        /* out of the idle list if it is there */
        bconn_t **pp = &bc->b->idle;
        while (*pp) {
            if (*pp == bc) {
                *pp = bc->next_idle;
                bc->b->nidle--;
                break;
            }
            pp = &(*pp)->next_idle;
        }
    }
    if (bc->prev) bc->prev->next = bc->next;
    else L->bconns = bc->next;
    if (bc->next) bc->next->prev = bc->prev;
    close(bc->fd);
    buf_free(&bc->in);
    buf_free(&bc->out);
    backend_t *b = bc->b;
    bc->b = NULL;
    bc->kind = 0;
    bc->owner = NULL;
    bc->dead_next = L->dead_bconns;
    L->dead_bconns = bc;
    if (b) backend_unref(L, b);
}

static void backend_unref(lane_t *L, backend_t *b) {
    if (--b->refs > 0 || b->live || b->held) return;
    backend_t **pp = &L->backends;
    while (*pp && *pp != b) pp = &(*pp)->next;
    if (*pp) *pp = b->next;
    free(b->dyno);
    free(b);
}

static bconn_t *bconn_new(lane_t *L, backend_t *b, int fd) {
    bconn_t *bc = calloc(1, sizeof *bc);
    if (!bc) return NULL;
    bc->kind = K_BACKEND;
    bc->fd = fd;
    bc->b = b;
    b->refs++;
    bc->next = L->bconns;
    if (L->bconns) L->bconns->prev = bc;
    L->bconns = bc;
    return bc;
}

/* ------------------------------------------------------------------ logging */

static const char *H_AT[] = {"info", "error", "warning"};

typedef struct {
    const char *code, *desc;
    int status, at; /* 0 info 1 error 2 warning */
} herr_t;

static const herr_t H11 = {"H11", "Backlog too deep", 503, 1};
static const herr_t H12 = {"H12", "Request timeout", 503, 1};
static const herr_t H13 = {"H13", "Connection closed without response", 503, 1};
static const herr_t H15 = {"H15", "Idle connection", 503, 1};
static const herr_t H17 = {"H17", "Poorly formatted HTTP response", 503, 1};
static const herr_t H18 = {"H18", "Server Request Interrupted", 503, 1};
static const herr_t H19 = {"H19", "Backend connection timeout", 503, 1};
static const herr_t H21 = {"H21", "Backend connection refused", 503, 1};
static const herr_t H22 = {"H22", "Connection limit reached", 503, 1};
static const herr_t H27 = {"H27", "Client Request Interrupted", 499, 2};

static void log_request(lane_t *L, client_t *c, const herr_t *e, const char *sock) {
    buf_t *b = &L->log;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char stamp[40];
    int sn = snprintf(stamp, sizeof stamp, " %lld.%06ld ", (long long)ts.tv_sec, ts.tv_nsec / 1000);
    app_t *a = c->app;
    buf_add(b, a->id, a->idlen);
    buf_add(b, stamp, (size_t)sn);
    if (sock) {
        BUF_LIT(b, "sock=");
        buf_add(b, sock, strlen(sock));
        BUF_LIT(b, " ");
    }
    int status;
    if (!e) {
        BUF_LIT(b, "at=info ");
        status = c->status;
    } else {
        BUF_LIT(b, "at=");
        buf_add(b, H_AT[e->at], strlen(H_AT[e->at]));
        BUF_LIT(b, " code=");
        buf_add(b, e->code, 3);
        BUF_LIT(b, " desc=\"");
        buf_add(b, e->desc, strlen(e->desc));
        BUF_LIT(b, "\" ");
        status = c->head_sent ? c->status : e->status;
        if (e == &H27) status = 499;
    }
    const char *m = c->meta.p;
    BUF_LIT(b, "method=");
    buf_add(b, m, c->m_method);
    BUF_LIT(b, " path=\"");
    buf_add(b, m + c->m_method, c->m_path - c->m_method);
    BUF_LIT(b, "\" host=");
    buf_add(b, m + c->m_path, c->m_host - c->m_path);
    BUF_LIT(b, " request_id=");
    buf_add(b, m + c->m_host, c->m_rid - c->m_host);
    BUF_LIT(b, " fwd=\"");
    buf_add(b, m + c->m_rid, c->m_fwd - c->m_rid);
    BUF_LIT(b, "\" ");
    if (c->sent_at > 0) {
        long service = (long)((now_mono() - c->sent_at) * 1000);
        BUF_LIT(b, "dyno=");
        buf_add(b, c->backend->dyno, c->backend->dynolen);
        buf_fmt(b, " connect=%lldms", c->connect_ms);
        buf_fmt(b, " service=%lldms", service);
    } else {
        BUF_LIT(b, "dyno= connect= service=");
    }
    buf_fmt(b, " status=%lld", status);
    buf_fmt(b, " bytes=%lld", c->bytes_out);
    BUF_LIT(b, " protocol=");
    buf_add(b, L->proto, strlen(L->proto));
    BUF_LIT(b, "\n");
    L->loglines++;
}

/* ------------------------------------------------------------------ clients */

static void process_requests(lane_t *L, client_t *c);
static void start_connect(lane_t *L, client_t *c);
static void connect_failed(lane_t *L, client_t *c, int timed_out);

static void flush_client(lane_t *L, client_t *c);
static void handoff(lane_t *L, client_t *c);

static void client_free(lane_t *L, client_t *c, int close_fd) {
    if (c->prev) c->prev->next = c->next;
    else L->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    L->nclients--;
    if (c->conn_app) c->conn_app->connections--;
    if (close_fd) close(c->fd);
    else if (c->events) epoll_ctl(L->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->req);
    buf_free(&c->meta);
    if (c->backend) backend_unref(L, c->backend);
    c->backend = NULL;
    c->bc = NULL;
    c->kind = 0;
    c->dead_next = L->dead_clients;
    L->dead_clients = c;
}

/* Connections closed during a poll are freed after it: a later event of the same batch
 * may still point at one (its kind is 0 then, and it is skipped). */
static void bury(lane_t *L) {
    while (L->dead_clients) {
        client_t *c = L->dead_clients;
        L->dead_clients = c->dead_next;
        free(c);
    }
    while (L->dead_bconns) {
        bconn_t *bc = L->dead_bconns;
        L->dead_bconns = bc->dead_next;
        free(bc);
    }
}

static void uncount(client_t *c) {
    if (c->counted) {
        c->counted = 0;
        c->app->backlog--;
    }
}

static void drop_bconn(lane_t *L, client_t *c) {
    if (c->bc) {
        c->bc->owner = NULL;
        bconn_close(L, c->bc);
        c->bc = NULL;
    }
}

/* The client went away (or broke): H27 when a request was under way. */
static void client_lost(lane_t *L, client_t *c) {
    if (c->state == C_CONNECT || c->state == C_WAIT || c->state == C_BODY) {
        c->status = 499;
        log_request(L, c, &H27, "client");
    }
    uncount(c);
    drop_bconn(L, c);
    client_free(L, c, 1);
}

static void set_deadline(client_t *c, int kind, double at) {
    c->dkind = kind;
    c->deadline = at;
}

static void reset_request(client_t *c) {
    c->app = NULL;
    if (c->backend) backend_unref(c->lane, c->backend);
    c->backend = NULL;
    c->req.len = 0;
    c->meta.len = 0;
    c->status = c->head_sent = 0;
    c->bytes_out = 0;
    c->body = B_NONE;
    c->rechunk = c->dyno_keep_alive = 0;
    c->remaining = 0;
    c->reused = c->retried = c->tries = c->tried_timeout = 0;
    c->connect_ms = 0;
    c->sent_at = 0;
    c->has_body = c->close_after = 0;
    buf_trim(&c->req);
}

/* The response is complete (or abandoned): next request, or close once flushed. */
static void finish(lane_t *L, client_t *c) {
    uncount(c);
    int keep = c->keep_alive && !c->close_after && !c->closing;
    reset_request(c);
    if (!keep) {
        c->state = C_CLOSING;
        set_deadline(c, D_CLOSING, now_mono() + L->idle_timeout);
        flush_client(L, c);
        return;
    }
    c->state = C_IDLE;
    set_deadline(c, D_KEEPALIVE, now_mono() + L->keepalive_timeout);
    flush_client(L, c);
}

/* Write what is waiting for the client; returns 0 if `c` was freed. */
static int write_client(lane_t *L, client_t *c) {
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        client_lost(L, c);
        return 0;
    }
    return 1;
}

/* Flush, then settle what the client and its dyno connection may do next. */
static void flush_client(lane_t *L, client_t *c) {
    if (!write_client(L, c)) return;
    if (c->out.len == 0) buf_trim(&c->out);
    if (c->state == C_CLOSING) {
        if (c->out.len == 0) {
            client_free(L, c, 1);
            return;
        }
        client_events(c, EPOLLOUT);
        return;
    }
    uint32_t want = 0;
    if (c->in.len < MAX_IN) want |= EPOLLIN;
    if (c->out.len) want |= EPOLLOUT;
    client_events(c, want);
    if (c->bc && !c->bc->connecting) {
        uint32_t bw = c->out.len < MAX_OUT ? EPOLLIN : 0;
        if (c->bc->out.len) bw |= EPOLLOUT;
        bconn_events(L, c->bc, bw);
    }
    if (c->state == C_IDLE && c->in.len && c->out.len == 0) {
        if (L->depth > 16) { /* answered pipelined requests, many: Python takes the rest */
            handoff(L, c);
            return;
        }
        L->depth++;
        process_requests(L, c);
        L->depth--;
    }
}

/* The app's own page for an error: a whole response, `extra` headers inserted. */
static void reply(lane_t *L, client_t *c, const herr_t *e) {
    drop_bconn(L, c);
    if (!c->head_sent) {
        c->status = e->status;
        buf_t extra = {0};
        buf_add(&extra, c->req.p + c->rid_at, c->rid_len);
        if (c->close_after || !c->keep_alive) BUF_LIT(&extra, "Connection: close\r\n");
        /* set_routes gives every app it routes a page; the fallback is never expected */
        static const char bare[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n%s\r\n";
        PyObject *po = c->app->page;
        const char *page = po ? PyBytes_AS_STRING(po) : bare;
        size_t plen = po ? (size_t)PyBytes_GET_SIZE(po) : sizeof bare - 1;
        const char *hole = strstr(page, "%s");
        size_t before = hole ? (size_t)(hole - page) : plen;
        size_t start = c->out.len;
        buf_add(&c->out, page, before);
        buf_add(&c->out, extra.p, extra.len);
        if (hole) {
            if (c->head_req) {
                const char *end = strstr(hole + 2, "\r\n\r\n");
                size_t keep = end ? (size_t)(end + 4 - (hole + 2)) : 0;
                buf_add(&c->out, hole + 2, keep);
            } else {
                buf_add(&c->out, hole + 2, plen - before - 2);
            }
        }
        buf_free(&extra);
        c->bytes_out += (long long)(c->out.len - start);
        c->head_sent = 1;
    }
    log_request(L, c, e, NULL);
    finish(L, c);
}

/* End a response the client has part of: close the connection once flushed. */
static void abort_response(lane_t *L, client_t *c) {
    c->close_after = 1;
    drop_bconn(L, c);
    finish(L, c);
}

static void handoff(lane_t *L, client_t *c) {
    PyObject *data = PyBytes_FromStringAndSize(c->in.p, (Py_ssize_t)c->in.len);
    PyObject *item = data ? Py_BuildValue("(iN)", c->fd, data) : NULL;
    if (!item || PyList_Append(L->pending, item) < 0) {
        Py_XDECREF(item);
        PyErr_Clear();
        client_free(L, c, 1);
        return;
    }
    Py_DECREF(item);
    client_free(L, c, 0);
}

/* ------------------------------------------------------------------ requests */

typedef struct {
    const char *name, *value;
    size_t nlen, vlen;
} header_t;

/* Parse one request head in c->in and send it to a dyno; or hand the connection to
 * Python when the request is not the lane's kind. */
static void process_requests(lane_t *L, client_t *c) {
    const char *p = c->in.p;
    size_t len = c->in.len;
    /* a bare CRLF between requests is allowed (RFC 9112 2.2) */
    while (len >= 2 && p[0] == '\r' && p[1] == '\n') p += 2, len -= 2;
    if (len == 0) {
        c->in.len = 0;
        buf_trim(&c->in);
        return;
    }
    const char *end = find_crlf2(p, len);
    if (!end) {
        if (len > MAX_HEAD) handoff(L, c);
        else set_deadline(c, D_PARTIAL, now_mono() + L->partial_timeout);
        return;
    }
    size_t headlen = (size_t)(end - p) + 4;
    if (headlen > MAX_HEAD) {
        handoff(L, c);
        return;
    }
    /* request line */
    const char *q = p, *lim = end;
    const char *method = q;
    while (q < lim && *q >= 'A' && *q <= 'Z') q++;
    size_t mlen = (size_t)(q - method);
    if (!mlen || q >= lim || *q != ' ') goto python;
    const char *target = ++q;
    while (q < lim && (unsigned char)*q > 0x20 && (unsigned char)*q < 0x7f) q++;
    size_t tlen = (size_t)(q - target);
    if (!tlen || q >= lim || *q != ' ' || tlen > LONG_LINE) goto python;
    q++;
    if (lim - q < 10 || memcmp(q, "HTTP/1.", 7) != 0 || (q[7] != '0' && q[7] != '1') || q[8] != '\r' ||
        q[9] != '\n')
        goto python;
    int http10 = q[7] == '0';
    q += 10;
    if (mlen == 7 && memcmp(method, "CONNECT", 7) == 0) goto python;
    /* headers */
    header_t hs[MAX_HEADERS];
    int nh = 0;
    while (q < end + 2) {
        const char *nl = memchr(q, '\r', (size_t)(end + 2 - q));
        if (!nl || nl[1] != '\n') goto python;
        const char *name = q;
        const char *colon = q;
        while (colon < nl && is_tchar((unsigned char)*colon)) colon++;
        if (colon == name || colon >= nl || *colon != ':' || nh >= MAX_HEADERS) goto python;
        const char *v = colon + 1;
        size_t vl = (size_t)(nl - v);
        for (size_t i = 0; i < vl; i++) {
            unsigned char ch = (unsigned char)v[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) goto python;
        }
        /* long names and lines: Python's path applies the router's limits (400) */
        if ((size_t)(nl - name) > LONG_LINE || colon - name > 256) goto python;
        ltrim(&v, &vl); /* forwarded as it came, trailing whitespace included */
        hs[nh++] = (header_t){name, v, (size_t)(colon - name), vl};
        q = nl + 2;
    }
    /* what the headers say */
    const char *host = NULL, *rid = NULL;
    size_t hostlen = 0, ridlen = 0;
    const char *length = NULL;
    size_t lengthlen = 0;
    int conn_close = 0, conn_keep = 0;
    int forward[MAX_HEADERS];
    int nxff = 0, nvia = 0;
    for (int i = 0; i < nh; i++) {
        header_t *h = &hs[i];
        const char *n = h->name;
        size_t nl = h->nlen;
        const char *tv = h->value; /* the value without surrounding whitespace */
        size_t tvl = h->vlen;
        trim(&tv, &tvl);
        forward[i] = 1;
        char c0 = n[0] | 0x20;
        if (c0 == 'h' && lower_eq(n, nl, "host")) {
            if (host) goto python;
            host = tv;
            hostlen = tvl;
        } else if (c0 == 'c' && lower_eq(n, nl, "content-length")) {
            if (length && (lengthlen != tvl || memcmp(length, tv, tvl))) goto python;
            length = tv;
            lengthlen = tvl;
        } else if (c0 == 'c' && lower_eq(n, nl, "connection")) {
            if (!plain_tokens(h->value, h->vlen, &conn_close, &conn_keep)) goto python;
            forward[i] = 0;
        } else if (c0 == 'x' && nl > 2 && (n[1] | 0x20) == '-') {
            if (lower_eq(n, nl, "x-forwarded-for")) forward[i] = 0, nxff++;
            else if (lower_eq(n, nl, "x-request-id")) forward[i] = 0, rid = tv, ridlen = tvl;
            else if (lower_eq(n, nl, "x-forwarded-proto") || lower_eq(n, nl, "x-forwarded-port") ||
                     lower_eq(n, nl, "x-request-start"))
                forward[i] = 0;
        } else if (c0 == 'v' && lower_eq(n, nl, "via")) {
            forward[i] = 0;
            nvia++;
        } else if ((c0 == 't' || c0 == 'k' || c0 == 'u' || c0 == 'e' || c0 == 'p') &&
                   (lower_eq(n, nl, "transfer-encoding") || lower_eq(n, nl, "upgrade") ||
                    lower_eq(n, nl, "expect"))) {
            goto python;
        } else if (c0 == 't' && (lower_eq(n, nl, "te") || lower_eq(n, nl, "trailer"))) {
            forward[i] = 0;
        } else if (c0 == 'k' && lower_eq(n, nl, "keep-alive")) {
            forward[i] = 0;
        } else if (c0 == 'p' && lower_prefix(n, nl, "proxy-")) {
            forward[i] = 0;
        }
    }
    if (!host) goto python;
    /* the body: a Content-Length whose bytes all came */
    long long clen = 0;
    if (length) {
        if (lengthlen == 0 || lengthlen > 9) goto python;
        for (size_t i = 0; i < lengthlen; i++) {
            if (length[i] < '0' || length[i] > '9') goto python;
            clen = clen * 10 + (length[i] - '0');
        }
        if ((long long)(len - headlen) < clen) goto python;
    }
    /* the route: Host lowercased, without its port */
    char hbuf[256];
    size_t hn = hostlen;
    {
        const char *colon = memchr(host, ':', hostlen);
        if (colon) hn = (size_t)(colon - host);
        if (hn == 0 || hn >= sizeof hbuf || host[0] == '[') goto python;
        for (size_t i = 0; i < hn; i++) {
            unsigned char ch = (unsigned char)host[i];
            if (ch >= 0x80 || ch <= 0x20) goto python;
            hbuf[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : (char)ch;
        }
        if (colon) {
            /* Python keeps everything before the last colon: one colon only here */
            if (memchr(colon + 1, ':', hostlen - hn - 1)) goto python;
        }
    }
    route_t *r = lookup(L, hbuf, hn);
    if (!r) goto python;

    /* This request is the lane's. */
    c->http10 = http10;
    c->keep_alive = http10 ? conn_keep && !conn_close : !conn_close;
    c->head_req = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    c->has_body = clen > 0;
    c->app = r->app;
    /* meta: method path host rid fwd */
    buf_t *m = &c->meta;
    m->len = 0;
    buf_add(m, method, mlen);
    c->m_method = m->len;
    add_latin1(m, target, tlen, 1);
    c->m_path = m->len;
    buf_add(m, hbuf, hn);
    c->m_host = m->len;
    int rid_ok = rid && valid_request_id(rid, ridlen);
    if (rid_ok) buf_add(m, rid, ridlen);
    else buf_add(m, new_request_id(L), 36);
    c->m_rid = m->len;
    /* the head for the dyno */
    buf_t *o = &c->req;
    o->len = 0;
    buf_reserve(o, headlen + 256 + (size_t)clen);
    buf_add(o, method, mlen);
    BUF_LIT(o, " ");
    buf_add(o, target, tlen);
    BUF_LIT(o, " HTTP/1.1\r\n");
    for (int i = 0; i < nh; i++) {
        if (!forward[i]) continue;
        buf_add(o, hs[i].name, hs[i].nlen);
        BUF_LIT(o, ": ");
        buf_add(o, hs[i].value, hs[i].vlen);
        BUF_LIT(o, "\r\n");
    }
    BUF_LIT(o, "X-Forwarded-For: ");
    size_t fwd_at = o->len;
    if (nxff) {
        int first = 1;
        for (int i = 0; i < nh; i++) {
            const char *tv = hs[i].value;
            size_t tvl = hs[i].vlen;
            trim(&tv, &tvl);
            if (forward[i] || !lower_eq(hs[i].name, hs[i].nlen, "x-forwarded-for") || !tvl) continue;
            if (!first) BUF_LIT(o, ", ");
            buf_add(o, tv, tvl);
            first = 0;
        }
        if (c->iplen) {
            if (!first) BUF_LIT(o, ", ");
            buf_add(o, c->ip, c->iplen);
        }
    } else {
        buf_add(o, c->ip, c->iplen);
    }
    add_latin1(m, o->p + fwd_at, o->len - fwd_at, 0);
    c->m_fwd = m->len;
    buf_add(o, L->listener, L->listenerlen);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    BUF_LIT(o, "\r\nX-Request-Start: ");
    buf_fmt(o, "%lld\r\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    c->rid_at = o->len;
    BUF_LIT(o, "X-Request-Id: ");
    buf_add(o, m->p + c->m_host, c->m_rid - c->m_host);
    BUF_LIT(o, "\r\n");
    c->rid_len = o->len - c->rid_at;
    BUF_LIT(o, "Via: ");
    for (int i = 0; i < nh && nvia; i++) {
        if (forward[i] || !lower_eq(hs[i].name, hs[i].nlen, "via")) continue;
        const char *tv = hs[i].value;
        size_t tvl = hs[i].vlen;
        trim(&tv, &tvl);
        buf_add(o, tv, tvl);
        BUF_LIT(o, ", ");
    }
    BUF_LIT(o, "1.1 kiku\r\n\r\n");
    if (clen) buf_add(o, p + headlen, (size_t)clen);
    buf_consume(&c->in, (size_t)(p - c->in.p) + headlen + (size_t)clen);

    /* limits: client connections (H22), requests in flight (H11) */
    if (!c->conn_app) {
        if (r->app->connections >= L->max_app_connections) {
            c->close_after = 1;
            c->state = C_WAIT;
            reply(L, c, &H22);
            return;
        }
        c->conn_app = r->app;
        r->app->connections++;
    }
    if (r->app->backlog >= r->backlog_limit) {
        c->state = C_WAIT;
        reply(L, c, &H11);
        return;
    }
    r->app->backlog++;
    c->counted = 1;
    /* a dyno: round-robin; a pooled connection if there is one */
    c->tries = 0;
    c->backend = r->backends[r->rr++ % (unsigned)r->nb];
    c->backend->refs++;
    start_connect(L, c);
    return;
python:
    handoff(L, c);
}

static void send_request(lane_t *L, client_t *c) {
    bconn_t *bc = c->bc;
    c->state = C_WAIT;
    c->sent_at = now_mono();
    set_deadline(c, D_FIRSTBYTE, c->sent_at + L->first_byte_timeout);
    const char *p = c->req.p;
    size_t n = c->req.len;
    while (n) {
        ssize_t w = send(bc->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        break; /* the read side will see the connection lost */
    }
    bc->out.len = 0;
    if (n) buf_add(&bc->out, p, n);
    bconn_events(L, bc, EPOLLIN | (n ? EPOLLOUT : 0));
}

/* A connection to c->backend: from the pool, else a new one (EPOLLOUT says when). */
static void connect_fresh(lane_t *L, client_t *c);

static void start_connect(lane_t *L, client_t *c) {
    backend_t *b = c->backend;
    if (b->idle) {
        bconn_t *bc = b->idle;
        b->idle = bc->next_idle;
        b->nidle--;
        bc->next_idle = NULL;
        bc->owner = c;
        c->bc = bc;
        c->reused = 1;
        send_request(L, c);
        return;
    }
    connect_fresh(L, c);
}

/* A new connection to c->backend; connect_failed() decides what a failure means. */
static void connect_fresh(lane_t *L, client_t *c) {
    backend_t *b = c->backend;
    c->reused = 0;
    c->tries++;
    c->state = C_CONNECT;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(L, c, 0);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->connect_started = now_mono();
    bconn_t *bc = bconn_new(L, b, fd);
    bc->owner = c;
    c->bc = bc;
    int rc = connect(fd, (struct sockaddr *)&b->addr, sizeof b->addr);
    if (rc == 0) {
        c->connect_ms += (long)((now_mono() - c->connect_started) * 1000);
        send_request(L, c);
        return;
    }
    if (errno != EINPROGRESS) {
        /* refused at once: the next dyno, as a failed connect would */
        drop_bconn(L, c);
        c->connect_ms += (long)((now_mono() - c->connect_started) * 1000);
        connect_failed(L, c, 0);
        return;
    }
    bc->connecting = 1;
    bconn_events(L, bc, EPOLLOUT);
    set_deadline(c, D_CONNECT, c->connect_started + L->connect_timeout);
}

static route_t *route_of(lane_t *L, client_t *c) {
    const char *host = c->meta.p + c->m_path;
    return lookup(L, host, c->m_host - c->m_path);
}

/* H19 after a timeout among the tries, else H21; or the next dyno. H13 when this was
 * the one fresh try after a pooled connection the dyno had closed. */
static void connect_failed(lane_t *L, client_t *c, int timed_out) {
    if (c->retried) {
        reply(L, c, &H13);
        return;
    }
    if (timed_out) c->tried_timeout = 1;
    route_t *r = route_of(L, c);
    int limit = r ? (r->nb < L->connect_tries ? r->nb : L->connect_tries) : 0;
    if (r && c->tries < limit) {
        backend_unref(L, c->backend);
        c->backend = r->backends[r->rr++ % (unsigned)r->nb];
        c->backend->refs++;
        start_connect(L, c);
        return;
    }
    reply(L, c, c->tried_timeout ? &H19 : &H21);
}

/* ------------------------------------------------------------------ responses */

/* The dyno's response head in bc->in: rewritten for the client. Returns bytes used,
 * 0 when more are needed, -1 when it is malformed. */
static long response_head(lane_t *L, client_t *c, bconn_t *bc) {
    const char *p = bc->in.p;
    size_t len = bc->in.len;
    const char *end = find_crlf2(p, len);
    if (!end) return len > MAX_RESPONSE_HEAD ? -1 : 0;
    size_t headlen = (size_t)(end - p) + 4;
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    int dyno10 = p[7] == '0';
    if (p[9] < '0' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *q = p + 12;
    const char *eol = memchr(q, '\r', (size_t)(end + 2 - q));
    if (!eol || eol[1] != '\n') return -1;
    const char *reason = q;
    size_t rlen = (size_t)(eol - q);
    if (rlen && *reason != ' ') return -1;
    trim(&reason, &rlen);
    for (size_t i = 0; i < rlen; i++)
        if ((unsigned char)reason[i] < 0x20 && reason[i] != '\t') return -1;
    if (status < 100) return -1;
    q = eol + 2;
    header_t hs[MAX_HEADERS];
    int nh = 0;
    while (q < end + 2) {
        const char *nl = memchr(q, '\r', (size_t)(end + 2 - q));
        if (!nl || nl[1] != '\n') return -1;
        const char *colon = q;
        while (colon < nl && is_tchar((unsigned char)*colon)) colon++;
        if (colon == q || colon >= nl || *colon != ':') return -1;
        if (nh >= MAX_HEADERS) return -1;
        const char *v = colon + 1;
        size_t vl = (size_t)(nl - v);
        for (size_t i = 0; i < vl; i++) { /* a bare LF would split the client's head */
            unsigned char ch = (unsigned char)v[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return -1;
        }
        ltrim(&v, &vl);
        hs[nh++] = (header_t){q, v, (size_t)(colon - q), vl};
        q = nl + 2;
    }
    buf_t *o = &c->out;
    if (status < 200 && status != 101) {
        /* interim (100 Continue, 103 Early Hints): passed on, hop-by-hop dropped */
        buf_fmt(o, "HTTP/1.1 %lld ", status);
        if (rlen) buf_add(o, reason, rlen);
        else BUF_LIT(o, "Continue");
        BUF_LIT(o, "\r\n");
        for (int i = 0; i < nh; i++) {
            const char *n = hs[i].name;
            size_t nl = hs[i].nlen;
            if (is_hop(n, nl))
                continue;
            buf_add(o, n, nl);
            BUF_LIT(o, ": ");
            buf_add(o, hs[i].value, hs[i].vlen);
            BUF_LIT(o, "\r\n");
        }
        BUF_LIT(o, "\r\n");
        return (long)headlen;
    }
    if (!rlen) return -1;
    /* which headers go on; Connection tokens naming other headers drop those too */
    int has_length = 0, chunked = 0, has_rid = 0, dclose = 0, dkeep = 0;
    long long clen = -1;
    const char *drop[16];
    size_t droplen[16];
    int ndrop = 0;
    for (int i = 0; i < nh; i++) {
        const char *n = hs[i].name, *v = hs[i].value;
        size_t nl = hs[i].nlen, vl = hs[i].vlen;
        if (lower_eq(n, nl, "connection")) {
            size_t a = 0;
            while (a < vl) {
                size_t z = a;
                while (z < vl && v[z] != ',') z++;
                const char *t = v + a;
                size_t tl = z - a;
                trim(&t, &tl);
                if (lower_eq(t, tl, "close")) dclose = 1;
                else if (lower_eq(t, tl, "keep-alive")) dkeep = 1;
                if (tl && ndrop < 16) {
                    drop[ndrop] = t;
                    droplen[ndrop++] = tl;
                }
                a = z + 1;
            }
        } else if (lower_eq(n, nl, "content-length")) {
            trim(&v, &vl);
            long long x = 0;
            if (!vl || vl > 18) return -1;
            for (size_t k = 0; k < vl; k++) {
                if (v[k] < '0' || v[k] > '9') return -1;
                x = x * 10 + (v[k] - '0');
            }
            if (clen >= 0 && clen != x) return -1;
            clen = x;
            has_length = 1;
        } else if (lower_eq(n, nl, "transfer-encoding")) {
            chunked = 1;
        } else if (lower_eq(n, nl, "x-request-id")) {
            has_rid = 1;
        }
    }
    if (has_length && chunked) return -1; /* two framings: the parser refuses it */
    c->status = status;
    size_t head_at = o->len;
    buf_fmt(o, "HTTP/1.1 %lld ", status);
    buf_add(o, reason, rlen);
    BUF_LIT(o, "\r\n");
    for (int i = 0; i < nh; i++) {
        const char *n = hs[i].name;
        size_t nl = hs[i].nlen;
        if (is_hop(n, nl))
            continue;
        int dropped = 0;
        for (int k = 0; k < ndrop && !dropped; k++) {
            const char *t = drop[k];
            size_t tl = droplen[k];
            if (lower_eq(t, tl, "close") || lower_eq(t, tl, "keep-alive")) continue;
            if (tl == nl) {
                dropped = 1;
                for (size_t j = 0; j < nl; j++) {
                    char x = n[j], y = t[j];
                    if (x >= 'A' && x <= 'Z') x += 32;
                    if (y >= 'A' && y <= 'Z') y += 32;
                    if (x != y) {
                        dropped = 0;
                        break;
                    }
                }
            }
        }
        if (dropped) continue;
        buf_add(o, n, nl);
        BUF_LIT(o, ": ");
        buf_add(o, hs[i].value, hs[i].vlen);
        BUF_LIT(o, "\r\n");
    }
    if (!has_rid) buf_add(o, c->req.p + c->rid_at, c->rid_len);
    BUF_LIT(o, "Via: 1.1 kiku\r\n");
    int no_body = c->head_req || status == 204 || status == 304 || status == 101;
    if (status == 101) c->close_after = 1; /* an upgrade the client did not ask for */
    c->body = B_NONE;
    if (!no_body) {
        if (chunked) {
            c->body = B_CHUNKED;
            c->chunk_state = CH_SIZE;
        } else if (has_length) {
            c->body = B_LENGTH;
            c->remaining = clen;
        } else {
            c->body = B_CLOSE;
        }
        if (chunked || !has_length) {
            if (c->http10) c->close_after = 1;
            else {
                c->rechunk = 1;
                BUF_LIT(o, "Transfer-Encoding: chunked\r\n");
            }
        }
    }
    if (c->close_after || !c->keep_alive) BUF_LIT(o, "Connection: close\r\n");
    else if (c->http10) BUF_LIT(o, "Connection: keep-alive\r\n");
    BUF_LIT(o, "\r\n");
    c->bytes_out += (long long)(o->len - head_at);
    c->dyno_keep_alive = dyno10 ? dkeep && !dclose : !dclose;
    return (long)headlen;
}

static void emit_body(client_t *c, const char *p, size_t n) {
    if (!n) return;
    c->bytes_out += (long long)n;
    if (c->rechunk) {
        buf_fmt(&c->out, "%llx\r\n", (long long)n);
        buf_add(&c->out, p, n);
        BUF_LIT(&c->out, "\r\n");
    } else {
        buf_add(&c->out, p, n);
    }
}

/* The response is all here: the client has it; the dyno's connection goes back to the
 * pool when it can carry another request. */
static void response_done(lane_t *L, client_t *c, bconn_t *bc, int leftover) {
    if (c->rechunk) BUF_LIT(&c->out, "0\r\n\r\n");
    int reusable = c->body != B_CLOSE && c->dyno_keep_alive && !leftover && bc != NULL;
    c->bc = NULL;
    if (bc) {
        bc->owner = NULL;
        bc->in.len = 0;
        buf_trim(&bc->in);
        if (reusable && bc->b->live && bc->b->nidle < MAX_IDLE_PER_BACKEND) {
            bc->idle_since = now_mono();
            bc->next_idle = bc->b->idle;
            bc->b->idle = bc;
            bc->b->nidle++;
            bconn_events(L, bc, EPOLLIN);
        } else {
            bconn_close(L, bc);
        }
    }
    log_request(L, c, NULL, NULL);
    finish(L, c);
}

/* Bytes from the dyno for c: the head, then the body. Returns 0 when c was freed. */
static void response_bytes(lane_t *L, client_t *c, bconn_t *bc) {
    buf_t *in = &bc->in;
    for (;;) {
        if (!c->head_sent) {
            if (in->len == 0) break;
            long n = response_head(L, c, bc);
            if (n < 0) {
                reply(L, c, &H17);
                return;
            }
            if (n == 0) break;
            buf_consume(in, (size_t)n);
            if (c->status == 0) continue; /* an interim response: the real one follows */
            c->head_sent = 1;
            c->last_activity = now_mono();
            set_deadline(c, D_IDLE, c->last_activity + L->idle_timeout);
            c->state = C_BODY;
            if (c->status == 101) { /* switched protocols unasked: relayed, then closed */
                log_request(L, c, NULL, NULL);
                abort_response(L, c);
                return;
            }
            if (c->body == B_NONE || (c->body == B_LENGTH && c->remaining == 0)) {
                response_done(L, c, bc, in->len > 0);
                return;
            }
            continue;
        }
        if (in->len == 0) break;
        c->last_activity = now_mono();
        if (c->body == B_LENGTH) {
            size_t n = in->len < (size_t)c->remaining ? in->len : (size_t)c->remaining;
            emit_body(c, in->p, n);
            c->remaining -= (long long)n;
            if (c->remaining == 0) {
                response_done(L, c, bc, in->len > n);
                return;
            }
            in->len = 0;
            break;
        }
        if (c->body == B_CLOSE) {
            emit_body(c, in->p, in->len);
            in->len = 0;
            break;
        }
        /* chunked: decoded, and framed again per piece as Python's path does */
        const char *p = in->p;
        size_t len = in->len, i = 0;
        int bad = 0;
        while (i < len && c->chunk_state != CH_DONE) {
            if (c->chunk_state == CH_SIZE || c->chunk_state == CH_TRAILER) {
                const char *nl = memchr(p + i, '\n', len - i);
                if (!nl) {
                    if (len - i > 4096) bad = 1;
                    break;
                }
                size_t ll = (size_t)(nl - (p + i));
                if (ll == 0 || p[i + ll - 1] != '\r') {
                    bad = 1;
                    break;
                }
                const char *line = p + i;
                size_t linelen = ll - 1;
                i += ll + 1;
                if (c->chunk_state == CH_TRAILER) {
                    if (linelen == 0) c->chunk_state = CH_DONE;
                    continue;
                }
                long long size = 0;
                size_t k = 0;
                while (k < linelen) {
                    char ch = line[k];
                    int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                            : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                            : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                                       : -1;
                    if (d < 0) break;
                    if (size > (1LL << 40)) {
                        bad = 1;
                        break;
                    }
                    size = size * 16 + d;
                    k++;
                }
                if (bad || k == 0 || (k < linelen && line[k] != ';' && line[k] != ' ' && line[k] != '\t')) {
                    bad = 1;
                    break;
                }
                if (size == 0) c->chunk_state = CH_TRAILER;
                else {
                    c->remaining = size;
                    c->chunk_state = CH_DATA;
                }
            } else if (c->chunk_state == CH_DATA) {
                size_t n = len - i < (size_t)c->remaining ? len - i : (size_t)c->remaining;
                emit_body(c, p + i, n);
                c->remaining -= (long long)n;
                i += n;
                if (c->remaining == 0) c->chunk_state = CH_CRLF;
            } else if (c->chunk_state == CH_CRLF) {
                if (len - i < 2) break;
                if (p[i] != '\r' || p[i + 1] != '\n') {
                    bad = 1;
                    break;
                }
                i += 2;
                c->chunk_state = CH_SIZE;
            }
        }
        if (bad) {
            log_request(L, c, &H17, NULL);
            abort_response(L, c);
            return;
        }
        buf_consume(in, i);
        if (c->chunk_state == CH_DONE) {
            response_done(L, c, bc, in->len > 0);
            return;
        }
        break;
    }
    flush_client(L, c);
}

/* The dyno closed (or broke) its connection while c waited on it. */
static void backend_lost(lane_t *L, client_t *c) {
    if (!c->head_sent) {
        if (c->reused && !c->has_body && !c->retried) {
            /* a pooled connection the dyno had closed: once more, fresh */
            c->retried = 1;
            drop_bconn(L, c);
            connect_fresh(L, c);
            return;
        }
        reply(L, c, &H13);
        return;
    }
    if (c->body == B_CLOSE) {
        drop_bconn(L, c);
        c->body = B_NONE;
        if (c->rechunk) BUF_LIT(&c->out, "0\r\n\r\n");
        c->rechunk = 0;
        log_request(L, c, NULL, NULL);
        finish(L, c);
        return;
    }
    log_request(L, c, &H18, "backend");
    abort_response(L, c);
}

/* ------------------------------------------------------------------ events */

/* One read into the lane's scratch buffer, kept in `b` (a connection holds only what it
 * has): 1 bytes came, 0 none yet, -1 the connection ended or broke. */
static int read_into(lane_t *L, int fd, buf_t *b) {
    ssize_t n = read(fd, L->scratch, READ_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (n <= 0 || buf_add(b, L->scratch, (size_t)n)) return -1;
    return 1;
}

static void on_client(lane_t *L, client_t *c, uint32_t ev) {
    if (ev & EPOLLOUT) {
        flush_client(L, c);
        return;  /* EPOLLIN comes again (level-triggered) */
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        int got = read_into(L, c->fd, &c->in);
        if (got <= 0) {
            if (got < 0) client_lost(L, c);
            return;
        }
        if (c->state == C_IDLE && c->out.len == 0) {
            process_requests(L, c); /* else once the client has the last response */
        } else if (c->in.len >= MAX_IN) {
            client_events(c, c->out.len ? EPOLLOUT : 0);
        }
    }
}

static void on_bconn(lane_t *L, bconn_t *bc, uint32_t ev) {
    client_t *c = bc->owner;
    if (!c) {
        /* idle in the pool: bytes or EOF from it mean it cannot be trusted */
        bconn_close(L, bc);
        return;
    }
    if (bc->connecting) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(bc->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        c->connect_ms += (long)((now_mono() - c->connect_started) * 1000);
        if (err) {
            drop_bconn(L, c);
            connect_failed(L, c, 0);
            return;
        }
        bc->connecting = 0;
        send_request(L, c);
        return;
    }
    if (ev & EPOLLOUT && bc->out.len) {
        ssize_t w = send(bc->fd, bc->out.p, bc->out.len, MSG_NOSIGNAL);
        if (w > 0) buf_consume(&bc->out, (size_t)w);
        if (bc->out.len == 0) bconn_events(L, bc, EPOLLIN);
        if (!(ev & EPOLLIN)) return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        int got = read_into(L, bc->fd, &bc->in);
        if (got <= 0) {
            if (got < 0) backend_lost(L, c);
            return;
        }
        response_bytes(L, c, bc);
    }
}

static void on_listen(lane_t *L) {
    for (int k = 0; k < 64 && L->accepting; k++) {
        struct sockaddr_in addr;
        socklen_t al = sizeof addr;
        int fd = accept4(L->listen_fd, (struct sockaddr *)&addr, &al, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The listening socket stays readable: without a pause this would spin.
                 * Clients wait in the backlog; tick() tries again in 0.1 s. */
                epoll_ctl(L->epfd, EPOLL_CTL_DEL, L->listen_fd, NULL);
                L->accept_again = now_mono() + 0.1;
            }
            return;
        }
        client_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->kind = K_CLIENT;
        c->fd = fd;
        c->lane = L;
        if (addr.sin_family == AF_INET) {
            inet_ntop(AF_INET, &addr.sin_addr, c->ip, sizeof c->ip);
            c->iplen = strlen(c->ip);
        }
        c->next = L->clients;
        if (L->clients) L->clients->prev = c;
        L->clients = c;
        L->nclients++;
        c->state = C_IDLE;
        set_deadline(c, D_KEEPALIVE, now_mono() + L->keepalive_timeout);
        client_events(c, EPOLLIN);
    }
}

/* ------------------------------------------------------------------ Python: Lane */

static PyObject *take_log(lane_t *L) {
    PyObject *pending = NULL;
    if (PyList_GET_SIZE(L->pending)) {
        pending = L->pending;
        L->pending = PyList_New(0);
    }
    PyObject *log = Py_None;
    if (L->log.len) {
        log = PyBytes_FromStringAndSize(L->log.p, (Py_ssize_t)L->log.len);
        L->log.len = 0;
        buf_trim(&L->log);
    } else {
        Py_INCREF(Py_None);
    }
    long lines = L->loglines;
    L->loglines = 0;
    if (!pending) {
        pending = Py_None;
        Py_INCREF(Py_None);
    }
    return Py_BuildValue("(NlN)", log, lines, pending);
}

static PyObject *Lane_poll(lane_t *L, PyObject *Py_UNUSED(args)) {
    struct epoll_event evs[MAX_EVENTS];
    for (int round = 0; round < 8; round++) {
        int n = epoll_wait(L->epfd, evs, MAX_EVENTS, 0);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) {
            tag_t *t = evs[i].data.ptr;
            if (t->kind == K_LISTEN) on_listen(L);
            else if (t->kind == K_CLIENT) on_client(L, (client_t *)t, evs[i].events);
            else if (t->kind == K_BACKEND) on_bconn(L, (bconn_t *)t, evs[i].events);
        }
        bury(L);
        if (n < MAX_EVENTS) break;
    }
    return take_log(L);
}

static PyObject *Lane_tick(lane_t *L, PyObject *Py_UNUSED(args)) {
    double now = now_mono();
    if (L->accept_again > 0 && now >= L->accept_again && L->accepting) {
        L->accept_again = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &L->listen_tag};
        epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->listen_fd, &ev);
    }
    client_t *c = L->clients;
    while (c) {
        client_t *next = c->next;
        if (c->kind == K_CLIENT && c->dkind != D_NONE && now >= c->deadline) {
            switch (c->dkind) {
            case D_KEEPALIVE:
                if (c->state == C_IDLE && c->in.len == 0 && c->out.len == 0) client_free(L, c, 1);
                else set_deadline(c, D_KEEPALIVE, now + L->keepalive_timeout);
                break;
            case D_PARTIAL:
                if (c->state == C_IDLE && c->out.len == 0) handoff(L, c); /* Python's H28 */
                else c->dkind = D_NONE;
                break;
            case D_CONNECT:
                c->connect_ms += (long)((now - c->connect_started) * 1000);
                drop_bconn(L, c);
                connect_failed(L, c, 1);
                break;
            case D_FIRSTBYTE:
                reply(L, c, &H12);
                break;
            case D_IDLE:
                if (now - c->last_activity >= L->idle_timeout) {
                    log_request(L, c, &H15, NULL);
                    abort_response(L, c);
                } else {
                    set_deadline(c, D_IDLE, c->last_activity + L->idle_timeout);
                }
                break;
            case D_CLOSING:
                client_free(L, c, 1);
                break;
            }
        }
        c = next;
    }
    for (backend_t *b = L->backends; b; b = b->next) {
        bconn_t **pp = &b->idle;
        while (*pp) {
            bconn_t *bc = *pp;
            if (now - bc->idle_since >= L->backend_idle_timeout) bconn_close(L, bc);
            else pp = &bc->next_idle;
        }
    }
    bury(L);
    return take_log(L);
}

static int Lane_init(lane_t *L, PyObject *args, PyObject *kw) {
    static char *names[] = {"listen_fd", "port", "proto", "connect_timeout", "connect_tries",
                            "first_byte_timeout", "idle_timeout", "keepalive_timeout",
                            "backend_idle_timeout", "backlog_per_dyno", "max_app_connections",
                            NULL};
    int fd, port;
    const char *proto;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iisdiddddil", names, &fd, &port, &proto,
                                     &L->connect_timeout, &L->connect_tries, &L->first_byte_timeout,
                                     &L->idle_timeout, &L->keepalive_timeout,
                                     &L->backend_idle_timeout, &L->backlog_per_dyno,
                                     &L->max_app_connections))
        return -1;
    snprintf(L->proto, sizeof L->proto, "%s", proto);
    L->listenerlen = (size_t)snprintf(L->listener, sizeof L->listener,
                                      "\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Port: %d", proto, port);
    L->partial_timeout = L->idle_timeout < 4.0 ? L->idle_timeout / 4 : 1.0;
    L->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (L->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    L->pending = PyList_New(0);
    L->scratch = malloc(READ_SIZE);
    if (!L->pending || !L->scratch) {
        PyErr_NoMemory();
        return -1;
    }
    L->listen_fd = fd;
    L->listen_tag.kind = K_LISTEN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &L->listen_tag};
    if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    L->accepting = 1;
    return 0;
}

/* Backends in no route and used by nothing are freed. */
static void sweep_backends(lane_t *L) {
    backend_t **pp = &L->backends;
    while (*pp) {
        backend_t *b = *pp;
        if (b->refs <= 0 && !b->live) {
            *pp = b->next;
            free(b->dyno);
            free(b);
        } else {
            pp = &b->next;
        }
    }
}

static void free_route_array(route_t *routes, int nr) {
    for (int i = 0; i < nr; i++) {
        for (int k = 0; k < routes[i].nb; k++) routes[i].backends[k]->refs--;
        free(routes[i].backends);
        free(routes[i].host);
    }
    free(routes);
}

/* set_routes([(host, app_id, page, backlog_limit, [(dyno, ip, port), ...]), ...]):
 * the lane's whole table. Dynos no longer in it keep no idle connection. */
static PyObject *Lane_set_routes(lane_t *L, PyObject *arg) {
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "a list of routes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(arg);
    route_t *routes = calloc((size_t)(n ? n : 1), sizeof *routes);
    if (!routes) return PyErr_NoMemory();
    for (backend_t *b = L->backends; b; b = b->next) b->held = b->live, b->live = 0;
    int nr = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *host, *app_id;
        Py_ssize_t hl, al;
        PyObject *page, *backends;
        int limit;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(arg, i), "y#y#SiO!", &host, &hl, &app_id, &al, &page,
                              &limit, &PyList_Type, &backends))
            goto fail;
        Py_ssize_t nb = PyList_GET_SIZE(backends);
        if (nb == 0) continue;
        route_t *r = &routes[nr++];
        r->host = malloc((size_t)hl + 1);
        memcpy(r->host, host, (size_t)hl);
        r->hostlen = (size_t)hl;
        r->app = find_app(L, app_id, (size_t)al);
        Py_INCREF(page);
        Py_XSETREF(r->app->page, page);
        r->backlog_limit = limit;
        r->backends = calloc((size_t)nb, sizeof(backend_t *));
        for (Py_ssize_t k = 0; k < nb; k++) {
            const char *dyno, *ip;
            Py_ssize_t dl;
            int port;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(backends, k), "y#si", &dyno, &dl, &ip, &port))
                goto fail;
            struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
                PyErr_Format(PyExc_ValueError, "not an IPv4 address: %s", ip);
                goto fail;
            }
            backend_t *b = find_backend(L, dyno, (size_t)dl, &addr);
            b->live = 1;
            b->refs++;
            r->backends[r->nb++] = b;
        }
    }
    free_routes(L);
    L->routes = routes;
    L->nroutes = nr;
    unsigned size = 8;
    while (size < (unsigned)nr * 2 + 2) size *= 2;
    L->index = malloc(size * sizeof(int));
    for (unsigned i = 0; i < size; i++) L->index[i] = -1;
    L->indexmask = size - 1;
    for (int i = 0; i < nr; i++) {
        unsigned h = hash_host(routes[i].host, routes[i].hostlen) & L->indexmask;
        while (L->index[h] >= 0) h = (h + 1) & L->indexmask;
        L->index[h] = i;
    }
    for (backend_t *b = L->backends; b; b = b->next) {
        b->held = 0;
        b->refs++; /* kept while its idle connections close */
        if (!b->live)
            while (b->idle) bconn_close(L, b->idle);
        b->refs--;
    }
    sweep_backends(L);
    Py_RETURN_NONE;
fail:
    free_route_array(routes, nr);
    for (backend_t *b = L->backends; b; b = b->next) b->live = b->held, b->held = 0;
    sweep_backends(L);
    return NULL;
}

/* count(app_id, connections, backlog): add to an app's counts (the Python path's
 * requests and connections), and read them: (connections, backlog). */
static PyObject *Lane_count(lane_t *L, PyObject *args) {
    const char *id;
    Py_ssize_t n;
    long connections, backlog;
    if (!PyArg_ParseTuple(args, "y#ll", &id, &n, &connections, &backlog)) return NULL;
    app_t *a = find_app(L, id, (size_t)n);
    if (!a) return PyErr_NoMemory();
    a->connections += connections;
    a->backlog += backlog;
    return Py_BuildValue("(ll)", a->connections, a->backlog);
}

static PyObject *Lane_fileno(lane_t *L, PyObject *Py_UNUSED(a)) { return PyLong_FromLong(L->epfd); }

/* Stop accepting; idle connections close, busy ones after their response. */
static PyObject *Lane_shutdown(lane_t *L, PyObject *Py_UNUSED(a)) {
    if (L->accepting) {
        epoll_ctl(L->epfd, EPOLL_CTL_DEL, L->listen_fd, NULL);
        L->accepting = 0;
    }
    client_t *c = L->clients;
    while (c) {
        client_t *next = c->next;
        if (c->state == C_IDLE && c->out.len == 0) client_free(L, c, 1);
        else c->closing = 1;
        c = next;
    }
    bury(L);
    return take_log(L);
}

static PyObject *Lane_active(lane_t *L, PyObject *Py_UNUSED(a)) { return PyLong_FromLong(L->nclients); }

static void close_all(lane_t *L) {
    while (L->clients) {
        client_t *c = L->clients;
        uncount(c);
        drop_bconn(L, c);
        client_free(L, c, 1);
    }
    while (L->bconns) bconn_close(L, L->bconns);
    bury(L);
}

static PyObject *Lane_close(lane_t *L, PyObject *Py_UNUSED(a)) {
    if (L->accepting) {
        epoll_ctl(L->epfd, EPOLL_CTL_DEL, L->listen_fd, NULL);
        L->accepting = 0;
    }
    close_all(L);
    Py_RETURN_NONE;
}

static void Lane_dealloc(lane_t *L) {
    if (L->epfd > 0) {
        close_all(L);
        free_routes(L);
        close(L->epfd);
    }
    while (L->backends) {
        backend_t *b = L->backends;
        L->backends = b->next;
        free(b->dyno);
        free(b);
    }
    while (L->apps) {
        app_t *a = L->apps;
        L->apps = a->next;
        Py_XDECREF(a->page);
        free(a->id);
        free(a);
    }
    buf_free(&L->log);
    free(L->scratch);
    Py_XDECREF(L->pending);
    Py_TYPE(L)->tp_free((PyObject *)L);
}

static PyMethodDef Lane_methods[] = {
    {"poll", (PyCFunction)Lane_poll, METH_NOARGS, "Handle what is ready: (log, lines, handoffs)."},
    {"tick", (PyCFunction)Lane_tick, METH_NOARGS, "Deadlines that are due: (log, lines, handoffs)."},
    {"set_routes", (PyCFunction)Lane_set_routes, METH_O, "Replace the lane's route table."},
    {"count", (PyCFunction)Lane_count, METH_VARARGS, "Add to an app's counts; read them."},
    {"fileno", (PyCFunction)Lane_fileno, METH_NOARGS, "The epoll descriptor to watch."},
    {"shutdown", (PyCFunction)Lane_shutdown, METH_NOARGS, "Stop accepting; close idle clients."},
    {"active", (PyCFunction)Lane_active, METH_NOARGS, "Client connections open."},
    {"close", (PyCFunction)Lane_close, METH_NOARGS, "Close every connection."},
    {NULL},
};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kiku.router._lane.Lane",
    .tp_basicsize = sizeof(lane_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_methods = Lane_methods,
    .tp_doc = "The router's fast lane on one listening socket.",
};

static struct PyModuleDef lane_module = {PyModuleDef_HEAD_INIT, "_lane", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__lane(void) {
    if (PyType_Ready(&LaneType) < 0) return NULL;
    PyObject *m = PyModule_Create(&lane_module);
    if (!m) return NULL;
    Py_INCREF(&LaneType);
    PyModule_AddObject(m, "Lane", (PyObject *)&LaneType);
    return m;
}
