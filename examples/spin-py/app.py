"""A Spin HTTP component, built with Spin's Python SDK (spin-sdk 3.4.1, WASI 0.2).

Paths (under the trigger's route; the first of these markers in the path decides):
  .../count      increments `count` in the default key-value store and answers the new value
  .../kv/LABEL   opens store LABEL and answers what the host said (a store not granted is refused)
  .../var/NAME   the variable NAME, or the host's error
  .../headers    the request line and the spin-* headers the host set
  .../file/PATH  the file /PATH from the component's files
  .../sql/LABEL  adds a row to a table of SQLite database LABEL (spin:sqlite@3.0.0) and answers
                 the row count
  .../query/LABEL runs the request body as one SQL statement on database LABEL and answers
                 its rows, one per line, values separated by '|' (or the host's error)
  .../redis      opens a Redis connection (the host answers Spin's error for a denied address)
  anything else  the `message` variable (a template over the app's `greeting`)
"""

from spin_sdk import http, key_value, redis, variables
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite
from spin_sdk.http import Request, Response
from spin_sdk.wit.types import Err


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


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.headers.get("spin-path-info") or request.uri.split("?", 1)[0]
        if after(path, "/count") is not None:
            with key_value.open_default() as store:
                current = store.get("count")
                n = int(current or b"0") + 1
                store.set("count", str(n).encode())
            return text(200, f"count {n}")
        label = after(path, "/kv/")
        if label is not None:
            try:
                with key_value.open(label) as store:
                    store.exists("probe")
                return text(200, "opened")
            except Err as e:
                return text(403, error_name(e))
        label = after(path, "/query/")
        if label is not None:
            try:
                with sqlite.Connection.open(label) as db:
                    result = db.execute(str(request.body or b"", "utf-8"), [])
                lines = ["|".join(str(v.value) if hasattr(v, "value") else "NULL" for v in row.values) for row in result.rows]
                return text(200, "\n".join(lines))
            except Err as e:
                return text(403, error_name(e))
        label = after(path, "/sql/")
        if label is not None:
            try:
                with sqlite.Connection.open(label) as db:
                    db.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, path TEXT)", [])
                    db.execute("INSERT INTO visits (path) VALUES (?)", [sqlite.Value_Text(path)])
                    count = db.execute("SELECT count(*) FROM visits", []).rows[0].values[0].value
                return text(200, f"rows {count}")
            except Err as e:
                return text(403, error_name(e))
        name = after(path, "/var/")
        if name is not None:
            try:
                return text(200, variables.get(name))
            except Err as e:
                return text(404, error_name(e))
        if after(path, "/headers") is not None:
            lines = [f"{request.method} {request.uri}"]
            for k in sorted(request.headers):
                if k.startswith("spin-"):
                    lines.append(f"{k}: {request.headers[k]}")
            return text(200, "\n".join(lines))
        name = after(path, "/file/")
        if name is not None:
            try:
                with open("/" + name) as f:
                    return text(200, f.read().rstrip("\n"))
            except OSError as e:
                return text(404, f"{type(e).__name__}: {name}")
        if after(path, "/redis") is not None:
            try:
                redis.open("redis://localhost:6379")
                return text(200, "connected")
            except Err as e:
                return text(403, error_name(e))
        return text(200, variables.get("message"))
