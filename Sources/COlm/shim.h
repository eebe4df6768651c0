#ifndef SEALBRIDGE_COLM_SHIM_H
#define SEALBRIDGE_COLM_SHIM_H
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <string.h>
#include <sys/random.h>
#include <olm/olm.h>
#include <olm/pk.h>

/// Wipes `length` bytes at `pointer` in a way the optimiser may not remove.
static inline void sealbridge_olm_wipe(void *pointer, size_t length) {
    if (pointer != NULL && length > 0) { explicit_bzero(pointer, length); }
}
#endif
