/* bounded.h — run a check in a child process whose address space is capped
 * (RLIMIT_AS), so a loader that allocates what a header claims before
 * checking it fails the test instead of quietly succeeding on a machine with
 * memory to spare. Under AddressSanitizer (which reserves terabytes of
 * address space) the cap is skipped and the check runs uncapped. */
#ifndef DS_BOUNDED_H
#define DS_BOUNDED_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define DS_BOUNDED_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DS_BOUNDED_ASAN 1
#endif
#endif

/* fn(arg) in a child limited to mb MiB of address space; returns fn's result
 * (1: pass), 0 if the child failed, crashed or ran out of memory. */
static inline int ds_bounded(size_t mb, int (*fn)(const void *), const void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
#ifndef DS_BOUNDED_ASAN
        struct rlimit r = {(rlim_t)mb << 20, (rlim_t)mb << 20};
        if (setrlimit(RLIMIT_AS, &r) != 0) _exit(3);
#else
        (void)mb;
#endif
        _exit(fn(arg) ? 0 : 1);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#endif
