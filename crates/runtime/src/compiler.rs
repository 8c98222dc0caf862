//! Compiling out of process: with [`CompileLimits`], a component or module is compiled by a
//! child process — the node's own program, run as `shoal __compile` — under an address-space
//! limit and a deadline, so that a hostile or enormous component costs a failed revision,
//! never the node's memory or a compile slot forever. The child writes the compiled code to a
//! file the node then loads (and keeps, as its compile cache entry).
//!
//! The child's protocol: `__compile [--concurrent] [--module] MEMORY_BYTES IN OUT`; exit 0
//! with OUT written, exit 2 with the compile error on stderr, anything else a crash (an
//! abort when an allocation failed under the limit).

use crate::LoadError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine};

/// The argument that makes the node's program a compiler child.
pub const CHILD_ARG: &str = "__compile";

/// Exit code of a child whose input does not compile (its stderr says why).
const DOES_NOT_COMPILE: i32 = 2;

/// Bounds on compiling one component or module.
#[derive(Debug, Clone)]
pub struct CompileLimits {
    /// The program to run as the compiler child (the node's own executable).
    pub program: PathBuf,
    /// Longest a compile may take.
    pub timeout: Duration,
    /// Address space the child may use, in bytes.
    pub memory: u64,
}

/// The wasmtime configuration every engine of a node compiles with (what makes compiled code
/// compatible between the child and the node), with or without the component model's
/// concurrency; the node adds its instance allocator, which does not change the code.
pub(crate) fn engine_config(concurrency: bool) -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_init_cow(true)
        .concurrency_support(concurrency);
    config
}

/// What a child is run for: its exit code 2 and its limits mean different things to the user.
#[derive(Clone, Copy)]
enum Task {
    Compile,
    Init,
}

impl Task {
    fn doing(self) -> &'static str {
        match self {
            Task::Compile => "compiling",
            Task::Init => "pre-initialising (spec.init)",
        }
    }
}

/// Compiles `input` in a child process within `limits`, writing the compiled code to `output`.
///
/// # Errors
/// [`LoadError::Compile`] when the input does not compile; [`LoadError::CompileLimit`] when
/// the compile ran past a limit or the child failed.
pub(crate) fn compile_in_child(
    limits: &CompileLimits,
    concurrent: bool,
    module: bool,
    input: &Path,
    output: &Path,
) -> Result<(), LoadError> {
    let flags = [
        concurrent.then_some("--concurrent"),
        module.then_some("--module"),
    ];
    let flags: Vec<&str> = flags.into_iter().flatten().collect();
    run_child(limits, Task::Compile, &flags, input, output)
}

/// Runs `init` on the component `input` in a child process within `limits` (the child
/// compiles the instrumented component too), writing the snapshot to `output`.
///
/// # Errors
/// [`LoadError::Init`] when the init fails; [`LoadError::CompileLimit`] when the child ran
/// past a limit or failed.
pub(crate) fn init_in_child(
    limits: &CompileLimits,
    init: &crate::snapshot::Init,
    input: &Path,
    output: &Path,
) -> Result<(), LoadError> {
    let (memory, timeout) = (
        init.memory.to_string(),
        init.timeout.as_millis().to_string(),
    );
    let flags = [
        "--init",
        &init.function,
        "--init-memory",
        &memory,
        "--init-timeout-ms",
        &timeout,
    ];
    run_child(limits, Task::Init, &flags, input, output)
}

fn run_child(
    limits: &CompileLimits,
    task: Task,
    flags: &[&str],
    input: &Path,
    output: &Path,
) -> Result<(), LoadError> {
    let mut child = Command::new(&limits.program)
        .arg(CHILD_ARG)
        .args(flags)
        .arg(limits.memory.to_string())
        .arg(input)
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            LoadError::CompileLimit(format!(
                "the compiler process ({}) cannot start: {e}",
                limits.program.display()
            ))
        })?;
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = (&mut pipe).take(64 << 10).read_to_string(&mut text);
            // Drain the rest so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            text
        })
    });
    let status = wait_until(&mut child, Instant::now() + limits.timeout);
    let said = stderr
        .and_then(|t| t.join().ok())
        .unwrap_or_default()
        .trim()
        .to_string();
    let Some(status) = status? else {
        let _ = std::fs::remove_file(output);
        return Err(LoadError::CompileLimit(format!(
            "{} took longer than this node's limit of {:?} (--compile-timeout)",
            task.doing(),
            limits.timeout
        )));
    };
    verdict(status, &said, limits, task)
}

/// What the child's exit says.
fn verdict(
    status: ExitStatus,
    said: &str,
    limits: &CompileLimits,
    task: Task,
) -> Result<(), LoadError> {
    match (status.code(), task) {
        (Some(0), _) => Ok(()),
        (Some(DOES_NOT_COMPILE), Task::Compile) => {
            Err(LoadError::Compile(wasmtime::Error::msg(said.to_string())))
        }
        (Some(DOES_NOT_COMPILE), Task::Init) => Err(LoadError::Init(said.to_string())),
        _ if ran_out_of_memory(status, said) => Err(LoadError::CompileLimit(format!(
            "{} needed more memory than this node's limit of {} MiB (--compile-memory)",
            task.doing(),
            limits.memory >> 20
        ))),
        _ => Err(LoadError::CompileLimit(format!(
            "the compiler process failed ({status}): {}",
            said.lines().last().unwrap_or("no message")
        ))),
    }
}

