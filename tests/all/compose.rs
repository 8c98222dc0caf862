//! Typed composition (`spec.dependencies`): a component's imports satisfied by another
//! component's exports before it compiles; a dependency gets none of its app's capabilities
//! unless the spec says so; a composition that cannot be is refused at apply, naming the
//! dependency.

use crate::support::{Node, app_yaml, repo_path};

const APP: &str = "examples/compose-c/app.wasm";
const GREET: &str = "shoal:examples/greet@0.1.0";

fn depends(name: &str, dependency: &str) -> String {
    format!("  dependencies:\n    \"{name}\": {dependency}\n")
}

#[test]
fn the_example_calls_its_library_in_memory_and_the_library_is_denied_what_it_did_not_inherit() {
    let node = Node::start_warm(&[]);
    node.ok(&["apply", "-f", &repo_path("examples/compose-c/app.yaml")]);
    node.wait_ready("composed");
    let (status, body) = node.get("/compose/Ada");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "the library said: Hello, Ada, from a library!\n");
    let described = node.ok(&["describe", "app", "composed"]);
    assert!(
        described.contains("composed with its dependency"),
        "{described}"
    );

    // The app may reach the node's own ingress; its library may not, unless it inherits.
    let port = node.http.rsplit(':').next().unwrap().to_string();
    let library = repo_path("examples/compose-c/library.wasm");
    let outbound = format!("  capabilities:\n    outbound: [\"http://127.0.0.1:{port}\"]\n");
    let fetch = format!("/lib/fetch?url=http://127.0.0.1:{port}/compose/Bo");
    for (inherit, said) in [
        ("", "the library said: error: HTTP-request-denied\n"),
        (
            ", inheritCapabilities: true",
            "the library said: status 200\n",
        ),
    ] {
        let spec = format!(
            "{}{outbound}",
            depends(GREET, &format!("{{component: {library}{inherit}}}"))
        );
        node.apply(&app_yaml("lib", &repo_path(APP), "/lib", &spec));
        node.wait_ready("lib");
        let (status, body) = node.get(&fetch);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, said);
    }
    node.wait_for_log(
        "lib",
        "shoal-denied-wasi-http-outgoing-handler#handle: a dependency called it, which its app did not grant it (inheritCapabilities); answered HTTP-request-denied",
    );
}

#[test]
fn a_wasi_0_3_app_calls_its_wasi_0_2_library_in_memory() {
    let node = Node::start_warm(&[]);
    node.ok(&["apply", "-f", &repo_path("examples/compose-py3/app.yaml")]);
    node.wait_ready("composed-py3");
    let described = node.ok(&["describe", "app", "composed-py3"]);
    assert!(described.contains("WASI:         0.3"), "{described}");
    assert!(
        described.contains("composed with its dependency"),
        "{described}"
    );
    let (status, body) = node.get("/compose-py3/Ada");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "the library said: Hello, Ada, from a library!\n");
    // The library inherits nothing: its outgoing request is denied inside the 0.3 app too.
    let (status, body) = node.get("/compose-py3/fetch?url=http://example.com/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "the library said: error: HTTP-request-denied\n");
    node.wait_for_log(
        "composed-py3",
        "a dependency called it, which its app did not grant it (inheritCapabilities)",
    );
}

