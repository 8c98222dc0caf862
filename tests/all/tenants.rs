//! Tenants: namespaces as a boundary, access tokens with roles checked on every API route,
//! hosts owned by one namespace, and quotas.

use crate::support::{Node, app_yaml, job_yaml, repo_path};
use reqwest::Method;

const HELLO: &str = "examples/hello-c/hello.wasm";
const JOB: &str = "tests/fixtures/job-module.wasm";

/// `shoal -n NS apply -f -` as the admin; returns stdout.
fn apply_in(node: &Node, ns: &str, yaml: &str) -> String {
    let out = node.run(&["-n", ns, "apply", "-f", "-"], Some(yaml));
    assert!(
        out.status.success(),
        "apply in {ns} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new access token for `role` in `ns`, made with the CLI.
fn token(node: &Node, role: &str, ns: &str) -> String {
    node.ok(&["-n", ns, "create", "token", "--role", role])
        .trim()
        .to_string()
}

/// One API request with `token`: its status and body.
fn call(node: &Node, token: &str, method: &Method, path: &str, body: &str) -> (u16, String) {
    let resp = node
        .api_client()
        .request(method.clone(), format!("{}{path}", node.api))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// What a token is, for the matrix.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    View,
    Edit,
    Admin,
}

/// One route of the API: whether it is a write, and whether it is inside a namespace.
struct RouteCase {
    method: Method,
    /// `{ns}` is replaced by the namespace tried.
    path: String,
    body: String,
    scope: Scope,
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// A path inside namespace `{ns}`: view reads it, edit also writes it.
    Namespaced,
    /// The namespace object itself: view and edit read their own; only admin writes.
    NamespaceObject,
    /// What an apply needs beside the object: uploads, pulls, blob checks (edit).
    Apply,
    /// Anyone: /v1/info, the list of namespaces, whether a blob is held.
    Any,
    /// Only admin: nodes, tokens, the store, blob downloads.
    AdminOnly,
}

fn allowed(who: Who, case: &RouteCase, own: bool) -> bool {
    let write = case.method != Method::GET && case.method != Method::HEAD;
    match (who, case.scope) {
        (Who::Admin, _) => true,
        (_, Scope::Any) => true,
        (_, Scope::AdminOnly) => false,
        (_, Scope::NamespaceObject) => own && !write,
        (Who::View, Scope::Apply) => false,
        (Who::Edit, Scope::Apply) => true,
        (Who::View, Scope::Namespaced) => own && !write,
        (Who::Edit, Scope::Namespaced) => own,
    }
}

#[test]
fn every_route_checks_the_role_and_the_namespace() {
    let node = Node::start(&[]);
    node.ok(&["create", "namespace", "team-a"]);
    node.ok(&["create", "namespace", "team-b"]);
    let hello = repo_path(HELLO);
    for ns in ["team-a", "team-b"] {
        apply_in(&node, ns, &app_yaml("web", &hello, &format!("/{ns}"), ""));
        apply_in(&node, ns, &job_yaml("batch", JOB, &["hello"], ""));
    }
    let tokens = [
        (Who::View, token(&node, "view", "team-a")),
        (Who::Edit, token(&node, "edit", "team-a")),
        (
            Who::Admin,
            node.ok(&["create", "token", "--role", "admin"])
                .trim()
                .to_string(),
        ),
    ];
    let admin = &tokens[2].1;
    let (_, app) = call(
        &node,
        admin,
        &Method::GET,
        "/v1/namespaces/team-a/apps/web",
        "",
    );
    let (_, job) = call(
        &node,
        admin,
        &Method::GET,
        "/v1/namespaces/team-a/jobs/batch",
        "",
    );
    let digest = serde_json::from_str::<serde_json::Value>(&app).unwrap()["spec"]["component"]
        .as_str()
        .unwrap()
        .to_string();
    let ns_body = |ns: &str| {
        format!(
            r#"{{"apiVersion":"shoal/v1alpha1","kind":"Namespace","metadata":{{"name":"{ns}"}}}}"#
        )
    };
    let case = |method: Method, path: &str, body: &str, scope: Scope| RouteCase {
        method,
        path: path.to_string(),
        body: body.to_string(),
        scope,
    };
    let blob = &format!("/v1/blobs/{digest}");
    let cases = [
        case(Method::GET, "/v1/info", "", Scope::Any),
        case(Method::GET, "/v1/namespaces", "", Scope::Any),
        case(
            Method::GET,
            "/v1/namespaces/{ns}",
            "",
            Scope::NamespaceObject,
        ),
        case(
            Method::PUT,
            "/v1/namespaces/{ns}",
            "NS",
            Scope::NamespaceObject,
        ),
        case(
            Method::DELETE,
            "/v1/namespaces/{ns}",
            "",
            Scope::NamespaceObject,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/apps",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/apps/web",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::PUT,
            "/v1/namespaces/{ns}/apps/web",
            "APP",
            Scope::Namespaced,
        ),
        case(
            Method::DELETE,
            "/v1/namespaces/{ns}/apps/ghost",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/apps/web/logs",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/apps/web/revisions",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/jobs",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/jobs/batch",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::PUT,
            "/v1/namespaces/{ns}/jobs/batch",
            "JOB",
            Scope::Namespaced,
        ),
        case(
            Method::DELETE,
            "/v1/namespaces/{ns}/jobs/ghost",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/jobs/batch/logs",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/events",
            "",
            Scope::Namespaced,
        ),
        case(
            Method::GET,
            "/v1/namespaces/{ns}/stats",
            "",
            Scope::Namespaced,
        ),
        case(Method::POST, "/v1/blobs", "not a component", Scope::Apply),
        case(Method::HEAD, blob, "", Scope::Any),
        case(Method::POST, "/v1/pull", "{}", Scope::Apply),
        case(Method::GET, blob, "", Scope::AdminOnly),
        case(Method::GET, "/v1/nodes", "", Scope::AdminOnly),
        case(Method::DELETE, "/v1/nodes/ghost", "", Scope::AdminOnly),
        case(Method::GET, "/v1/tokens", "", Scope::AdminOnly),
        case(Method::DELETE, "/v1/tokens/0000", "", Scope::AdminOnly),
        case(
            Method::GET,
            "/v1/store/list?prefix=cluster/",
            "",
            Scope::AdminOnly,
        ),
    ];
    let mut failures = Vec::new();
    for (who, token) in &tokens {
        for c in &cases {
            for ns in ["team-a", "team-b"] {
                // The namespace object's writes are tried on a namespace made for it, so that
                // an allowed delete takes nothing the rest of the matrix needs.
                let target = if c.scope == Scope::NamespaceObject && c.method != Method::GET {
                    let scratch = if ns == "team-a" { "team-a" } else { "scratch" };
                    if scratch == "scratch" {
                        call(
                            &node,
                            admin,
                            &Method::PUT,
                            "/v1/namespaces/scratch",
                            &ns_body("scratch"),
                        );
                    }
                    scratch
                } else {
                    ns
                };
                // The admin deletes team-a last (below).
                if *who == Who::Admin
                    && c.scope == Scope::NamespaceObject
                    && c.method == Method::DELETE
                    && target == "team-a"
                {
                    continue;
                }
                let path = c.path.replace("{ns}", target);
                let body = match c.body.as_str() {
                    "NS" => ns_body(target),
                    "APP" => app.replace("\"team-a\"", &format!("\"{target}\"")),
                    "JOB" => job.replace("\"team-a\"", &format!("\"{target}\"")),
                    b => b.to_string(),
                };
                let (status, text) = call(&node, token, &c.method, &path, &body);
                let own = target == "team-a";
                let expect = allowed(*who, c, own);
                let ok = if expect {
                    status != 401 && status != 403
                } else {
                    status == 403
                };
                if !ok {
                    failures.push(format!(
                        "{who:?} {} {path}: {status} {text} (expected {})",
                        c.method,
                        if expect { "allowed" } else { "403" }
                    ));
                }
                // A refusal says why, and never shows the object.
                if !expect && c.scope == Scope::Namespaced {
                    assert!(
                        text.contains("it reaches only namespace team-a")
                            || text.contains("it may only read"),
                        "{who:?} {} {path}: {text}",
                        c.method
                    );
                    assert!(!text.contains("sha256:"), "{path} leaked: {text}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A view or edit token lists only its own namespace.
    let (status, list) = call(&node, &tokens[0].1, &Method::GET, "/v1/namespaces", "");
    assert_eq!(status, 200);
    let names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&list)
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["team-a"]);

    // The CLI with a view token: reads work, an apply is refused with the reason.
    let view = &tokens[0].1;
    let out = node.ok(&["--token", view, "-n", "team-a", "get", "apps"]);
    assert!(out.contains("web"), "{out}");
    let err = node.fails(&["--token", view, "-n", "team-b", "get", "apps"], None);
    assert!(err.contains("cannot reach namespace team-b"), "{err}");
    let err = node.fails(
        &["--token", view, "-n", "team-a", "apply", "-f", "-"],
        Some(&app_yaml("other", &hello, "/other", "")),
    );
    assert!(err.contains("it may only read"), "{err}");

    // Deleting a namespace deletes its objects and its tokens.
    let edit = &tokens[1].1;
    node.ok(&["delete", "namespace", "team-a"]);
    let (status, _) = call(&node, edit, &Method::GET, "/v1/namespaces/team-a/apps", "");
    assert_eq!(status, 401, "a deleted namespace's token still works");
    let (status, _) = call(
        &node,
        admin,
        &Method::GET,
        "/v1/namespaces/team-a/apps/web",
        "",
    );
    assert_eq!(status, 404);
    let err = node.fails(
        &["-n", "team-a", "apply", "-f", "-"],
        Some(&app_yaml("x", &hello, "/x", "")),
    );
    assert!(
        err.contains(
            "namespace/team-a not found; an admin creates it with `shoal create namespace team-a`"
        ),
        "{err}"
    );
    let err = node.fails(&["delete", "namespace", "default"], None);
    assert!(err.contains("namespace/default cannot be deleted"), "{err}");
}

#[test]
fn a_host_belongs_to_one_namespace() {
    let node = Node::start(&[]);
    node.ok(&["create", "namespace", "team-a"]);
    node.ok(&["create", "namespace", "team-b"]);
    let hello = repo_path(HELLO);
    let on_host = |name: &str, path: &str| {
        format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: {name}}}\nspec:\n  component: {hello}\n  routes: [{{host: shop.example.com, path: {path}}}]\n"
        )
    };
    apply_in(&node, "team-a", &on_host("shop", "/"));
    // Another path on the same host, from another namespace: refused.
    let out = node.run(
        &["-n", "team-b", "apply", "-f", "-"],
        Some(&on_host("sneaky", "/admin")),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        "error: app/sneaky (namespace team-b): spec.routes[0].host: host shop.example.com belongs to namespace team-a, whose apps route it; choose another host\n"
    );
    // The owner's other apps may route it.
    apply_in(&node, "team-a", &on_host("admin", "/admin"));
    // Once no app of team-a routes it, it is free.
    node.ok(&["-n", "team-a", "delete", "app", "shop", "admin"]);
    apply_in(&node, "team-b", &on_host("sneaky", "/admin"));
    let err = node.fails(
        &["-n", "team-a", "apply", "-f", "-"],
        Some(&on_host("shop", "/")),
    );
    assert!(err.contains("belongs to namespace team-b"), "{err}");
}

#[test]
fn quotas_refuse_what_is_over_them_and_describe_shows_usage() {
    let node = Node::start(&[]);
    let hello = repo_path(HELLO);
    let ns = |quota: &str| {
        format!(
            "apiVersion: shoal/v1alpha1\nkind: Namespace\nmetadata: {{name: team-a}}\nspec:\n  quota: {quota}\n"
        )
    };
    let out = node.apply(&ns("{apps: 1, jobs: 0, memory: 200Mi}"));
    assert_eq!(out, "namespace/team-a created\n");
    apply_in(&node, "team-a", &app_yaml("one", &hello, "/one", ""));
    let err = node.fails(
        &["-n", "team-a", "apply", "-f", "-"],
        Some(&app_yaml("two", &hello, "/two", "")),
    );
    assert_eq!(
        err,
        "error: namespace/team-a: quota apps: this apply needs 2 apps of 1; delete what it no longer needs, or ask an admin to raise spec.quota.apps\n"
    );
    // Applying an app again counts it once.
    apply_in(
        &node,
        "team-a",
        &app_yaml("one", &hello, "/one", "  limits: {memory: 64Mi}\n"),
    );
    let err = node.fails(
        &["-n", "team-a", "apply", "-f", "-"],
        Some(&job_yaml("j", JOB, &[], "")),
    );
    assert!(
        err.contains("quota jobs: this apply needs 1 jobs of 0"),
        "{err}"
    );
    assert_eq!(
        node.apply(&ns("{apps: 3, memory: 200Mi}")),
        "namespace/team-a configured\n"
    );
    let err = node.fails(
        &["-n", "team-a", "apply", "-f", "-"],
        Some(&app_yaml(
            "two",
            &hello,
            "/two",
            "  limits: {memory: 150Mi}\n",
        )),
    );
    assert!(
        err.contains("quota memory: this apply needs 214 MiB of 200Mi"),
        "{err}"
    );
    apply_in(
        &node,
        "team-a",
        &app_yaml("two", &hello, "/two", "  limits: {memory: 100Mi}\n"),
    );

    let size = std::fs::metadata(&hello).unwrap().len();
    let described = node.ok(&["describe", "namespace", "team-a"]);
    let uploads = format!("{}Mi", size.div_ceil(1 << 20));
    for row in [
        vec!["apps", "2", "3"],
        vec!["jobs", "0", "unlimited"],
        vec!["memory", "164Mi", "200Mi"],
        vec!["uploads", uploads.as_str(), "unlimited"],
    ] {
        assert!(
            described
                .lines()
                .any(|l| l.split_whitespace().eq(row.iter().copied())),
            "no row {row:?} in:\n{described}"
        );
    }
    // Bytes of components: a quota under the one component's size refuses a new app.
    node.apply(&ns(&format!("{{uploads: {}}}", size - 1)));
    let err = node.fails(
        &["-n", "team-a", "apply", "-f", "-"],
        Some(&app_yaml("three", &hello, "/three", "")),
    );
    assert!(err.contains("quota uploads"), "{err}");
    let listed = node.ok(&["get", "namespaces"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("team-a ") && l.contains(&format!("uploads={}", size - 1))),
        "{listed}"
    );
}

/// Applies an app into `ns` and waits until it is Ready.
fn deploy_in(node: &Node, ns: &str, name: &str, component: &str, path: &str, extra: &str) {
    apply_in(
        node,
        ns,
        &app_yaml(name, &repo_path(component), path, extra),
    );
    node.ok(&["-n", ns, "wait", "app", name, "--timeout", "120s"]);
}

#[test]
fn a_namespaces_instances_and_key_value_data_are_bounded_on_each_node() {
    const BAD: &str = "tests/fixtures/misbehave.wasm";
    const CAPS: &str = "tests/fixtures/caps.wasm";
    let node = Node::start(&[]);
    let ns = |quota: &str| {
        format!(
            "apiVersion: shoal/v1alpha1\nkind: Namespace\nmetadata: {{name: team-a}}\nspec:\n  quota: {quota}\n"
        )
    };
    node.apply(&ns("{instances: 1, keyValue: 200}"));
    deploy_in(&node, "team-a", "slow", BAD, "/slow", "");
    deploy_in(&node, "team-a", "other", BAD, "/other", "");
    node.deploy("free", BAD, "/free", "");

    // One instance of team-a at a time: while /slow runs, team-a's other app is shed.
    let in_flight = node.hold_only_slot("/slow/sleep?ms=1500", "/other/quick");
    let (status, body) = node.get("/other/quick");
    assert_eq!(status, 503);
    assert!(
        body.contains("app/other (namespace team-a): namespace team-a's quota of instances (spec.quota.instances) is reached (1 at once on this node)"),
        "{body}"
    );
    // Another namespace's app is not.
    assert_eq!(node.get("/free/quick").0, 200);
    assert_eq!(in_flight.join().unwrap(), (200, "slept 1500 ms\n".into()));
    // A client that has its answer may ask again at once: the instance's slot is back by then.
    for _ in 0..100 {
        assert_eq!(node.get("/other/quick").0, 200);
    }

    // Key-value bytes: team-a's apps together.
    let kv = "  capabilities:\n    keyvalue: [default]\n";
    deploy_in(&node, "team-a", "a", CAPS, "/a", kv);
    deploy_in(&node, "team-a", "b", CAPS, "/b", kv);
    let value = "v".repeat(60);
    let set = |app: &str, key: &str| {
        node.get(&format!(
            "/{app}/kv/set?bucket=default&key={key}&value={value}"
        ))
    };
    assert_eq!(set("a", "one"), (200, "set one\n".into()));
    assert_eq!(set("b", "one"), (200, "set one\n".into()));
    let (status, body) = set("b", "two");
    assert_ne!(status, 200);
    assert!(
        body.contains("namespace team-a's key-value data on this node would be")
            && body.contains("over its quota of 200 (spec.quota.keyValue)"),
        "{body}"
    );
    // A raised quota holds for the running apps, once the node has seen it.
    node.apply(&ns("{instances: 1, keyValue: 1000}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while set("b", "two").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the raised quota never held"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
