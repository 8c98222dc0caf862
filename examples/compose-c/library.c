// A library component in C: exports shoal:examples/greet (greet.wit). It is no app of its
// own: an App names it in spec.dependencies, and Shoal composes it into the app before
// compiling, so the app's calls to greet() are typed calls in memory.
//
// Built by examples/build.sh (the `library` world of greet.wit).
#include "library.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set(library_string_t *ret, const char *text) {
  size_t n = strlen(text);
  ret->ptr = malloc(n);
  memcpy(ret->ptr, text, n);
  ret->len = n;
}

void exports_shoal_examples_greet_greet(library_string_t *name, library_string_t *ret) {
  char text[512];
  snprintf(text, sizeof text, "Hello, %.*s, from a library!", (int)name->len, (const char *)name->ptr);
  library_string_free(name);
  set(ret, text);
}

// The names of the error codes this example reports (wasi:http's error-code cases).
static const char *error_name(uint8_t tag) {
  switch (tag) {
    case WASI_HTTP_TYPES_ERROR_CODE_DNS_ERROR: return "DNS-error";
    case WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_NOT_FOUND: return "destination-not-found";
    case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_REFUSED: return "connection-refused";
    case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED: return "HTTP-request-denied";
    case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_URI_INVALID: return "HTTP-request-URI-invalid";
    default: return "other";
  }
}

void exports_shoal_examples_greet_fetch(library_string_t *url, library_string_t *ret) {
  // http://AUTHORITY/PATH
  char buf[1024];
  snprintf(buf, sizeof buf, "%.*s", (int)url->len, (const char *)url->ptr);
  library_string_free(url);
  char *authority = strstr(buf, "://");
  authority = authority ? authority + 3 : buf;
  char *slash = strchr(authority, '/');
  char path[512] = "/";
  if (slash) {
    snprintf(path, sizeof path, "%s", slash);
    *slash = 0;
  }
  wasi_http_types_own_outgoing_request_t req =
      wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
  wasi_http_types_borrow_outgoing_request_t b = wasi_http_types_borrow_outgoing_request(req);
  wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
  wasi_http_types_method_outgoing_request_set_scheme(b, &scheme);
  library_string_t a = {.ptr = (uint8_t *)authority, .len = strlen(authority)};
  library_string_t p = {.ptr = (uint8_t *)path, .len = strlen(path)};
  wasi_http_types_method_outgoing_request_set_authority(b, &a);
  wasi_http_types_method_outgoing_request_set_path_with_query(b, &p);
  wasi_http_outgoing_handler_own_future_incoming_response_t fut;
  wasi_http_outgoing_handler_error_code_t err;
  char text[128];
  if (!wasi_http_outgoing_handler_handle(req, NULL, &fut, &err)) {
    snprintf(text, sizeof text, "error: %s", error_name(err.tag));
    set(ret, text);
    return;
  }
  wasi_http_types_own_pollable_t ready =
      wasi_http_types_method_future_incoming_response_subscribe(wasi_http_types_borrow_future_incoming_response(fut));
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_io_poll_pollable_drop_own(ready);
  wasi_http_types_result_result_own_incoming_response_error_code_void_t res;
  wasi_http_types_method_future_incoming_response_get(wasi_http_types_borrow_future_incoming_response(fut), &res);
  wasi_http_types_future_incoming_response_drop_own(fut);
  if (res.is_err || res.val.ok.is_err) {
    snprintf(text, sizeof text, "error: %s", res.is_err ? "response-already-taken" : error_name(res.val.ok.val.err.tag));
  } else {
    wasi_http_types_own_incoming_response_t resp = res.val.ok.val.ok;
    snprintf(text, sizeof text, "status %d",
             wasi_http_types_method_incoming_response_status(wasi_http_types_borrow_incoming_response(resp)));
    wasi_http_types_incoming_response_drop_own(resp);
  }
  set(ret, text);
}
