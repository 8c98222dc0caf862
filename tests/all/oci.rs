//! Components from an OCI registry: a real one (Distribution, `docker-registry`), pushed to
//! with `shoal push`, deployed by tag and by digest; a tag resolved once per apply, so a
//! moved tag is a new revision and a rollback runs the bytes it ran before, with the registry
//! gone.

use crate::support::{Node, app_yaml, repo_path};

#[test]
fn apps_deploy_from_a_registry_by_tag_and_by_digest_and_roll_back() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start(&[]);
    let tag = format!("oci://{}/demo/hello:stable", registry.addr);
    let v1 = node.ok(&["push", &repo_path("examples/hello-c/hello.wasm"), &tag]);
    let v1 = v1.trim();
    assert!(v1.starts_with(&format!("{tag}@sha256:")), "{v1}");

    let manifest = app_yaml("reg", &tag, "/hello", "");
    assert!(node.apply(&manifest).contains("app/reg created"));
    node.wait_ready("reg");
    assert_eq!(node.get("/hello").1, "Hello from C! You asked for /hello\n");
    // The stored spec names the pulled bytes, and where they came from.
    let yaml = node.ok(&["get", "app", "reg", "-o", "yaml"]);
    assert!(yaml.contains(&format!("componentSource: {v1}")), "{yaml}");
    assert!(yaml.contains("component: sha256:"), "{yaml}");
    let described = node.ok(&["describe", "app", "reg"]);
    assert!(
        described.contains(&format!("Pulled from:  {v1}")),
        "{described}"
    );
    // The tag has not moved: nothing changes.
    assert!(node.apply(&manifest).contains("app/reg unchanged"));

    // The tag moves: the same manifest is a new revision with the new bytes.
    let v2 = node.ok(&["push", &repo_path("tests/fixtures/hello-v2.wasm"), &tag]);
    assert_ne!(v2.trim(), v1);
    assert!(node.apply(&manifest).contains("app/reg configured"));
    node.ok(&["rollout", "status", "app", "reg"]);
    assert_eq!(
        node.get("/hello").1,
        "Hello again from C! You asked for /hello\n"
    );

    // A reference pinned to a digest deploys those bytes whatever the tag says now.
    node.apply(&app_yaml("pinned", v1, "/pinned", ""));
    node.wait_ready("pinned");
    assert_eq!(
        node.get("/pinned").1,
        "Hello from C! You asked for /pinned\n"
    );

    // With the registry gone, everything applied keeps serving and a rollback needs no pull;
    // a new apply of the tag fails naming the reference, and changes nothing.
    drop(registry);
    assert_eq!(
        node.ok(&["rollout", "undo", "app", "reg"]),
        "app/reg rolled back to revision 1 (as revision 3)\n"
    );
    node.ok(&["rollout", "status", "app", "reg"]);
    assert_eq!(node.get("/hello").1, "Hello from C! You asked for /hello\n");
    let out = node.run(&["apply", "-f", "-"], Some(&manifest));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("app/reg: spec.component: {tag}: cannot fetch")),
        "{err}"
    );
    assert_eq!(node.get("/hello").1, "Hello from C! You asked for /hello\n");
}

#[test]
fn a_registry_that_needs_a_login_gets_the_one_stored_by_shoal_registry_login() {
    let registry = shoal_testkit::Registry::start_with_login("ci", "s3cret-pass");
    let node = Node::start(&[]);
    let tag = format!("oci://{}/private/hello:1", registry.addr);
    let file = repo_path("examples/hello-c/hello.wasm");
    let err = node.fails(&["push", &file, &tag], None);
    assert!(
        err.contains(&format!(
            "log in with `shoal registry login {}`",
            registry.addr
        )),
        "{err}"
    );

    let login = [
        "registry",
        "login",
        &registry.addr,
        "-u",
        "ci",
        "--password-stdin",
    ];
    let out = node.run(&login, Some("s3cret-pass\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = node.data_dir.join("registries.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&stored).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    node.ok(&["push", &file, &tag]);

    // The server pulls with the credentials the CLI sent along with the apply.
    node.apply(&app_yaml("private", &tag, "/private", ""));
    node.wait_ready("private");
    assert_eq!(
        node.get("/private").1,
        "Hello from C! You asked for /private\n"
    );
    // ... and keeps them nowhere.
    for shown in [
        node.ok(&["get", "app", "private", "-o", "yaml"]),
        node.ok(&["describe", "app", "private"]),
        node.ok(&["get", "events"]),
        node.ok(&["logs", "private"]),
        node.stderr.text(),
    ] {
        assert!(!shown.contains("s3cret-pass"), "{shown}");
    }

    // Logged out, the server's pull is refused, naming the registry.
    node.ok(&["registry", "logout", &registry.addr]);
    let other = app_yaml("private2", &tag, "/private2", "");
    let out = node.run(&["apply", "-f", "-"], Some(&other));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("app/private2: spec.component:"), "{err}");
    assert!(err.contains("the registry needs credentials"), "{err}");
}

