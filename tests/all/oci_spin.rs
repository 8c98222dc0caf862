//! Spin applications from a real registry (Distribution): published by `shoal push -f
//! spin.toml` in `spin registry push`'s format, or laid out as Spin lays it out by a client
//! nobody here wrote (oras), and deployed with `shoal apply --spin oci://…`: the server pulls
//! once, the locked app becomes the same Apps its spin.toml would, with its files and
//! variables. Progress is printed as plain lines, since the tests' stderr is no terminal.

use crate::oci::oras;
use crate::support::{Node, repo_path};
use shoal_api::Digest;

/// A Spin application in `dir`: the Spin Python example with a key-value store, variables
/// (one required and secret), and files (one small enough to be inlined in the locked app,
/// one that is not).
fn spin_dir(dir: &std::path::Path, greeting: &str) {
    let wasm = repo_path("examples/spin-py/app.wasm");
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/hello.txt"), "hello from a file\n").unwrap();
    std::fs::write(dir.join("static/big.txt"), "big\n".repeat(100)).unwrap();
    std::fs::write(
        dir.join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2

[application]
name = "pushed"

[variables]
greeting = {{ default = "{greeting}" }}
api_key = {{ required = true, secret = true }}

[[trigger.http]]
route = "/py/..."
component = "pushed"

[component.pushed]
source = "{wasm}"
key_value_stores = ["default"]
files = ["static/*"]

[component.pushed.variables]
message = "{{{{ greeting }}}} from Spin Python"
token = "Bearer {{{{ api_key }}}}"
"#
        ),
    )
    .unwrap();
}

/// The manifest a reference names, from the registry's own API.
fn manifest(registry: &str, repo: &str, tag: &str) -> serde_json::Value {
    crate::support::http_client()
        .get(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn a_spin_app_published_by_shoal_push_deploys_from_the_registry() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start_warm(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    spin_dir(tmp.path(), "Hello");
    let tag = format!("oci://{}/spin/pushed:v1", registry.addr);

    let out = node.run(&["push", "-f", dir, &tag], None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let v1 = stdout.trim().to_string();
    assert!(v1.starts_with(&format!("{tag}@sha256:")), "{v1}");
    assert!(stderr.contains("pushing sha256:"), "{stderr}");

    // Spin's layout: the component, the file too big to inline, the locked app last.
    let m = manifest(&registry.addr, "spin/pushed", "v1");
    let types: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.wasm.content.layer.v1+wasm",
            "application/vnd.wasm.content.layer.v1+data",
            "application/vnd.fermyon.spin.application.v1+config",
        ],
        "{m}"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );

    let out = node.run(
        &[
            "apply",
            "--spin",
            &tag,
            "--variable",
            "api_key=s3cret",
            "--wait",
        ],
        None,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("app/pushed created"), "{stdout}");
    assert!(stdout.contains("app/pushed ready"), "{stdout}");
    assert!(stderr.contains("pulling sha256:"), "{stderr}");
    assert_eq!(node.get("/py/"), (200, "Hello from Spin Python\n".into()));
    assert_eq!(node.get("/py/var/token"), (200, "Bearer s3cret\n".into()));
    assert_eq!(
        node.get("/py/file/static/hello.txt"),
        (200, "hello from a file\n".into())
    );
    assert_eq!(node.get("/py/file/static/big.txt").1, "big\n".repeat(100));
    assert_eq!(node.get("/py/count"), (200, "count 1\n".into()));
    let described = node.ok(&["describe", "app", "pushed"]);
    assert!(
        described.contains(&format!("Pulled from:  {v1}")),
        "{described}"
    );

    // The same tag again: nothing changes, and no layer is downloaded twice.
    let again = node.ok(&["apply", "--spin", &tag, "--variable", "api_key=s3cret"]);
    assert!(again.contains("app/pushed unchanged"), "{again}");
    let wasm = Digest::of(&std::fs::read(repo_path("examples/spin-py/app.wasm")).unwrap());
    let wasm_gets = registry
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains(&format!("/blobs/{wasm}")))
        .count();
    assert_eq!(wasm_gets, 1, "{:?}", registry.requests());

    // The tag moves: a new revision with the new default.
    spin_dir(tmp.path(), "Hi");
    node.ok(&["push", "-f", dir, &tag]);
    let moved = node.ok(&[
        "apply",
        "--spin",
        &tag,
        "--variable",
        "api_key=s3cret",
        "--wait",
    ]);
    assert!(moved.contains("app/pushed configured"), "{moved}");
    assert_eq!(node.get("/py/"), (200, "Hi from Spin Python\n".into()));

    // A required variable without a value is refused, naming it; nothing changes.
    let err = node.fails(&["apply", "--spin", &tag], None);
    assert!(err.contains("variables.api_key: is required"), "{err}");

    // With the registry gone, the app keeps serving and rolls back without a pull.
    drop(registry);
    node.ok(&["rollout", "undo", "app", "pushed"]);
    node.ok(&["rollout", "status", "app", "pushed"]);
    assert_eq!(node.get("/py/"), (200, "Hello from Spin Python\n".into()));
    // A component is not a Spin application, and the other way round.
    let err = node.fails(&["apply", "--spin", &v1], None);
    assert!(err.contains(&format!("--spin {v1}")), "{err}");
}

