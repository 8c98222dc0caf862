// A wasi:http handler in C that answers from a precomputed index: which numbers below ten
// million are prime, and how many primes there are up to each (a sieve of Eratosthenes and a
// running count, 2 MB of tables). GET /N answers whether N is prime and pi(N).
//
// Building the index takes tens of milliseconds. With `spec.init: {function:
// wizer-initialize}` Shoal builds it once, when the app is deployed, and every request starts
// from a snapshot of memory that already holds it; without spec.init each request (a fresh
// instance) builds it first. The answer says which happened.
//
// Built by examples/build.sh (the `table` world of table.wit). With -DINIT_MISBEHAVES=N the
// init misbehaves instead, for the tests: 1 traps, 2 calls an import (prints), 3 never ends.
#include "table.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define LIST_U8 table_list_u8_t
#include "respond.h"

#define LIMIT 10000000u
#define WORDS ((LIMIT + 63) / 64)

static uint64_t composite[WORDS]; // bit n: n is not prime
static uint32_t before[WORDS];    // primes below 64 * word
static const char *built_by;      // who built the tables: NULL until someone did

static void build(const char *by) {
  composite[0] |= 3; // 0 and 1
  for (uint32_t p = 2; (uint64_t)p * p < LIMIT; p++)
    if (!(composite[p / 64] >> (p % 64) & 1))
      for (uint32_t m = p * p; m < LIMIT; m += p) composite[m / 64] |= 1ull << (m % 64);
  uint32_t count = 0;
  for (uint32_t w = 0; w < WORDS; w++) {
    before[w] = count;
    count += 64 - __builtin_popcountll(composite[w]);
  }
  built_by = by;
}

void exports_table_wizer_initialize(void) {
#if INIT_MISBEHAVES == 1
  abort();
#elif INIT_MISBEHAVES == 2
  printf("an init cannot print: stdout is an import\n");
  fflush(stdout);
#elif INIT_MISBEHAVES == 3
  for (volatile int forever = 1; forever;) {
  }
#endif
  build("at deploy time (spec.init)");
}

static int is_prime(uint32_t n) { return !(composite[n / 64] >> (n % 64) & 1); }

static uint32_t primes_up_to(uint32_t n) {
  uint64_t below = (n % 64 == 63) ? ~0ull : ((1ull << (n % 64 + 1)) - 1);
  return before[n / 64] + __builtin_popcountll(~composite[n / 64] & below);
}

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t out) {
  table_string_t path = {0};
  wasi_http_types_method_incoming_request_path_with_query(
      wasi_http_types_borrow_incoming_request(request), &path);
  // The number is the path's last segment: /primes/97 and /97 both ask about 97.
  size_t start = path.len;
  while (start > 0 && path.ptr[start - 1] != '/') start--;
  char digits[16] = {0};
  size_t len = path.len - start;
  int ok = len > 0 && len < sizeof digits;
  if (ok) memcpy(digits, path.ptr + start, len);
  for (size_t i = 0; ok && i < len; i++) ok = digits[i] >= '0' && digits[i] <= '9';
  unsigned long n = ok ? strtoul(digits, NULL, 10) : 0;
  table_string_free(&path);
  wasi_http_types_incoming_request_drop_own(request);
  char text[256];
  if (!ok || n >= LIMIT) {
    int k = snprintf(text, sizeof text, "ask for a number below %u, e.g. /97\n", LIMIT);
    respond(out, 400, text, (size_t)k);
    return;
  }
  if (!built_by) build("for this request (no spec.init)");
  int k = snprintf(text, sizeof text, "%lu is %s; %u primes up to it; index built %s\n", n,
                   is_prime((uint32_t)n) ? "prime" : "not prime", primes_up_to((uint32_t)n),
                   built_by);
  respond(out, 200, text, (size_t)k);
#ifdef REQUESTS_WRITE
  // A fixture (tests/fixtures/init-writes.wasm): the request writes over its index, a word
  // every other page, and over who built it; the next request, a fresh instance, must not
  // see any of it.
  for (uint32_t w = 0; w < WORDS; w += 1024) composite[w] = ~0ull;
  built_by = "by a request that wrote over it";
#endif
}
