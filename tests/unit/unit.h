/* unit.h — common includes for cmocka unit tests (one binary per module). */
#ifndef WISP_UNIT_H
#define WISP_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#endif
