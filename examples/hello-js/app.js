// A wasi:http handler in JavaScript, built with componentize-js (see examples/build.sh).
addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  event.respondWith(
    new Response(`Hello from JavaScript! You asked for ${url.pathname}${url.search}\n`, {
      headers: { "content-type": "text/plain" },
    }),
  );
});
