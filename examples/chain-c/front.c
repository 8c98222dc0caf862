// A wasi:http handler in C that calls another app in memory: every request is passed on to the
// `greeter` app of its namespace at http://greeter.default.shoal.internal (no socket: the node
// serves the call in its own process), and the greeter's answer is wrapped in this one's.
// Built by examples/build.sh with wit-bindgen's C bindings and the preview1 proxy adapter.
#include "proxy.h"
#include <stdio.h>
#include <string.h>
#define LIST_U8 proxy_list_u8_t
#include "respond.h"

#define CALLEE "greeter.default.shoal.internal"

static void set_str(proxy_string_t *s, const char *c) {
  s->ptr = (uint8_t *)c;
  s->len = strlen(c);
}

// GET http://CALLEE/PATH: the status, and the start of the body in `body`; 0 and the error
// code's number on failure (the request was refused, or the callee is not served).
static int call(const char *path, char *body, size_t cap, int *error) {
  wasi_http_types_own_outgoing_request_t req =
      wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
  wasi_http_types_borrow_outgoing_request_t breq = wasi_http_types_borrow_outgoing_request(req);
  wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
  wasi_http_types_method_outgoing_request_set_scheme(breq, &scheme);
  proxy_string_t authority, target;
  set_str(&authority, CALLEE);
  set_str(&target, path);
  wasi_http_types_method_outgoing_request_set_authority(breq, &authority);
  wasi_http_types_method_outgoing_request_set_path_with_query(breq, &target);

  wasi_http_outgoing_handler_own_future_incoming_response_t fut;
  wasi_http_outgoing_handler_error_code_t code;
  if (!wasi_http_outgoing_handler_handle(req, NULL, &fut, &code)) {
    *error = code.tag;
    return 0;
  }
  wasi_http_types_own_pollable_t poll = wasi_http_types_method_future_incoming_response_subscribe(
      wasi_http_types_borrow_future_incoming_response(fut));
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(poll));
  wasi_io_poll_pollable_drop_own(poll);
  wasi_http_types_result_result_own_incoming_response_error_code_void_t res;
  wasi_http_types_method_future_incoming_response_get(
      wasi_http_types_borrow_future_incoming_response(fut), &res);
  wasi_http_types_future_incoming_response_drop_own(fut);
  if (res.is_err || res.val.ok.is_err) {
    *error = res.is_err ? -1 : res.val.ok.val.err.tag;
    return 0;
  }
  wasi_http_types_own_incoming_response_t resp = res.val.ok.val.ok;
  wasi_http_types_borrow_incoming_response_t bresp = wasi_http_types_borrow_incoming_response(resp);
  int status = wasi_http_types_method_incoming_response_status(bresp);
  size_t used = 0;
  wasi_http_types_own_incoming_body_t ibody;
  if (wasi_http_types_method_incoming_response_consume(bresp, &ibody)) {
    wasi_http_types_own_input_stream_t in;
    wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(ibody), &in);
    proxy_list_u8_t chunk;
    wasi_io_streams_stream_error_t serr;
    while (used + 1 < cap &&
           wasi_io_streams_method_input_stream_blocking_read(
               wasi_io_streams_borrow_input_stream(in), cap - 1 - used, &chunk, &serr)) {
      memcpy(body + used, chunk.ptr, chunk.len);
      used += chunk.len;
      proxy_list_u8_free(&chunk);
    }
    wasi_io_streams_input_stream_drop_own(in);
    wasi_http_types_incoming_body_drop_own(ibody);
  }
  body[used] = 0;
  wasi_http_types_incoming_response_drop_own(resp);
  return status;
}

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t out) {
  proxy_string_t path = {0};
  wasi_http_types_method_incoming_request_path_with_query(
      wasi_http_types_borrow_incoming_request(request), &path);
  char target[512], body[512], text[1200];
  snprintf(target, sizeof target, "%.*s", (int)path.len, (const char *)path.ptr);
  proxy_string_free(&path);
  wasi_http_types_incoming_request_drop_own(request);

  int error = 0;
  int status = call(target, body, sizeof body, &error);
  if (status == 0) {
    snprintf(text, sizeof text, "front: the call to " CALLEE " failed (error code %d)\n", error);
    respond(out, 502, text, strlen(text));
    return;
  }
  snprintf(text, sizeof text, "front called " CALLEE " in memory, which said (%d): %s", status,
           body);
  respond(out, 200, text, strlen(text));
}
