//! Golden-file tests: `tests/spin/*.toml` must read as the `.json` beside it (the Apps, each
//! with its source and files, and the notes), `tests/spin/invalid/*.toml` must fail with the
//! `.err` beside it. `BLESS=1` rewrites them.

use super::*;
use crate::tests::check;
use std::path::{Path, PathBuf};

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

/// The values every case is read with: `--variable` given, and an environment.
fn values() -> Values {
    Values {
        given: BTreeMap::from([("given".to_string(), "from --variable".to_string())]),
        env: BTreeMap::from([
            (
                "SPIN_VARIABLE_FROM_ENV".to_string(),
                "from the environment".to_string(),
            ),
            (
                "SPIN_VARIABLE_GIVEN".to_string(),
                "overridden by --variable".to_string(),
            ),
        ]),
        ..Values::default()
    }
}

fn read(path: &Path) -> Result<SpinApp, ManifestError> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut values = values();
    // A case that declares no `given` variable gets no --variable.
    if !text.contains("given =") {
        values.given.clear();
    }
    parse(&name, &text, &values, "default")
}

#[test]
fn valid_spin_manifests() {
    for path in cases("tests/spin") {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(is_spin_manifest(&text), "{}", path.display());
        let app = read(&path).unwrap_or_else(|e| panic!("{e}"));
        let components: Vec<_> = app
            .components
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id,
                    "source": format!("{:?}", c.source),
                    "files": c.files.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>(),
                    "excludeFiles": c.exclude_files,
                    "app": c.app,
                })
            })
            .collect();
        let json = serde_json::json!({
            "name": app.name,
            "components": components,
            "notes": app.notes,
        });
        check(
            &path,
            "json",
            serde_json::to_string_pretty(&json).unwrap() + "\n",
        );
    }
}

#[test]
fn invalid_spin_manifests() {
    for path in cases("tests/spin/invalid") {
        let err = read(&path).expect_err(&path.display().to_string());
        check(&path, "err", err.to_string() + "\n");
    }
}

#[test]
fn yaml_is_not_a_spin_manifest() {
    assert!(!is_spin_manifest("apiVersion: shoal.dev/v1\nkind: App\n"));
    assert!(!is_spin_manifest("name = \"x\"\n"));
    assert!(is_spin_manifest("spin_version = \"1\"\n"));
}
