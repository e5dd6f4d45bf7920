// The floor under every hop of a request on this machine: two processes bounce a 100-byte message over a
// loopback TCP connection (TCP_NODELAY, epoll as SwiftNIO waits) and the round trip is timed, once with the
// two processes pinned to different cores and once sharing one core.
//
//   gcc -O2 -o /tmp/loopback-pingpong scripts/loopback-pingpong.c && /tmp/loopback-pingpong
//
// A round trip is two crossings; each crossing to a process that sleeps on the other core pays that core's
// wake-up. README, "One client: five hops", quotes what it printed.
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { messageBytes = 100, warmup = 1000, rounds = 20000 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
}

static int waitable(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int poll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN};
    epoll_ctl(poll, EPOLL_CTL_ADD, fd, &event);
    return poll;
}

static int readFull(int fd, char *bytes) {
    int done = 0;
    while (done < messageBytes) {
        ssize_t got = read(fd, bytes + done, messageBytes - done);
        if (got <= 0) return -1;
        done += (int)got;
    }
    return 0;
}

static double roundTripMicroseconds(int echoCore) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1) != 0
        || getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
        perror("listen");
        exit(1);
    }
    fflush(stdout);  // the child must not print what the parent buffered
    pid_t echo = fork();
    if (echo == 0) {
        pin(echoCore);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) _exit(1);
        int poll = waitable(fd);
        char bytes[messageBytes];
        for (;;) {
            struct epoll_event event;
            epoll_wait(poll, &event, 1, -1);
            if (readFull(fd, bytes) != 0) _exit(0);
            if (write(fd, bytes, messageBytes) != messageBytes) _exit(1);
        }
    }
    pin(0);
    int fd = accept(listener, NULL, NULL);
    int poll = waitable(fd);
    char bytes[messageBytes] = {0};
    double start = 0;
    for (int round = 0; round < warmup + rounds; round++) {
        if (round == warmup) start = now();
        if (write(fd, bytes, messageBytes) != messageBytes) exit(1);
        struct epoll_event event;
        epoll_wait(poll, &event, 1, -1);
        if (readFull(fd, bytes) != 0) exit(1);
    }
    double result = (now() - start) / rounds * 1e6;
    close(fd);
    close(listener);
    waitpid(echo, NULL, 0);
    return result;
}

int main(void) {
    printf("round trip, two cores: %.1f us\n", roundTripMicroseconds(1));
    printf("round trip, one core:  %.1f us\n", roundTripMicroseconds(0));
    return 0;
}
