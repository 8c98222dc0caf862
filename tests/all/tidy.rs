//! Architecture invariants, checked so that `cargo test` is the single gate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources_of(dir: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root().join(dir), &mut files);
    files
}

/// The `shoal-*` and external dependencies a workspace crate declares.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let manifest =
        std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("");
    let deps = deps.split("\n[").next().unwrap();
    deps.lines()
        .filter_map(|l| l.split(['.', ' ', '=']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn transitive(krate: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![krate.to_string()];
    while let Some(k) = todo.pop() {
        for dep in dependencies(&k) {
            if seen.insert(dep.clone())
                && let Some(inner) = dep.strip_prefix("shoal-")
            {
                todo.push(inner.to_string());
            }
        }
    }
    seen
}

#[test]
fn every_module_says_what_it_is() {
    let mut missing = Vec::new();
    for dir in ["src", "crates", "tests/all"] {
        for file in sources_of(dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.starts_with("//!") {
                missing.push(file.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a //! header: {missing:?}"
    );
}

#[test]
fn the_control_plane_never_depends_on_wasmtime() {
    // The check itself works: the node does reach wasmtime.
    assert!(transitive("node").contains("wasmtime"));
    for krate in [
        "api", "manifest", "store", "server", "client", "blobs", "logs", "metrics", "trace",
    ] {
        let deps = transitive(krate);
        let bad: Vec<_> = deps
            .iter()
            .filter(|d| d.starts_with("wasmtime") || *d == "shoal-runtime" || *d == "shoal-node")
            .collect();
        assert!(bad.is_empty(), "shoal-{krate} depends on {bad:?}");
    }
}

#[test]
fn only_runtime_and_capabilities_touch_wasmtime() {
    for krate in [
        "api", "manifest", "store", "server", "client", "node", "blobs", "logs",
    ] {
        let direct: Vec<_> = dependencies(krate)
            .into_iter()
            .filter(|d| d.starts_with("wasmtime"))
            .collect();
        assert!(
            direct.is_empty(),
            "shoal-{krate} depends on {direct:?} directly"
        );
    }
    let root = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let cli = root
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    assert!(
        !cli.contains("wasmtime"),
        "the CLI depends on wasmtime directly"
    );
}

#[test]
fn api_and_manifest_do_no_io() {
    for krate in ["api", "manifest"] {
        let deps = dependencies(krate);
        for io in ["tokio", "reqwest", "redb", "hyper", "axum"] {
            assert!(!deps.contains(io), "shoal-{krate} depends on {io}");
        }
        for file in sources_of(&format!("crates/{krate}/src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            if file.file_name().unwrap() == "tests.rs" || test_only(&file, &text) {
                continue; // golden-file and property tests read their cases from disk
            }
            // Address types are data; sockets and name lookups are IO.
            for io in [
                "std::fs",
                "TcpStream",
                "TcpListener",
                "UdpSocket",
                "ToSocketAddrs",
                "std::process",
                "std::env",
            ] {
                assert!(!text.contains(io), "{} uses {io}", file.display());
            }
        }
    }
}

#[test]
fn the_runtime_knows_neither_the_api_objects_nor_the_store() {
    let deps = transitive("runtime");
    assert!(deps.contains("wasmtime"), "the check itself works");
    for krate in [
        "shoal-api",
        "shoal-manifest",
        "shoal-store",
        "shoal-server",
        "shoal-client",
        "shoal-node",
        "shoal-capabilities",
    ] {
        assert!(!deps.contains(krate), "shoal-runtime depends on {krate}");
    }
}

#[test]
fn a_capabilitys_host_types_stay_in_the_capabilities_crate() {
    // The runtime links only WASI and wasi:http itself; every other host interface, and
    // what implements it, is a capability's.
    let deps = dependencies("runtime");
    for host in ["wasmtime-wasi-config", "redb", "rustls", "tokio-rustls"] {
        assert!(!deps.contains(host), "shoal-runtime depends on {host}");
    }
    for file in sources_of("crates/runtime/src") {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("bindgen!"),
            "{} generates host bindings",
            file.display()
        );
        for (at, _) in text.match_indices("add_to_linker") {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = &text[line_start..at];
            assert!(
                line.contains("wasmtime_wasi::") || line.contains("wasmtime_wasi_http::"),
                "{} links a host interface that is not WASI or wasi:http: {line}",
                file.display()
            );
        }
    }
    let capabilities = sources_of("crates/capabilities/src");
    let bindgens = capabilities
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("bindgen!"))
        .count();
    assert!(bindgens > 0, "the check itself works");
}

/// Whether a file holds only tests: an integration test (under a crate's `tests/`), or a
/// module that says `#![cfg(test)]`.
fn test_only(file: &Path, text: &str) -> bool {
    let rel = file.strip_prefix(root()).unwrap_or(file);
    rel.components().any(|c| c.as_os_str() == "tests") || text.contains("#![cfg(test)]")
}

/// A file's code: without comments (doc links name modules too, but depend on nothing) and
/// without its `#[cfg(test)]` module (by convention, the end of the file); nothing of a file
/// that holds only tests.
fn non_test_text(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    if test_only(file, &text) {
        return String::new();
    }
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_key_prefix_is_written_outside_the_store_layer() {
    let prefixes = [
        "apps/",
        "jobs/",
        "nodes/",
        "events/",
        "revisions/",
        "routes/",
        "servers/",
        "leases/",
        "cluster/",
    ];
    let mut found = Vec::new();
    for dir in ["src", "crates"] {
        for file in sources_of(dir) {
            let rel = file.strip_prefix(root()).unwrap().display().to_string();
            // The one place keys are made, and the raw store's own behaviour suite.
            if rel == "crates/store/src/resource.rs" || rel == "crates/store/src/conformance.rs" {
                continue;
            }
            let text = non_test_text(&file);
            for p in prefixes {
                if text.contains(&format!("\"{p}")) {
                    found.push(format!("{rel}: \"{p}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "literal key prefixes: {found:?}");
}

/// The module a source file is, as a path under its crate's `src` (`agent` for
/// `agent/mod.rs`, `""` for `lib.rs` and `main.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let rel = rel.to_string_lossy().to_string();
    let rel = rel.strip_suffix("/mod").unwrap_or(&rel).to_string();
    match rel.as_str() {
        "lib" | "main" => String::new(),
        _ => rel,
    }
}

/// The modules `file` (module `me`) names: through `crate::`, `super::` or a child module.
fn named_modules(text: &str, me: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = me.rsplit_once('/').map_or("", |(p, _)| p).to_string();
    let mut named = BTreeSet::new();
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|seg| {
                seg.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|seg| !seg.is_empty())
            .collect()
    };
    // `crate::a::b::Item` names the deepest module of the path; `super::Item` the parent.
    let mut resolve = |base: &str, rest: &str, names_base: bool| {
        let mut best = names_base.then(|| base.to_string());
        let mut path = base.to_string();
        for seg in ident(rest) {
            path = if path.is_empty() {
                seg
            } else {
                format!("{path}/{seg}")
            };
            if modules.contains(&path) {
                best = Some(path.clone());
            } else {
                break;
            }
        }
        if let Some(m) = best.filter(|m| m != me && !m.is_empty()) {
            named.insert(m);
        }
    };
    for (at, _) in text.match_indices("crate::") {
        resolve("", &text[at + "crate::".len()..], true);
    }
    for (at, _) in text.match_indices("super::") {
        resolve(&parent, &text[at + "super::".len()..], true);
    }
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("use ") {
            resolve(me, rest, false);
        }
    }
    named
}

#[test]
fn no_module_cycles() {
    let mut crates: Vec<PathBuf> = vec![root().join("src")];
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        crates.push(entry.unwrap().path().join("src"));
    }
    let mut cycles = Vec::new();
    for src in crates {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
        let edges: std::collections::BTreeMap<String, BTreeSet<String>> = files
            .iter()
            .map(|f| {
                let me = module_of(&src, f);
                let named = named_modules(&non_test_text(f), &me, &modules);
                (me, named)
            })
            .collect();
        if src.ends_with("crates/node/src") {
            // The check itself works: the agent's parts name the agent.
            assert!(edges["agent/deploy"].contains("agent"), "{edges:?}");
        }
        // A module that reaches itself again through what it names is in a cycle.
        for start in edges.keys() {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&String> = edges[start].iter().collect();
            while let Some(m) = todo.pop() {
                if m == start {
                    cycles.push(format!("{}: {start}", src.display()));
                    break;
                }
                if seen.insert(m.clone())
                    && let Some(next) = edges.get(m)
                {
                    todo.extend(next);
                }
            }
        }
    }
    assert!(cycles.is_empty(), "modules in a cycle: {cycles:#?}");
}
