//! Compositions of the examples and of small WAT components: what is wired, renamed and refused.

use super::*;

fn guest(path: &str) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read(format!("{root}/{path}")).unwrap()
}

const GREET: &str = "shoal:examples/greet@0.1.0";
const DENIED: &[&str] = &["wasi:http/outgoing-handler", "wasi:filesystem/preopens"];

fn dependency<'a>(name: &'a str, wasm: &'a [u8], inherit: bool) -> Dependency<'a> {
    Dependency {
        name,
        wasm,
        id: "the library",
        export: None,
        inherit,
    }
}

/// The import names of component `wasm`.
fn imports(wasm: &[u8]) -> Vec<String> {
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let c = Component::from_bytes(&mut validator, "c", wasm).unwrap();
    c.imports().map(|(_, n, _)| n.to_string()).collect()
}

#[test]
fn the_library_satisfies_the_apps_import_and_its_capabilities_are_renamed_unless_inherited() {
    let (app, library) = (
        guest("examples/compose-c/app.wasm"),
        guest("examples/compose-c/library.wasm"),
    );
    for name in [GREET, "shoal:examples/greet", "shoal:examples"] {
        let composed = compose(&app, &[dependency(name, &library, false)], DENIED).unwrap();
        let names = imports(&composed);
        assert!(
            !names.iter().any(|n| n.starts_with("shoal:examples")),
            "{names:?}"
        );
        assert!(
            names.contains(&"shoal-denied-wasi-http-outgoing-handler".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"shoal-denied-wasi-filesystem-preopens".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"wasi:http/outgoing-handler@0.2.12".to_string()));
        // Shared plumbing is one import, the app's and the library's.
        assert!(
            names.contains(&"wasi:http/types@0.2.12".to_string()),
            "{names:?}"
        );
    }
    let composed = compose(&app, &[dependency(GREET, &library, true)], DENIED).unwrap();
    let names = imports(&composed);
    assert!(
        names.contains(&"wasi:http/outgoing-handler@0.2.12".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with(DENIED_PREFIX)),
        "{names:?}"
    );
}

#[test]
fn a_composition_that_cannot_be_is_refused_naming_the_dependency() {
    let app = guest("examples/compose-c/app.wasm");
    let library = guest("examples/compose-c/library.wasm");
    let hello = guest("examples/hello-c/hello.wasm");
    let mismatch = guest("tests/fixtures/greet-mismatch.wasm");
    let refused = |deps: &[Dependency<'_>]| compose(&app, deps, DENIED).unwrap_err();

    let e = refused(&[dependency("shoal:other/thing", &library, false)]);
    assert_eq!(e.field, "spec.dependencies[\"shoal:other/thing\"]");
    assert!(
        e.message
            .contains("neither the component nor its dependencies import"),
        "{e}"
    );
    assert!(e.message.contains(GREET), "{e}");

    let e = refused(&[dependency(GREET, &hello, false)]);
    assert!(
        e.message
            .contains("the dependency exports no shoal:examples/greet@0.1.0"),
        "{e}"
    );
    assert!(e.message.contains("wasi:http/incoming-handler"), "{e}");

    let e = refused(&[dependency(GREET, &mismatch, false)]);
    assert_eq!(e.field, "spec.dependencies[\"shoal:examples/greet@0.1.0\"]");
    assert!(e.message.contains("does not match"), "{e}");
    assert!(
        e.message
            .contains("in greet: in parameter name: expected string, found u32"),
        "{e}"
    );

    let e = refused(&[
        dependency(GREET, &library, false),
        dependency("shoal:examples", &library, false),
    ]);
    assert!(e.message.contains("both satisfy"), "{e}");

    let named = Dependency {
        export: Some("shoal:examples/other@0.1.0"),
        ..dependency(GREET, &library, false)
    };
    let e = refused(&[named]);
    assert!(
        e.message.contains("exports no shoal:examples/other@0.1.0"),
        "{e}"
    );
}

/// A component in WAT that imports `imports` and exports `exports`, each an instance with one
/// `f: func()`.
fn component(imports: &[&str], exports: &[&str]) -> Vec<u8> {
    let mut wat = String::from("(component\n (type $i (instance (export \"f\" (func))))\n");
    for (n, name) in imports.iter().enumerate() {
        wat.push_str(&format!(
            " (import \"{name}\" (instance $in{n} (type $i)))\n"
        ));
    }
    wat.push_str(
        " (core module $m (func (export \"f\")))\n (core instance $c (instantiate $m))\n (func $f (canon lift (core func $c \"f\")))\n",
    );
    for (n, name) in exports.iter().enumerate() {
        wat.push_str(&format!(
            " (instance $out{n} (export \"f\" (func $f)))\n (export \"{name}\" (instance $out{n}))\n"
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).unwrap()
}

#[test]
fn dependencies_satisfy_each_other_but_never_in_a_cycle() {
    let root = component(&["x:y/a"], &["x:y/root"]);
    let a = component(&["x:y/b"], &["x:y/a"]);
    let b = component(&[], &["x:y/b"]);
    let chain = [
        Dependency {
            id: "a",
            ..dependency("x:y/a", &a, true)
        },
        Dependency {
            id: "b",
            ..dependency("x:y/b", &b, true)
        },
    ];
    let composed = compose(&root, &chain, DENIED).unwrap();
    assert!(imports(&composed).is_empty());

    let b_needs_a = component(&["x:y/a"], &["x:y/b"]);
    let cycle = [
        chain[0],
        Dependency {
            id: "b",
            ..dependency("x:y/b", &b_needs_a, true)
        },
    ];
    let e = compose(&root, &cycle, DENIED).unwrap_err();
    assert_eq!(e.field, "spec.dependencies");
    assert!(e.message.contains("form a cycle"), "{e}");
    assert!(e.message.contains("dependency \"x:y/b\""), "{e}");

    let itself = component(&["x:y/a"], &["x:y/a"]);
    let e = compose(&root, &[dependency("x:y/a", &itself, true)], DENIED).unwrap_err();
    assert!(e.message.contains("cannot satisfy its own import"), "{e}");
}
