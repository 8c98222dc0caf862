// A wasi:http app in C that imports shoal:examples/greet (greet.wit) and leaves it to its
// spec.dependencies to satisfy: GET /compose/NAME answers what greet(NAME) returned, and
// GET /compose/fetch?url=URL what the library's fetch(URL) did. For bench/compose.sh,
// /compose/NAME?n=N calls greet N times (answering the last), and /compose/nocall/NAME
// answers without calling the library.
//
// Built by examples/build.sh (the `app` world of greet.wit).
#include "app.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

  app_list_u8_t bytes = {.ptr = (uint8_t *)text, .len = len};
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
  app_string_t path = {0};
  wasi_http_types_method_incoming_request_path_with_query(
      wasi_http_types_borrow_incoming_request(request), &path);
  char buf[1024];
  snprintf(buf, sizeof buf, "%.*s", (int)path.len, (const char *)path.ptr);
  app_string_free(&path);
  wasi_http_types_incoming_request_drop_own(request);

  char text[1200];
  app_string_t said = {0};
  char *url = strstr(buf, "/fetch?url=");
  if (url) {
    app_string_t u = {.ptr = (uint8_t *)url + 11, .len = strlen(url + 11)};
    shoal_examples_greet_fetch(&u, &said);
  } else {
    int times = 1;
    char *query = strchr(buf, '?');
    if (query) {
      *query = 0;
      if (strncmp(query + 1, "n=", 2) == 0) times = atoi(query + 3);
    }
    char *name = strrchr(buf, '/');
    name = name ? name + 1 : buf;
    if (strstr(buf, "/nocall/")) {
      int k = snprintf(text, sizeof text, "the app said: Hello, %s (no call)\n", name);
      respond(out, 200, text, (size_t)k);
      return;
    }
    app_string_t n = {.ptr = (uint8_t *)name, .len = strlen(name)};
    for (int i = 0; i < times; i++) {
      if (said.ptr) app_string_free(&said);
      shoal_examples_greet_greet(&n, &said);
    }
  }
  int k = snprintf(text, sizeof text, "the library said: %.*s\n", (int)said.len, (const char *)said.ptr);
  app_string_free(&said);
  respond(out, 200, text, (size_t)k);
}
