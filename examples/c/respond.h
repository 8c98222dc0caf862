// The response the C examples answer with: `status`, and `text` (`len` bytes) as the whole
// body, written through wasi:http's outgoing-response resources. Included after a world's
// bindings, with LIST_U8 defined as that world's list<u8> type (wit-bindgen names it after
// the world: proxy_list_u8_t for wasi:http/proxy).
#ifndef LIST_U8
#error "define LIST_U8 as the world's list<u8> type (e.g. proxy_list_u8_t) before including respond.h"
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

  LIST_U8 bytes = {.ptr = (uint8_t *)text, .len = len};
  wasi_io_streams_stream_error_t err;
  wasi_io_streams_method_output_stream_blocking_write_and_flush(
      wasi_io_streams_borrow_output_stream(stream), &bytes, &err);
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t code;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &code);
}
