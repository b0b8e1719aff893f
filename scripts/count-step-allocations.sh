#!/usr/bin/env bash
# Counts heap allocations of steady-state training steps and of their training crops: builds a tiny
# malloc-counting shim, preloads it into the test binary (release build, as training runs) and runs the
# allocation tests (NNTests: the step; AugmentTests: crops with every augmentation), which read the counters
# around their loops (they skip themselves when the shim is absent).
#   scripts/count-step-allocations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shim=$(mktemp -d)/malloc-counter.so
cat > "${shim%.so}.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdatomic.h>
#include <string.h>
/* Every allocation entry point forwards to glibc's and counts the call, separately when the caller is
   OpenBLAS (whose sgemm allocates a few internal buffers per call on some shapes). */
static atomic_long ours, openblas;
long nn_allocation_count(void) { return atomic_load(&ours); }
long nn_openblas_allocation_count(void) { return atomic_load(&openblas); }
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static void count(void *caller) {
    Dl_info info;
    int fromOpenBLAS = dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, "openblas");
    atomic_fetch_add(fromOpenBLAS ? &openblas : &ours, 1);
}
#define CALLER __builtin_return_address(0)
void *malloc(size_t n) { count(CALLER); return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { count(CALLER); return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { count(CALLER); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { count(CALLER); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { count(CALLER); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    count(CALLER);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
C
cc -O2 -shared -fPIC -o "$shim" "${shim%.so}.c"
swift build -c release -Xswiftc -enable-testing --build-tests
LD_PRELOAD="$shim" swift test -c release -Xswiftc -enable-testing --skip-build --filter AllocationTests 2>&1 \
    | grep -E "allocations|error|Executed"
