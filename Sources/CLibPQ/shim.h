#ifndef SEALBRIDGE_CLIBPQ_SHIM_H
#define SEALBRIDGE_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
