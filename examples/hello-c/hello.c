// A wasi:http handler in C: answers every request with a greeting and the path it saw.
// Built by examples/build.sh with wit-bindgen's C bindings and the preview1 proxy adapter.
#include "proxy.h"
#include <stdio.h>
#include <string.h>
#define LIST_U8 proxy_list_u8_t
#include "respond.h"

#ifndef GREETING
#define GREETING "Hello from C"
#endif

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t out) {
  proxy_string_t path = {0};
  wasi_http_types_method_incoming_request_path_with_query(
      wasi_http_types_borrow_incoming_request(request), &path);
  char text[512];
  int n = snprintf(text, sizeof text, "%s! You asked for %.*s\n", GREETING, (int)path.len,
                   (const char *)path.ptr);
  if (n < 0 || (size_t)n >= sizeof text) n = sizeof text - 1;
  proxy_string_free(&path);
  wasi_http_types_incoming_request_drop_own(request);
  respond(out, 200, text, (size_t)n);
}
