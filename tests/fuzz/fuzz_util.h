/*
 * fuzz_util - what the libFuzzer targets of tests/fuzz share: the entry point's prototype,
 * the input as a C string, the input as a file, and a small deterministic byte source for
 * choices (flags, split points) taken from the input itself.
 *
 * Contract:
 * - Everything here is static inline: each target is one translation unit.
 * - fuzz_file writes into a private directory made once per process (removed at exit), so
 *   targets that read paths (users file, queue file, mbox) never touch anything else.
 * - fuzz_check aborts with a message when an invariant does not hold: libFuzzer then
 *   saves the input as a crash.
 */
#ifndef DMAIL_FUZZ_UTIL_H
#define DMAIL_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_check - abort with the failed condition when ok is false. */
#define fuzz_check(ok)                                                                             \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #ok);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* fuzz_cstr - a malloc'd NUL-terminated copy of the input (free it). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static char fuzz_dir_path[64];

static inline void
fuzz_dir_remove(void)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

/* fuzz_dir - the process's private temporary directory. */
static inline const char *
fuzz_dir(void)
{
    if (fuzz_dir_path[0] == '\0') {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/dmail-fuzz-XXXXXX",
                 t != NULL && t[0] != '\0' && strlen(t) < 40 ? t : "/tmp");
        if (mkdtemp(fuzz_dir_path) == NULL)
            abort();
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* fuzz_file - write n bytes to NAME in the private directory (mode 0600, replaced each
 * time); returns the path (static: valid until the next call). */
static inline const char *
fuzz_file(const char *name, const void *data, size_t n)
{
    static char path[128];
    int fd;

    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, (const char *)data + off, n - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    close(fd);
    return path;
}

/* A byte source for choices: takes bytes from the front of the input. */
struct fuzz_src {
    const uint8_t *p;
    size_t n;
};

/* fuzz_byte - the next byte, 0 when the input is used up. */
static inline uint8_t
fuzz_byte(struct fuzz_src *s)
{
    if (s->n == 0)
        return 0;
    s->n--;
    return *s->p++;
}

#endif
