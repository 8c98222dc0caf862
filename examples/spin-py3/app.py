"""A Spin 4 HTTP component, built with Spin's Python SDK (spin-sdk 5.0.0, WASI 0.3).

The same paths as examples/spin-py, through Spin's async interfaces (`spin:key-value@3.0.0`,
`spin:variables@3.0.0`, `spin:sqlite@3.1.0`); the first of these markers in the path decides:
  .../count      increments `count` in the default key-value store and answers the new value
  .../kv/LABEL   opens store LABEL and answers what the host said (a store not granted is refused)
  .../var/NAME   the variable NAME, or the host's error
  .../sql/LABEL  adds a row to a table of database LABEL and answers the row count
  .../keys       the keys of the default store, one per line
  anything else  the `message` variable (a template over the app's `greeting`)
"""

from spin_sdk import http, key_value, sqlite, variables
from spin_sdk.http import Request, Response
from componentize_py_types import Err


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, bytes(body + "\n", "utf-8"))


def error_name(e: Err) -> str:
    value = e.value
    name = type(value).__name__.split("_", 1)[-1]
    detail = getattr(value, "value", None)
    return f"{name}({detail})" if detail is not None else name


def after(path: str, marker: str):
    """What follows `marker` in `path`, or None: the app answers under any route prefix."""
    i = path.find(marker)
    return path[i + len(marker):] if i >= 0 else None


async def rows(db: sqlite.Connection, statement: str, params) -> list:
    columns, stream, result = await db.execute(statement, params)
    found = []
    with stream:
        while not stream.writer_dropped:
            found += await stream.read(100)
    await result.read()
    return found


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path = request.headers.get("spin-path-info") or request.uri.split("?", 1)[0]
        if after(path, "/count") is not None:
            with await key_value.open_default() as store:
                current = await store.get("count")
                n = int(current or b"0") + 1
                await store.set("count", str(n).encode())
            return text(200, f"count {n}")
        if after(path, "/keys") is not None:
            with await key_value.open_default() as store:
                keys, result = await store.get_keys()
                found = []
                with keys:
                    while not keys.writer_dropped:
                        found += await keys.read(100)
                await result.read()
            return text(200, "\n".join(sorted(found)))
        label = after(path, "/kv/")
        if label is not None:
            try:
                with await key_value.open(label) as store:
                    await store.exists("probe")
                return text(200, "opened")
            except Err as e:
                return text(403, error_name(e))
        label = after(path, "/sql/")
        if label is not None:
            try:
                with await sqlite.Connection.open(label) as db:
                    await rows(db, "CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, path TEXT)", [])
                    await rows(db, "INSERT INTO visits (path) VALUES (?)", [sqlite.Value_Text(path)])
                    count = await rows(db, "SELECT count(*) FROM visits", [])
                    return text(200, f"rows {count[0].values[0].value}")
            except Err as e:
                return text(403, error_name(e))
        name = after(path, "/var/")
        if name is not None:
            try:
                return text(200, await variables.get(name))
            except Err as e:
                return text(404, error_name(e))
        return text(200, await variables.get("message"))