#[test]
fn a_spin_app_laid_out_by_another_client_deploys_and_a_lying_one_applies_nothing() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start_warm(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(repo_path("examples/spin-py/app.wasm")).unwrap();
    std::fs::write(tmp.path().join("app.wasm"), &wasm).unwrap();
    // Archive mode: every file in one tar.gz layer, small ones also inline in the lock.
    let small = b"hello from an archive\n".to_vec();
    let big = "archived\n".repeat(50).into_bytes();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, bytes) in [("static/hello.txt", &small), ("static/big.txt", &big)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    let gz = tar.into_inner().unwrap().finish().unwrap();
    std::fs::write(tmp.path().join("files.tar.gz"), gz).unwrap();
    let lock = |big_digest: &str| {
        serde_json::json!({
            "spin_lock_version": 0,
            "metadata": {
                "authors": ["Someone <someone@example.com>"],
                "name": "from-spin",
                "trigger": { "type": "http" },
                "triggers": { "http": {} },
                "version": "0.1.0"
            },
            "variables": { "greeting": { "default": "Howdy" } },
            "triggers": [{
                "id": "trigger-from-spin",
                "trigger_type": "http",
                "trigger_config": { "component": "from-spin", "route": "/spin/..." }
            }],
            "components": [{
                "id": "from-spin",
                "metadata": { "allowed_outbound_hosts": [], "key_value_stores": ["default"] },
                "source": { "content_type": "application/wasm", "digest": Digest::of(&wasm).to_string() },
                "files": [
                    { "inline": "aGVsbG8gZnJvbSBhbiBhcmNoaXZlCg==", "digest": Digest::of(&small).to_string(), "path": "static/hello.txt" },
                    { "digest": big_digest, "path": "static/big.txt" }
                ],
                "config": { "message": "{{ greeting }} from Spin", "token": "none" }
            }]
        })
    };
    let write_lock = |big_digest: &str| {
        std::fs::write(
            tmp.path().join("spin.lock"),
            serde_json::to_vec_pretty(&lock(big_digest)).unwrap(),
        )
        .unwrap();
    };
    let dir = tmp.path().to_str().unwrap();

    // A locked app naming content no layer holds applies nothing, naming it.
    let missing = Digest::of(b"not in any layer").to_string();
    write_lock(&missing);
    oras(&["push-spin", &registry.addr, "spin/lying:1", dir]);
    let err = node.fails(
        &[
            "apply",
            "--spin",
            &format!("oci://{}/spin/lying:1", registry.addr),
        ],
        None,
    );
    assert!(
        err.contains(&format!("component.from-spin.files (static/big.txt): the locked app names {missing}, which no layer holds")),
        "{err}"
    );
    assert!(
        node.ok(&["get", "apps"]).lines().count() <= 1,
        "nothing was applied"
    );

    write_lock(&Digest::of(&big).to_string());
    oras(&["push-spin", &registry.addr, "spin/app:1", dir]);
    let reference = format!("oci://{}/spin/app:1", registry.addr);
    let applied = node.ok(&["apply", "--spin", &reference, "--wait"]);
    assert!(applied.contains("app/from-spin created"), "{applied}");
    assert_eq!(node.get("/spin/"), (200, "Howdy from Spin\n".into()));
    assert_eq!(
        node.get("/spin/file/static/hello.txt"),
        (200, "hello from an archive\n".into())
    );
    assert_eq!(
        node.get("/spin/file/static/big.txt").1,
        "archived\n".repeat(50)
    );
    let yaml = node.ok(&["get", "app", "from-spin", "-o", "yaml"]);
    assert!(yaml.contains("shoal.dev/spin-app: from-spin"), "{yaml}");
}

