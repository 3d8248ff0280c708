/*
 * The relay floor's SMTP side in C (issue 16, relay at 1 session): what one
 * SMTP session costs on this machine with no runtime at all. Answers SMTP on
 * 127.0.0.1:PORT, one connection at a time (every command 250, DATA 354);
 * for each message it writes QUEUE/tmp/NAME, fsyncs it, renames it into
 * QUEUE/incoming, fsyncs that directory (postern's durability rule), tells
 * the queue manager role of bench/lib/path-floor-roles.ts the name on the
 * unix socket QMGR, and then answers 250: the same steps as that program's
 * `smtpd` role, blocking system calls and nothing else.
 *
 *   floor-smtpd PORT QUEUE QMGR
 *
 * Bench-only: bench/relay-floor.ts compiles it with cc into its private tree
 * and runs it as root; it trusts its one client and checks nothing a real
 * server must (a line longer than its buffer ends the session).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF (1 << 20)

static char buf[BUF];
static size_t have;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void put(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) die("write");
        s += w;
        n -= (size_t)w;
    }
}

/* Reads more input; 0 at the end of the connection. */
static int more(int fd) {
    if (have == BUF) return 0;
    ssize_t r = read(fd, buf + have, BUF - have);
    if (r <= 0) return 0;
    have += (size_t)r;
    return 1;
}

#define PUTS(fd, s) put((fd), (s), strlen(s))

static void consume(size_t n) {
    memmove(buf, buf + n, have - n);
    have -= n;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor-smtpd PORT QUEUE QMGR\n");
        return 64;
    }
    const char *queue = argv[2];
    char incoming[4096], tmp[4096], final[4096];
    snprintf(incoming, sizeof incoming, "%s/incoming", queue);
    int dirfd = open(incoming, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0) die("open incoming");

    int qmgr = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    strncpy(un.sun_path, argv[3], sizeof un.sun_path - 1);
    if (connect(qmgr, (struct sockaddr *)&un, sizeof un) < 0) die("connect qmgr");

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&in, sizeof in) < 0) die("bind");
    if (listen(ls, 128) < 0) die("listen");

    unsigned long seq = 0;
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        have = 0;
        PUTS(c, "220 floor ESMTP\r\n");
        int inData = 0, open_ = 1;
        while (open_) {
            if (inData) {
                char *end = memmem(buf, have, "\r\n.\r\n", 5);
                if (!end) {
                    if (!more(c)) break;
                    continue;
                }
                size_t len = (size_t)(end - buf) + 2;
                snprintf(tmp, sizeof tmp, "%s/tmp/%d.%lu", queue, getpid(), ++seq);
                snprintf(final, sizeof final, "%s/incoming/%d.%lu", queue, getpid(), seq);
                int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
                if (fd < 0) die("open");
                put(fd, buf, len);
                if (fsync(fd) < 0) die("fsync");
                close(fd);
                if (rename(tmp, final) < 0) die("rename");
                if (fsync(dirfd) < 0) die("fsync dir");
                char name[64];
                int n = snprintf(name, sizeof name, "%d.%lu\n", getpid(), seq);
                put(qmgr, name, (size_t)n);
                consume(len + 3);
                inData = 0;
                PUTS(c, "250 2.0.0 Ok: queued\r\n");
                continue;
            }
            char *nl = memmem(buf, have, "\r\n", 2);
            if (!nl) {
                if (!more(c)) break;
                continue;
            }
            size_t len = (size_t)(nl - buf) + 2;
            if (len >= 6 && strncasecmp(buf, "DATA", 4) == 0) {
                inData = 1;
                PUTS(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
            } else if (len >= 6 && strncasecmp(buf, "QUIT", 4) == 0) {
                PUTS(c, "221 2.0.0 Bye\r\n");
                open_ = 0;
            } else {
                PUTS(c, "250 Ok\r\n");
            }
            consume(len);
        }
        close(c);
    }
}
