//! Golden-file tests: `tests/ui/*.yaml` must parse to the `.json` beside it and
//! `tests/ui/invalid/*.yaml` must fail with the `.err` beside it. `BLESS=1` rewrites them.

use super::*;
use std::path::Path;

/// Compares `actual` with the golden file beside `path` (or rewrites it with `BLESS=1`).
pub(crate) fn check(path: &Path, expected_ext: &str, actual: String) {
    let golden = path.with_extension(expected_ext);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("{} is missing; run with BLESS=1", golden.display()));
    assert_eq!(actual, expected, "{}", path.display());
}

fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

#[test]
fn valid_manifests() {
    for path in yaml_files("tests/ui") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let objects = parse(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        let json: Vec<_> = objects
            .iter()
            .map(|object| match object {
                Object::App(app) => serde_json::to_value(app).unwrap(),
                Object::Job(job) => serde_json::to_value(job).unwrap(),
                Object::Namespace(ns) => serde_json::to_value(ns).unwrap(),
            })
            .collect();
        check(
            &path,
            "json",
            serde_json::to_string_pretty(&json).unwrap() + "\n",
        );
    }
}

#[test]
fn invalid_manifests() {
    for path in yaml_files("tests/ui/invalid") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let err = parse(&name, &text).expect_err(&name);
        check(&path, "err", err.to_string() + "\n");
    }
}