#[test]
fn a_spin_toml_component_from_a_registry_package_is_pulled_by_the_server() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start_warm(&[]);
    let wasm = repo_path("examples/spin-py/app.wasm");
    // The package acme:hello@1.0.0 is the Wasm artifact REGISTRY/acme/hello:1.0.0.
    node.ok(&[
        "push",
        &wasm,
        &format!("oci://{}/acme/hello:1.0.0", registry.addr),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("static")).unwrap();
    std::fs::write(tmp.path().join("static/a.txt"), "a file\n").unwrap();
    std::fs::write(
        tmp.path().join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2

[application]
name = "packaged"

[[trigger.http]]
route = "/pkg/..."
component = "hello"

[[trigger.http]]
route = "/local/..."
component = "local"

[component.hello]
source = {{ registry = "{}", package = "acme:hello", version = "1.0.0" }}
key_value_stores = ["default"]

[component.hello.variables]
message = "from a package"

[component.local]
source = "{wasm}"
files = ["static/*"]

[component.local.variables]
message = "from a file"
"#,
            registry.addr
        ),
    )
    .unwrap();
    let out = node.run(&["apply", "-f", tmp.path().to_str().unwrap()], None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("app/packaged-hello created"), "{stdout}");
    // The package is pulled by the server, the local files uploaded, each with a line.
    assert!(stderr.contains("pulling sha256:"), "{stderr}");
    assert!(stderr.contains("uploading sha256:"), "{stderr}");
    node.wait_ready("packaged-hello");
    node.wait_ready("packaged-local");
    assert_eq!(node.get("/pkg/"), (200, "from a package\n".into()));
    assert_eq!(node.get("/local/"), (200, "from a file\n".into()));
    assert_eq!(
        node.get("/local/file/static/a.txt"),
        (200, "a file\n".into())
    );
    let yaml = node.ok(&["get", "app", "packaged-hello", "-o", "yaml"]);
    assert!(
        yaml.contains(&format!(
            "componentSource: oci://{}/acme/hello:1.0.0@sha256:",
            registry.addr
        )),
        "{yaml}"
    );
}

#[test]
fn a_spin_apps_dependencies_are_published_with_it_and_composed_from_the_registry() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start_warm(&[]);
    let tmp = tempfile::tempdir().unwrap();
    crate::compose::greeters_spin_toml(tmp.path(), node.http.trim_start_matches("http://"));
    let tag = format!("oci://{}/spin/greeters:v1", registry.addr);
    node.ok(&["push", "-f", tmp.path().to_str().unwrap(), &tag]);

    // The library is a layer of its own, named by each dependency in the locked app.
    let library = Digest::of(&std::fs::read(repo_path("examples/compose-c/library.wasm")).unwrap());
    let m = manifest(&registry.addr, "spin/greeters", "v1");
    let layers = m["layers"].as_array().unwrap();
    assert!(
        layers.iter().any(|l| l["digest"] == library.to_string()),
        "{m}"
    );
    let locked = layers.last().unwrap()["digest"].as_str().unwrap();
    let locked: serde_json::Value = crate::support::http_client()
        .get(format!(
            "http://{}/v2/spin/greeters/blobs/{locked}",
            registry.addr
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let inheriting = locked["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "inheriting")
        .unwrap();
    let dependency = &inheriting["dependencies"]["shoal:examples/greet@0.1.0"];
    assert_eq!(
        dependency["source"]["digest"],
        library.to_string(),
        "{locked}"
    );
    assert_eq!(dependency["inherit"], "All", "{locked}");

    node.ok(&["apply", "--spin", &tag, "--wait"]);
    crate::compose::greeters_answer(&node);
}

#[test]
fn a_spin_app_whose_component_and_dependency_are_registry_packages_is_published_whole() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start_warm(&[]);
    let at = |package: &str| format!("oci://{}/{package}", registry.addr);
    // The packages shoal:greeter@1.0.0 and shoal:examples@0.1.0, as the artifacts they map to.
    node.ok(&[
        "push",
        &repo_path("examples/compose-c/app.wasm"),
        &at("shoal/greeter:1.0.0"),
    ]);
    node.ok(&[
        "push",
        &repo_path("examples/compose-c/library.wasm"),
        &at("shoal/examples:0.1.0"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2

[application]
name = "packaged"

[[trigger.http]]
route = "/packaged/..."
component = "front"

[component.front]
source = {{ registry = "{r}", package = "shoal:greeter", version = "1.0.0" }}
[component.front.dependencies]
"shoal:examples/greet@0.1.0" = {{ registry = "{r}", package = "shoal:examples", version = "0.1.0" }}
"#,
            r = registry.addr
        ),
    )
    .unwrap();
    let tag = at("spin/packaged:v1");
    let out = node.run(&["push", "-f", tmp.path().to_str().unwrap(), &tag], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let components = [
        "examples/compose-c/app.wasm",
        "examples/compose-c/library.wasm",
    ]
    .map(|wasm| {
        (
            wasm,
            Digest::of(&std::fs::read(repo_path(wasm)).unwrap()).to_string(),
        )
    });
    // Each package the CLI pulls has its line, as each layer it pushes does.
    for (wasm, digest) in &components {
        assert!(
            stderr.contains(&format!("pulling {}", &digest[..19])),
            "{wasm}: {stderr}"
        );
    }
    // What was published holds both components, as layers of its own.
    let m = manifest(&registry.addr, "spin/packaged", "v1");
    for (wasm, digest) in &components {
        let layers = m["layers"].as_array().unwrap();
        assert!(layers.iter().any(|l| l["digest"] == *digest), "{wasm}: {m}");
    }
    node.ok(&["apply", "--spin", &tag, "--wait"]);
    assert_eq!(
        node.get("/packaged/Ada"),
        (
            200,
            "the library said: Hello, Ada, from a library!\n".into()
        )
    );
}
