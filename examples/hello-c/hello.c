// A wasi:http handler in C: answers every request with a greeting and the path it saw.
// Built by examples/build.sh with wit-bindgen's C bindings and the preview1 proxy adapter.
#include "proxy.h"
#include <stdio.h>
#include <string.h>

#ifndef GREETING
#define GREETING "Hello from C"
#endif

static void respond(exports_wasi_http_incoming_handler_own_response_outparam_t out,
                    uint16_t status, const char *text, size_t len) {
  wasi_http_types_own_outgoing_response_t resp =
      wasi_http_types_constructor_outgoing_response(wasi_http_types_constructor_fields());
  wasi_http_types_method_outgoing_response_set_status_code(
      wasi_http_types_borrow_outgoing_response(resp), status);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(resp), &body);
  wasi_http_types_own_output_stream_t stream;
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);

  wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false};
  result.val.ok = resp;
  wasi_http_types_static_response_outparam_set(out, &result);

  proxy_list_u8_t bytes = {.ptr = (uint8_t *)text, .len = len};
  wasi_io_streams_stream_error_t err;
  wasi_io_streams_method_output_stream_blocking_write_and_flush(
      wasi_io_streams_borrow_output_stream(stream), &bytes, &err);
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t code;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &code);
}

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