#[test]
fn a_composition_that_cannot_be_is_refused_at_apply_naming_the_dependency() {
    let node = Node::start_warm(&[]);
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    let app = repo_path(APP);
    let library = repo_path("examples/compose-c/library.wasm");
    let refused = |spec: String, said: &[&str]| {
        let err = node.fails(
            &["apply", "-f", "-"],
            Some(&app_yaml("bad", &app, "/bad", &spec)),
        );
        for s in said {
            assert!(err.contains(s), "{err}");
        }
    };
    refused(
        depends("shoal:other/thing", &library),
        &[
            "app/bad: spec.dependencies[\"shoal:other/thing\"]",
            "neither the component nor its dependencies import what this names (the component imports",
            GREET,
        ],
    );
    refused(
        depends(GREET, &repo_path("examples/hello-c/hello.wasm")),
        &[
            "spec.dependencies[\"shoal:examples/greet@0.1.0\"]: the dependency exports no shoal:examples/greet@0.1.0",
        ],
    );
    refused(
        depends(GREET, &repo_path("tests/fixtures/greet-mismatch.wasm")),
        &[
            "spec.dependencies[\"shoal:examples/greet@0.1.0\"]: the dependency's shoal:examples/greet@0.1.0 does not match",
            "in greet: in parameter name: expected string, found u32",
        ],
    );
    // Another app's component, as it is now: the hello app exports no greet.
    refused(
        depends(GREET, "{app: web}"),
        &["the dependency exports no shoal:examples/greet@0.1.0"],
    );
    refused(
        depends(GREET, "{app: nowhere}"),
        &[
            "spec.dependencies[\"shoal:examples/greet@0.1.0\"].app: app/nowhere does not exist; apply it first",
        ],
    );
    refused(
        depends(GREET, "{inheritCapabilities: true}"),
        &["spec.dependencies[\"shoal:examples/greet@0.1.0\"]: names no component"],
    );
    refused(
        depends("Not A Name", &library),
        &["spec.dependencies[\"Not A Name\"]: 'Not A Name' is not what a dependency can satisfy"],
    );
    // Nothing of it was applied.
    assert!(!node.ok(&["get", "apps"]).contains("bad"));
}

/// A Spin application in `dir` whose components depend on the C example's library: by
/// path, through another component, and by path inheriting the component's capabilities
/// (reaching `ingress`, the node's own).
pub(crate) fn greeters_spin_toml(dir: &std::path::Path, ingress: &str) {
    let (app, library) = (repo_path(APP), repo_path("examples/compose-c/library.wasm"));
    std::fs::write(
        dir.join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2

[application]
name = "greeters"

[[trigger.http]]
route = "/by-path/..."
component = "by-path"

[[trigger.http]]
route = "/by-component/..."
component = "by-component"

[[trigger.http]]
route = "/inheriting/..."
component = "inheriting"

[component.by-path]
source = "{app}"
allowed_outbound_hosts = ["http://{ingress}"]
[component.by-path.dependencies]
"shoal:examples/greet@0.1.0" = {{ path = "{library}" }}

[component.by-component]
source = "{app}"
[component.by-component.dependencies]
"shoal:examples" = {{ component = "library" }}

[component.inheriting]
source = "{app}"
allowed_outbound_hosts = ["http://{ingress}"]
dependencies_inherit_configuration = true
[component.inheriting.dependencies]
"shoal:examples/greet@0.1.0" = {{ path = "{library}" }}

# A component no trigger serves: only a dependency of the others.
[component.library]
source = "{library}"
"#
        ),
    )
    .unwrap();
}

/// What the applications of [`greeters_spin_toml`] answer: each calls its library, and only
/// the inheriting one's library may reach the ingress.
pub(crate) fn greeters_answer(node: &Node) {
    for (app, path) in [
        ("greeters-by-path", "/by-path/Ada"),
        ("greeters-by-component", "/by-component/Bo"),
    ] {
        node.wait_ready(app);
        let (status, body) = node.get(path);
        assert_eq!(status, 200, "{body}");
        let name = path.rsplit('/').next().unwrap();
        assert_eq!(
            body,
            format!("the library said: Hello, {name}, from a library!\n")
        );
    }
    node.wait_ready("greeters-inheriting");
    let ingress = node.http.trim_start_matches("http://");
    for (path, said) in [
        ("/by-path", "the library said: error: HTTP-request-denied\n"),
        ("/inheriting", "the library said: status 200\n"),
    ] {
        let (status, body) = node.get(&format!(
            "{path}/fetch?url=http://{ingress}/by-component/Cy"
        ));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, said, "{path}");
    }
}

#[test]
fn a_spin_components_dependencies_are_composed_as_spin_composes_them() {
    let node = Node::start_warm(&[]);
    let dir = tempfile::tempdir().unwrap();
    greeters_spin_toml(dir.path(), node.http.trim_start_matches("http://"));
    node.ok(&[
        "apply",
        "-f",
        &dir.path().join("spin.toml").display().to_string(),
    ]);
    greeters_answer(&node);
}