/// Whether a child that crashed did so for want of memory: Rust aborts when an allocation
/// fails, and a thread or a mapping refused under `RLIMIT_AS` fails with ENOMEM.
fn ran_out_of_memory(status: ExitStatus, said: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGABRT)
        || ["memory allocation", "os error 12", "Cannot allocate memory"]
            .iter()
            .any(|m| said.contains(m))
}

/// Waits for `child` until `deadline`; `None` (the child killed) when it ran past it.
fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Result<Option<ExitStatus>, LoadError> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The compiler child: `args` are what follows [`CHILD_ARG`]. Returns the exit code.
pub fn child_main(args: impl IntoIterator<Item = String>) -> i32 {
    const USAGE: &str = "[--concurrent] [--module] [--init FUNCTION --init-memory BYTES --init-timeout-ms MS] MEMORY_BYTES IN OUT";
    let (mut concurrent, mut module, mut rest) = (false, false, Vec::new());
    let (mut function, mut init_memory, mut init_timeout) = (None, None, None);
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--concurrent" => concurrent = true,
            "--module" => module = true,
            "--init" => function = args.next(),
            "--init-memory" => init_memory = args.next().and_then(|m| m.parse::<u64>().ok()),
            "--init-timeout-ms" => {
                init_timeout = args.next().and_then(|m| m.parse::<u64>().ok());
            }
            _ => rest.push(a),
        }
    }
    let [memory, input, output] = rest.as_slice() else {
        eprintln!("usage: {CHILD_ARG} {USAGE}");
        return 64;
    };
    let Ok(memory) = memory.parse::<u64>() else {
        eprintln!("{CHILD_ARG}: MEMORY_BYTES: '{memory}' is not a number");
        return 64;
    };
    crate::lanes::lower_priority(crate::lanes::COMPILE_NICE);
    limit_address_space(memory);
    let made = match (function, init_memory, init_timeout) {
        (Some(function), Some(memory), Some(ms)) => {
            let timeout = Duration::from_millis(ms);
            let init = crate::snapshot::Init {
                function,
                memory,
                timeout,
            };
            std::fs::read(input)
                .map_err(|e| e.to_string())
                .and_then(|bytes| crate::snapshot::wizen(&bytes, &init, engine_config(true)))
                .map_err(wasmtime::Error::msg)
        }
        (None, None, None) => (|| -> wasmtime::Result<Vec<u8>> {
            let engine = Engine::new(&engine_config(concurrent))?;
            let bytes = std::fs::read(input)?;
            if module {
                engine.precompile_module(&bytes)
            } else {
                engine.precompile_component(&bytes)
            }
        })(),
        _ => {
            eprintln!("usage: {CHILD_ARG} {USAGE}");
            return 64;
        }
    };
    match made.and_then(|out| Ok(std::fs::write(output, out)?)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e:#}");
            DOES_NOT_COMPILE
        }
    }
}

/// Caps this process's address space at `bytes` (`RLIMIT_AS`): past it, allocations fail.
fn limit_address_space(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct it is given and changes only this process's limit.
    #[allow(unsafe_code, reason = "setrlimit has no safe wrapper in std")]
    let set = unsafe { libc::setrlimit(libc::RLIMIT_AS, &raw const limit) };
    if set != 0 {
        eprintln!(
            "{CHILD_ARG}: cannot limit the address space: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> CompileLimits {
        CompileLimits {
            program: "/bin/false".into(),
            timeout: Duration::from_secs(1),
            memory: 1 << 30,
        }
    }

    #[test]
    fn the_childs_exit_says_what_happened() {
        use std::os::unix::process::ExitStatusExt;
        let exit = |code: i32| ExitStatus::from_raw(code << 8);
        let verdict = |status, said| verdict(status, said, &limits(), Task::Compile);
        assert!(verdict(exit(0), "").is_ok());
        let e = verdict(exit(2), "bad magic").unwrap_err();
        assert!(matches!(e, LoadError::Compile(_)), "{e}");
        let e = super::verdict(exit(2), "it trapped", &limits(), Task::Init).unwrap_err();
        assert!(matches!(e, LoadError::Init(_)), "{e}");
        let e = verdict(ExitStatus::from_raw(libc::SIGABRT), "").unwrap_err();
        assert!(
            e.to_string()
                .contains("more memory than this node's limit of 1024 MiB"),
            "{e}"
        );
        let refused = "failed to spawn thread: Os { code: 12, kind: OutOfMemory, message: \"Cannot allocate memory\" }";
        let e = verdict(exit(101), refused).unwrap_err();
        assert!(e.to_string().contains("more memory than"), "{e}");
        let e = verdict(exit(101), "thread panicked\nat here").unwrap_err();
        assert!(e.to_string().contains("at here"), "{e}");
    }
}
