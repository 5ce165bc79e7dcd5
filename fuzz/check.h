// What the fuzz targets share: FUZZ_CHECK, which traps (so that libFuzzer keeps the input as a
// crash) when a property the target checks does not hold, after printing which one.
#pragma once

#include <cstdio>

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                                      \
    }                                                                                        \
  } while (0)
