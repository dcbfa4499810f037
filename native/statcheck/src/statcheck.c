/*
 * thinlayer-statcheck: one call that lstat()s a list of files and compares each with the
 * signature Node's fs.lstatSync gave when the file was hashed. It exists for speed only: the
 * same loop in JavaScript spends most of its time building fs.Stats objects (four Date objects
 * each on Node 20), about 30 ms for 20,000 files against about 12 ms here.
 *
 *   check(root: Buffer, paths: Buffer, expected: Float64Array) -> number
 *
 * root: the directory the paths are relative to, with a trailing '/'. paths: the relative
 * paths, UTF-8, separated by NUL. expected: 6 doubles per path, as Node computes them:
 * dev, ino, mode, size, mtimeMs, ctimeMs (ms = sec * 1e3 + nsec / 1e6, in that order of
 * operations; -ffp-contract=off keeps the compiler from fusing it into an FMA, which would
 * round differently). Returns the index of the first path whose lstat fails or differs in any
 * field, or the number of paths when all match. It never follows a symlink and writes nothing.
 */
#ifdef _WIN32
#error "thinlayer-statcheck is POSIX-only; thinlayer uses fs.lstatSync without it"
#endif
#include <node_api.h>
#include <limits.h>
#include <string.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __APPLE__
#define MTIM(s) ((s).st_mtimespec)
#define CTIM(s) ((s).st_ctimespec)
#else
#define MTIM(s) ((s).st_mtim)
#define CTIM(s) ((s).st_ctim)
#endif

#define FIELDS 6
#define MAX_THREADS 4
#define MIN_PER_THREAD 2048

static napi_value fail(napi_env env, const char *msg) {
    napi_throw_type_error(env, NULL, msg);
    return NULL;
}

static double ms(time_t sec, long nsec) {
    return (double)sec * 1e3 + (double)nsec / 1e6;
}

/* One range of paths, checked by one thread. */
struct range {
    const char *root;
    size_t root_len;
    const char *paths; /* the first path of this range */
    size_t paths_len;  /* bytes from `paths` to the end of the buffer */
    const double *expected;
    size_t begin, end; /* path indexes [begin, end) */
    size_t first_bad;  /* out: first mismatching index, or `end` */
};

static void *check_range(void *arg) {
    struct range *r = (struct range *)arg;
    char path[PATH_MAX];
    memcpy(path, r->root, r->root_len);
    size_t at = 0, i = r->begin;
    for (; i < r->end; i++) {
        if (at >= r->paths_len) break; /* no path left: every path is at least one byte */
        size_t len = strnlen(r->paths + at, r->paths_len - at);
        if (r->root_len + len >= sizeof path) break;
        memcpy(path + r->root_len, r->paths + at, len);
        path[r->root_len + len] = '\0';
        at += len + 1;
        struct stat st;
        if (lstat(path, &st) != 0) break;
        const double *e = r->expected + i * FIELDS;
        if ((double)st.st_dev != e[0] || (double)st.st_ino != e[1] || (double)st.st_mode != e[2] || (double)st.st_size != e[3] ||
            ms(MTIM(st).tv_sec, MTIM(st).tv_nsec) != e[4] || ms(CTIM(st).tv_sec, CTIM(st).tv_nsec) != e[5]) {
            break;
        }
    }
    r->first_bad = i;
    return NULL;
}

static napi_value check(napi_env env, napi_callback_info info) {
    size_t argc = 3;
    napi_value argv[3];
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) {
        return fail(env, "check(root: Buffer, paths: Buffer, expected: Float64Array) takes 3 arguments");
    }
    bool is;
    char *root, *paths;
    size_t root_len, paths_len;
    if (napi_is_buffer(env, argv[0], &is) != napi_ok || !is || napi_get_buffer_info(env, argv[0], (void **)&root, &root_len) != napi_ok) {
        return fail(env, "check: root must be a Buffer");
    }
    if (napi_is_buffer(env, argv[1], &is) != napi_ok || !is || napi_get_buffer_info(env, argv[1], (void **)&paths, &paths_len) != napi_ok) {
        return fail(env, "check: paths must be a Buffer");
    }
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_is_typedarray(env, argv[2], &is) != napi_ok || !is ||
        napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array ||
        length % FIELDS != 0) {
        return fail(env, "check: expected must be a Float64Array of 6 numbers per path");
    }
    size_t count = length / FIELDS;
    napi_value result;
    if (count == 0 || root_len >= PATH_MAX) {
        /* No path under so long a root can be lstat'ed: the first one (if any) is a mismatch. */
        napi_create_double(env, 0, &result);
        return result;
    }

    /* Split into up to MAX_THREADS ranges of at least MIN_PER_THREAD paths: lstat is kernel work
       that runs in parallel, and on 2 cores this about halves a 20,000-file check. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n_threads = cpus > 1 ? (size_t)cpus : 1;
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if (n_threads > count / MIN_PER_THREAD) n_threads = count / MIN_PER_THREAD;
    if (n_threads < 1) n_threads = 1;
    struct range ranges[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    size_t at = 0, index = 0;
    for (size_t t = 0; t < n_threads; t++) {
        size_t end = t + 1 == n_threads ? count : count * (t + 1) / n_threads;
        ranges[t] = (struct range){root, root_len, paths + at, paths_len - at, (const double *)data, index, end, end};
        /* Skip to the first path of the next range. With fewer paths than signatures, the later
           ranges start at the end of the buffer and report a mismatch at once. */
        for (; index < end; index++) {
            if (at >= paths_len) {
                index = end;
                break;
            }
            at += strnlen(paths + at, paths_len - at) + 1;
        }
        if (at > paths_len) at = paths_len;
    }
    for (size_t t = 1; t < n_threads; t++) started[t] = pthread_create(&threads[t], NULL, check_range, &ranges[t]) == 0;
    check_range(&ranges[0]);
    for (size_t t = 1; t < n_threads; t++) {
        if (started[t]) pthread_join(threads[t], NULL);
        else check_range(&ranges[t]);
    }
    size_t first_bad = count;
    for (size_t t = 0; t < n_threads; t++) {
        if (ranges[t].first_bad < ranges[t].end) {
            first_bad = ranges[t].first_bad;
            break;
        }
    }
    napi_create_double(env, (double)first_bad, &result);
    return result;
}

NAPI_MODULE_INIT() {
    napi_value fn;
    if (napi_create_function(env, "check", NAPI_AUTO_LENGTH, check, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, "check", fn) != napi_ok) return NULL;
    return exports;
}
