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

/// Each valid case, locked as `shoal push -f` publishes it (content by digest), reads back
/// as the same Apps its `spin.toml` reads as.
#[test]
fn locked_apps_read_as_their_manifests() {
    for path in cases("tests/spin") {
        let Ok(direct) = read(&path) else { continue };
        let text = std::fs::read_to_string(&path).unwrap();
        let mut locked = locked::lock("spin.toml", &text).unwrap();
        for c in &mut locked.components {
            c.source.content = locked::ContentRef::of(c.id.as_bytes());
            c.files = vec![locked::ContentPath {
                content: locked::ContentRef::of(b"hello"),
                path: "static/a.txt".into(),
            }];
            // As `shoal push -f` locks them: each dependency's content by digest.
            let Some(direct) = direct.components.iter().find(|d| d.id == c.id) else {
                continue;
            };
            for (name, d) in &direct.app.spec.dependencies {
                let dependency = locked::LockedDependency::of(
                    name.as_bytes(),
                    d.export.clone(),
                    d.inherit_capabilities,
                );
                c.dependencies.insert(name.clone(), dependency);
            }
        }
        let json = serde_json::to_vec(&locked).unwrap();
        let mut values = values();
        if !text.contains("given =") {
            values.given.clear();
        }
        let read_back = locked::parse_locked("lock", &json, &values, "default")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(read_back.components.len(), direct.components.len());
        for (back, want) in read_back.components.iter().zip(&direct.components) {
            assert_eq!(back.id, want.id);
            assert_eq!(
                back.app.spec.component,
                ComponentRef::Digest(Digest::of(back.id.as_bytes()))
            );
            assert_eq!(
                format!("{:?}", back.files),
                format!(
                    "{:?}",
                    [SpinFiles::Content {
                        path: "static/a.txt".into(),
                        content: Content {
                            digest: Digest::of(b"hello"),
                            inline: Some(b"hello".to_vec()),
                        },
                    }]
                )
            );
            let mut back = back.app.clone();
            back.spec.component = want.app.spec.component.clone();
            for (name, d) in &mut back.spec.dependencies {
                assert_eq!(
                    d.component,
                    Some(ComponentRef::Digest(Digest::of(name.as_bytes())))
                );
                d.component = want.app.spec.dependencies[name].component.clone();
            }
            assert_eq!(
                serde_json::to_value(&back).unwrap(),
                serde_json::to_value(&want.app).unwrap(),
                "{}: component {}",
                path.display(),
                want.id
            );
        }
    }
}

/// What a locked app may need that Shoal does not do is refused, naming the field.
#[test]
fn locked_apps_shoal_cannot_run_are_refused() {
    let base = serde_json::json!({
        "spin_lock_version": 1,
        "metadata": { "name": "hello", "trigger": { "type": "http" } },
        "triggers": [{ "id": "t", "trigger_type": "http", "trigger_config": { "component": "hello", "route": "/..." } }],
        "components": [{ "id": "hello", "source": { "content_type": "application/wasm", "digest": Digest::of(b"w").to_string() } }],
    });
    let err = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        patch(&mut v);
        locked::parse_locked(
            "app",
            &serde_json::to_vec(&v).unwrap(),
            &Values::default(),
            "default",
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    assert!(
        locked::parse_locked(
            "app",
            &serde_json::to_vec(&base).unwrap(),
            &Values::default(),
            "default"
        )
        .is_ok()
    );
    assert_eq!(
        err(&|v| v["must_understand"] = serde_json::json!(["teleportation"])),
        "app: must_understand: the application needs \"teleportation\", which Shoal does not know"
    );
    let mut chaining = base.clone();
    chaining["components"][0]["host_requirements"] =
        serde_json::json!({"local_service_chaining": "required"});
    let chaining = serde_json::to_vec(&chaining).unwrap();
    assert!(locked::parse_locked("app", &chaining, &Values::default(), "default").is_ok());
    assert_eq!(
        err(&|v| v["components"][0]["host_requirements"] =
            serde_json::json!({"teleportation": "required"})),
        "app: component.hello.host_requirements: \"teleportation\" is not something Shoal provides"
    );
    assert_eq!(
        err(
            &|v| v["components"][0]["source"] = serde_json::json!({"content_type": "application/wasm", "source": "file:///x/app.wasm"})
        ),
        "app: component.hello.source: names file:///x/app.wasm, not content; a locked app from disk is not a published one: apply its spin.toml"
    );
    assert_eq!(
        err(
            &|v| v["components"][0]["files"] = serde_json::json!([{"inline": "aGk=", "digest": Digest::of(b"x").to_string(), "path": "a"}])
        ),
        format!(
            "app: component.hello.files[0]: inline content does not have its digest {}",
            Digest::of(b"x")
        )
    );
    assert_eq!(
        err(&|v| v["components"][0]["files"] =
            serde_json::json!([{"inline": "aGk=", "path": "../etc/passwd"}])),
        "app: component.hello.files[0]: \"../etc/passwd\" is not a path inside the application"
    );
    assert_eq!(
        err(&|v| v["triggers"][0]["trigger_type"] = "redis".into()),
        "app: trigger.redis: Shoal runs HTTP triggers only; a redis trigger has nothing to run it"
    );
    assert!(err(&|v| v["spin_lock_version"] = 2.into()).contains("2 is newer than Shoal reads"));
    let dependency = |inherit: serde_json::Value| {
        serde_json::json!({ "a:b/c": {
            "source": { "content_type": "application/wasm", "digest": Digest::of(b"d").to_string() },
            "export": null,
            "inherit": inherit,
        }})
    };
    let mut published = base.clone();
    published["components"][0]["dependencies"] = dependency("All".into());
    let app = locked::parse_locked(
        "app",
        &serde_json::to_vec(&published).unwrap(),
        &Values::default(),
        "default",
    )
    .unwrap();
    let d = &app.components[0].app.spec.dependencies["a:b/c"];
    assert_eq!(
        d.component,
        Some(ComponentRef::Digest(Digest::of(b"d"))),
        "a published dependency is its content"
    );
    assert!(d.inherit_capabilities);
    assert_eq!(
        app.components[0].published_dependencies["a:b/c"].digest,
        Digest::of(b"d")
    );
    assert_eq!(
        err(&|v| v["components"][0]["dependencies"] =
            dependency(serde_json::json!({"Some": ["key_value_stores"]}))),
        "app: component.hello.dependencies.\"a:b/c\".inherit: inherits only key_value_stores; a dependency in Shoal gets all of its component's capabilities or none"
    );
    assert_eq!(
        err(
            &|v| v["components"][0]["dependencies"]["a:b/c"] = serde_json::json!({"source": {"content_type": "application/wasm", "source": "file:///x/dep.wasm"}})
        ),
        "app: component.hello.dependencies.\"a:b/c\".source: names file:///x/dep.wasm, not content; a locked app from disk is not a published one: apply its spin.toml"
    );
    assert_eq!(
        err(&|v| v["components"][0]["trigger_dependencies"] = serde_json::json!({"http": []})),
        "app: component.hello.trigger_dependencies: trigger dependencies (middleware) are not supported yet"
    );
}
