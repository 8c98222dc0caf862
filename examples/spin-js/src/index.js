// A Spin HTTP component, built with Spin's JavaScript build tools (@spinframework/build-tools
// 1.0.7, WASI 0.2). It imports Spin's key-value and variables interfaces straight from their WIT.
//
// Paths (under the trigger's route; the first of these markers in the path decides):
//   .../count      increments `count` in the default key-value store and answers the new value
//   .../kv/LABEL   opens store LABEL and answers what the host said (a store not granted is refused)
//   .../var/NAME   the variable NAME, or the host's error
//   .../headers    the request line and the spin-* headers the host set
//   anything else  the `message` variable (a template over the app's `greeting`)
import { Store } from "fermyon:spin/key-value@2.0.0";
import { get as variable } from "fermyon:spin/variables@2.0.0";

const text = (status, body) =>
  new Response(body + "\n", { status, headers: { "content-type": "text/plain" } });

// A WIT `result` error arrives as an exception whose payload is the variant.
const errorName = (e) => {
  const p = e.payload;
  if (!p) throw e;
  return p.val === undefined ? p.tag : `${p.tag}(${p.val})`;
};

const after = (path, marker) => {
  const i = path.indexOf(marker);
  return i < 0 ? null : path.slice(i + marker.length);
};

function handle(request) {
  const path = request.headers.get("spin-path-info") ?? new URL(request.url).pathname;
  if (after(path, "/count") !== null) {
    const store = Store.open("default");
    const current = store.get("count");
    const n = (current ? Number(new TextDecoder().decode(current)) : 0) + 1;
    store.set("count", new TextEncoder().encode(String(n)));
    return text(200, `count ${n}`);
  }
  const label = after(path, "/kv/");
  if (label !== null) {
    try {
      Store.open(label).exists("probe");
      return text(200, "opened");
    } catch (e) {
      return text(403, errorName(e));
    }
  }
  const name = after(path, "/var/");
  if (name !== null) {
    try {
      return text(200, variable(name));
    } catch (e) {
      return text(404, errorName(e));
    }
  }
  if (after(path, "/headers") !== null) {
    const lines = [`${request.method} ${request.url}`];
    for (const [k, v] of request.headers) if (k.startsWith("spin-")) lines.push(`${k}: ${v}`);
    return text(200, lines.sort().join("\n"));
  }
  return text(200, variable("message"));
}

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));
