"""A WASI 0.3 HTTP service (componentize-py 0.25) composed with the C library of
examples/compose-c: its calls to greet() and fetch() are typed calls into the library's
instance, wired by spec.dependencies before the app compiles.

/compose-py3/NAME          answers "the library said: Hello, NAME, from a library!"
/compose-py3/fetch?url=U   answers what the library's fetch(U) did: "status N", or
                           "error: HTTP-request-denied" unless the dependency inherits the
                           app's capabilities
"""

from componentize_py_async_support import spawn
from componentize_py_types import Ok
from wit_world import byte_stream, exports
from wit_world import result_option_wasi_http_types_fields_wasi_http_types_error_code_future as trailers
from wit_world.imports import greet
from wit_world.imports import wasi_http_types as http


def response(status: int, body: bytes) -> http.Response:
    tx, rx = byte_stream()

    async def send():
        with tx:
            await tx.write_all(body)

    spawn(send())
    _, done = trailers(lambda: Ok(None))
    headers = http.Fields.from_list([("content-type", b"text/plain")])
    resp, _ = http.Response.new(headers, rx, done)
    resp.set_status_code(status)
    return resp


class Handler(exports.Handler):
    async def handle(self, request: http.Request) -> http.Response:
        path = request.get_path_with_query() or "/"
        route = path.removeprefix("/compose-py3").lstrip("/")
        if route.startswith("fetch?url="):
            said = greet.fetch(route.removeprefix("fetch?url="))
        else:
            said = greet.greet(route or "world")
        return response(200, f"the library said: {said}\n".encode())
