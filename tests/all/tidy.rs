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
    for krate in ["api", "manifest", "store", "server", "client"] {
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
    for krate in ["api", "manifest", "store", "server", "client", "node"] {
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
            if file.file_name().unwrap() == "tests.rs" {
                continue; // golden-file tests read their cases from disk
            }
            let text = std::fs::read_to_string(&file).unwrap();
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
