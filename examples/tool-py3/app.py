"""A WASI 0.3 command (`wasi:cli/command@0.3.0`), built with componentize-py 0.25; what it does
is its first argument (Shoal's own tests use it too). It behaves as under `wasmtime run`:
the arguments and environment are exactly the Job's.

echo ARGS...     print its arguments, its environment and what stdin holds
env              print every environment variable, then how many there are
identity         print the run's identity from wasi:config (shoal.job.name, .run, .attempt)
exit N           exit with code N
trap             trap
write PATH TEXT  write TEXT to PATH (creating it), then list the directory
cat PATH         print the file at PATH
cwd              print the working directory and what it holds
"""

import os

from wit_world import exports
from wit_world.imports import environment, exit as wasi_exit, stdin, store


async def read_stdin() -> bytes:
    stream, _ = stdin.read_via_stream()
    data = b""
    with stream:
        while not stream.writer_dropped:
            chunk = await stream.read(65536)
            if not chunk:
                break
            data += chunk
    return data


class Run(exports.Run):
    async def run(self) -> None:
        args = environment.get_arguments()
        mode = args[1] if len(args) > 1 else "hello"
        rest = args[2:]
        if mode == "echo":
            print(f"argv0 {args[0]}")
            for arg in rest:
                print(f"arg {arg}")
            for key, value in environment.get_environment():
                print(f"env {key}={value}")
            for line in (await read_stdin()).decode().splitlines():
                print(f"stdin {line}")
        elif mode == "env":
            pairs = environment.get_environment()
            for key, value in pairs:
                print(f"env {key}={value}")
            print(f"env count {len(pairs)}")
        elif mode == "identity":
            for key in ("name", "run", "attempt"):
                print(f"shoal.job.{key}={store.get(f'shoal.job.{key}')}")
        elif mode == "exit":
            print(f"exiting with {rest[0]}", flush=True)
            wasi_exit.exit_with_code(int(rest[0]))
        elif mode == "trap":
            raise SystemError("asked to trap")
        elif mode == "write":
            with open(rest[0], "w") as f:
                f.write(rest[1] if len(rest) > 1 else "")
            print(f"wrote {rest[0]}")
            print("entries " + " ".join(sorted(os.listdir(os.path.dirname(rest[0]) or "."))))
        elif mode == "cwd":
            print(f"cwd {os.getcwd()}")
            print("entries " + " ".join(sorted(os.listdir("."))))
        elif mode == "cat":
            with open(rest[0]) as f:
                print(f.read(), end="")
        else:
            print("hello from a WASI 0.3 job")
