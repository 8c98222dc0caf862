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
#define LIST_U8 app_list_u8_t
#include "respond.h"

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