#[test]
fn a_server_can_take_only_some_registries_and_only_digests() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start(&["--allowed-registry", &registry.addr, "--require-digest"]);
    let tag = format!("oci://{}/demo/hello:1", registry.addr);
    let pinned = node.ok(&["push", &repo_path("examples/hello-c/hello.wasm"), &tag]);
    let refused = |component: &str| {
        let out = node.run(
            &["apply", "-f", "-"],
            Some(&app_yaml("p", component, "/p", "")),
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&tag);
    assert!(
        err.contains("takes only references pinned to a digest (--require-digest)"),
        "{err}"
    );
    let elsewhere = format!(
        "oci://registry.example/demo/hello@{}",
        pinned.trim().rsplit('@').next().unwrap()
    );
    let err = refused(&elsewhere);
    assert!(
        err.contains(&format!(
            "this server pulls only from {} (--allowed-registry)",
            registry.addr
        )),
        "{err}"
    );
    node.apply(&app_yaml("p", pinned.trim(), "/p", ""));
    node.wait_ready("p");
    assert_eq!(node.get("/p").1, "Hello from C! You asked for /p\n");
}

/// The Python of the virtualenv `scripts/test` installs `oras` (oras-py) in.
fn oras_python() -> String {
    let python = repo_path("target/test-venv/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: scripts/test makes it (python3 -m venv target/test-venv && target/test-venv/bin/pip install oras==0.2.43 opentelemetry-proto==1.45.2)"
    );
    python
}

pub(crate) fn oras(args: &[&str]) -> String {
    let out = std::process::Command::new(oras_python())
        .arg(repo_path("tests/fixtures/oras_interop.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oras {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn artifacts_travel_between_shoal_and_oras_both_ways() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start(&[]);
    let dir = tempfile::tempdir().unwrap();

    // Pushed by oras, deployed by Shoal.
    let file = dir.path().join("hello.wasm");
    std::fs::copy(repo_path("examples/hello-c/hello.wasm"), &file).unwrap();
    oras(&[
        "push",
        &registry.addr,
        "from/oras:1",
        file.to_str().unwrap(),
    ]);
    let reference = format!("oci://{}/from/oras:1", registry.addr);
    node.apply(&app_yaml("from-oras", &reference, "/oras", ""));
    node.wait_ready("from-oras");
    assert_eq!(node.get("/oras").1, "Hello from C! You asked for /oras\n");

    // Pushed by Shoal, pulled by oras with the media types of a Wasm artifact.
    let v2 = repo_path("tests/fixtures/hello-v2.wasm");
    node.ok(&[
        "push",
        &v2,
        &format!("oci://{}/from/shoal:1", registry.addr),
    ]);
    let out = dir.path().join("pulled");
    let manifest = oras(&[
        "pull",
        &registry.addr,
        "from/shoal:1",
        out.to_str().unwrap(),
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let pulled: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pulled.len(), 1, "{pulled:?}");
    assert_eq!(
        std::fs::read(&pulled[0]).unwrap(),
        std::fs::read(&v2).unwrap()
    );
}

#[test]
fn a_job_runs_a_command_component_from_a_registry() {
    let registry = shoal_testkit::Registry::start();
    let node = Node::start(&[]);
    let tag = format!("oci://{}/tools/job:1", registry.addr);
    node.ok(&[
        "push",
        &repo_path("tests/fixtures/job-component.wasm"),
        &tag,
    ]);
    let job = format!(
        "apiVersion: shoal/v1alpha1\nkind: Job\nmetadata:\n  name: pulled\nspec:\n  component: {tag}\n  args: [echo, from, registry]\n"
    );
    assert_eq!(node.apply(&job), "job/pulled created\n");
    node.ok(&[
        "wait",
        "job",
        "pulled",
        "--for",
        "complete",
        "--timeout",
        "120s",
    ]);
    let logs = node.ok(&["logs", "job", "pulled"]);
    assert!(logs.contains("stdout arg registry"), "{logs}");
    let yaml = node.ok(&["get", "job", "pulled", "-o", "yaml"]);
    assert!(
        yaml.contains(&format!("componentSource: {tag}@sha256:")),
        "{yaml}"
    );
}
