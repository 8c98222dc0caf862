//! A cluster of real processes: etcd, `shoal server`s on it, and `shoal node`s that reach the
//! cluster only through the servers.

use crate::support::{Node, app_yaml, job_yaml, repo_path};
use shoal_testkit::Etcd;

/// `shoal server` on `etcd`, in its own data dir.
pub(crate) fn server(etcd: &Etcd, dir: &tempfile::TempDir) -> Node {
    Node::spawn(
        &["server", "--store", &etcd.url(), "--api", "127.0.0.1:0"],
        dir.path(),
        &[],
        &["API:"],
    )
}

/// `shoal node NAME` through `servers`, joining with `token` (the join token or its
/// credential) if `dir` holds no credential yet.
pub(crate) fn node(servers: &[&Node], name: &str, token: &str, dir: &tempfile::TempDir) -> Node {
    node_with(servers, name, token, dir, &[])
}

/// [`node`] with `extra` flags (`--labels k=v`).
pub(crate) fn node_with(
    servers: &[&Node],
    name: &str,
    token: &str,
    dir: &tempfile::TempDir,
    extra: &[&str],
) -> Node {
    let list: Vec<&str> = servers.iter().map(|s| s.api.as_str()).collect();
    let list = list.join(",");
    // Nodes verify the servers by the cluster's CA, which each server writes to its data dir.
    let ca = servers[0].data_dir.join("tls").join("ca.crt");
    let ca = ca.to_str().unwrap();
    let mut env = vec![("SHOAL_SERVER", list.as_str()), ("SHOAL_CA", ca)];
    if !token.is_empty() {
        env.push(("SHOAL_JOIN_TOKEN", token));
    }
    let mut args = vec![
        "node",
        "--name",
        name,
        "--http",
        "127.0.0.1:0",
        "--max-instances",
        "64",
    ];
    args.extend_from_slice(extra);
    Node::spawn(&args, dir.path(), &env, &["ingress:"])
}

pub(crate) fn join_token(server: &Node) -> String {
    std::fs::read_to_string(server.data_dir.join("join-token"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn servers_share_state_on_etcd_and_a_node_serves_apps_and_runs_jobs_through_them() {
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = server(&etcd, &dirs[0]);
    let two = server(&etcd, &dirs[1]);
    // Both servers admit nodes with the cluster's one join token.
    assert_eq!(join_token(&one), join_token(&two));
    let worker = node(&[&one, &two], "n1", &join_token(&one), &dirs[2]);

    one.apply(&app_yaml(
        "hello",
        &repo_path("examples/hello-c/hello.wasm"),
        "/hello",
        "",
    ));
    two.wait_ready("hello");
    assert_eq!(
        worker.get("/hello"),
        (200, "Hello from C! You asked for /hello\n".into())
    );
    two.apply(&job_yaml(
        "once",
        "tests/fixtures/job-module.wasm",
        &["hello"],
        "",
    ));
    one.ok(&[
        "wait",
        "job",
        "once",
        "--for",
        "complete",
        "--timeout",
        "120s",
    ]);
    assert!(two.ok(&["get", "jobs"]).contains("Succeeded"));

    // One server goes away: the node carries on through the other, and sees new specs; a new
    // node finds every blob on the server that is left.
    one.kill();
    two.apply(&app_yaml(
        "hello",
        &repo_path("tests/fixtures/hello-v2.wasm"),
        "/hello",
        "",
    ));
    two.ok(&["rollout", "status", "app", "hello"]);
    assert_eq!(
        worker.get("/hello").1,
        "Hello again from C! You asked for /hello\n"
    );
    let extra = tempfile::tempdir().unwrap();
    let second = node(&[&two], "n2", &join_token(&two), &extra);
    two.apply(&app_yaml(
        "everywhere",
        &repo_path("examples/hello-c/hello.wasm"),
        "/everywhere",
        "  placement: {replicas: all}\n",
    ));
    loop {
        let placed = serde_json::from_str::<shoal_api::App>(&two.ok(&[
            "get",
            "app",
            "everywhere",
            "-o",
            "json",
        ]))
        .unwrap()
        .status
        .placement
        .map(|p| p.nodes.len());
        if placed == Some(2) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(worker);
    loop {
        if second.get("/everywhere").0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn with_etcd_down_apps_keep_serving_writes_fail_clearly_and_all_resumes_when_it_returns() {
    let mut etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let srv = server(&etcd, &dirs[0]);
    let worker = node(&[&srv], "n1", &join_token(&srv), &dirs[1]);
    srv.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");

    etcd.kill();
    assert_eq!(worker.get("/hello").0, 200, "serving does not need etcd");
    let v2 = app_yaml(
        "hello",
        &repo_path("tests/fixtures/hello-v2.wasm"),
        "/hello",
        "",
    );
    let err = srv.fails(&["apply", "-f", "-"], Some(&v2));
    assert!(err.contains("store unavailable"), "{err}");
    assert_eq!(worker.get("/hello").0, 200);

    etcd.restart();
    srv.apply(&v2);
    srv.ok(&["rollout", "status", "app", "hello", "--timeout", "120s"]);
    assert_eq!(
        worker.get("/hello").1,
        "Hello again from C! You asked for /hello\n"
    );
}

pub(crate) fn nodes(server: &Node) -> Vec<shoal_api::Node> {
    serde_json::from_str(&server.ok(&["get", "nodes", "-o", "json"])).unwrap()
}

pub(crate) fn wait_phase(server: &Node, name: &str, phase: shoal_api::NodePhase) {
    while !nodes(server)
        .iter()
        .any(|n| n.metadata.name == name && n.status.phase == phase)
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_dead_node_turns_not_ready_and_a_new_leader_judges_when_the_leader_dies() {
    use shoal_api::NodePhase::{NotReady, Ready};
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = [server(&etcd, &dirs[0]), server(&etcd, &dirs[1])];
    let token = join_token(&servers[0]);
    let n1 = node(&[&servers[0], &servers[1]], "n1", &token, &dirs[2]);
    let n2 = node(&[&servers[1], &servers[0]], "n2", &token, &dirs[3]);
    wait_phase(&servers[0], "n1", Ready);
    wait_phase(&servers[0], "n2", Ready);
    let table = servers[1].ok(&["get", "nodes"]);
    assert!(table.starts_with("NAME   STATUS"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains(" Ready ")).count(),
        2,
        "{table}"
    );

    n2.kill();
    wait_phase(&servers[1], "n2", NotReady);
    let events = servers[0].ok(&["get", "events"]);
    let judged = events
        .lines()
        .find(|l| l.contains("NodeNotReady"))
        .unwrap_or_else(|| panic!("{events}"));
    assert!(judged.contains("its lease expired"), "{judged}");

    // The leader is the server whose address the event names; without it, the other leads.
    let describe: Vec<shoal_api::Event> =
        serde_json::from_str(&servers[0].ok(&["get", "events", "-o", "json"])).unwrap();
    let source = describe
        .iter()
        .find(|e| e.reason == "NodeNotReady")
        .map(|e| e.source.clone())
        .unwrap();
    let leader = servers
        .iter()
        .position(|s| source.ends_with(s.api.trim_start_matches("https://")))
        .unwrap_or_else(|| panic!("{source} is none of the servers"));
    let [a, b] = servers;
    let (dead, alive) = if leader == 0 { (a, b) } else { (b, a) };
    // What the leader acknowledged just before dying is the cluster's.
    dead.apply(&app_yaml(
        "kept",
        &repo_path("examples/hello-c/hello.wasm"),
        "/kept",
        "",
    ));
    dead.kill();
    assert!(alive.ok(&["get", "apps"]).contains("kept"));
    drop(n1);
    wait_phase(&alive, "n1", NotReady);
    // A node that lost its data dir joins again under its name once an operator removed it.
    assert_eq!(alive.ok(&["delete", "node", "n2"]), "node/n2 deleted\n");
    let _n2 = node(&[&alive], "n2", &token, &dirs[4]);
    wait_phase(&alive, "n2", Ready);
}

fn app(server: &Node, name: &str) -> shoal_api::App {
    serde_json::from_str(&server.ok(&["get", "app", name, "-o", "json"])).unwrap()
}

#[test]
fn every_ingress_serves_every_app_and_a_dead_nodes_apps_move_to_the_living() {
    use shoal_api::NodePhase::Ready;
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let srv = server(&etcd, &dirs[0]);
    let token = join_token(&srv);
    let mut workers: Vec<(&str, Option<Node>)> = vec![
        ("n1", Some(node(&[&srv], "n1", &token, &dirs[1]))),
        ("n2", Some(node(&[&srv], "n2", &token, &dirs[2]))),
    ];
    wait_phase(&srv, "n1", Ready);
    wait_phase(&srv, "n2", Ready);

    srv.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    let placed = app(&srv, "hello").status.placement.unwrap().nodes;
    assert_eq!(placed.len(), 1, "one replica by default: {placed:?}");
    // Both ingresses answer: the holder itself, the other by forwarding.
    for (_, w) in &workers {
        assert_eq!(
            w.as_ref().unwrap().get("/hello/x"),
            (200, "Hello from C! You asked for /hello/x\n".into())
        );
    }

    // Apps that cannot be placed as asked say so.
    let hello = repo_path("examples/hello-c/hello.wasm");
    srv.apply(&app_yaml(
        "many",
        &hello,
        "/many",
        "  placement: {replicas: 5}\n",
    ));
    srv.apply(&app_yaml(
        "gpu",
        &hello,
        "/gpu",
        "  placement: {nodeSelector: {gpu: \"yes\"}}\n",
    ));
    let message = |name: &str| loop {
        if let Some(m) = app(&srv, name).status.placement.and_then(|p| p.message) {
            return m;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(message("many"), "placed on 2 of 5 nodes: no more fit");
    // What the app does is summed over the nodes that hold it (each server asks each node).
    for (_, w) in &workers {
        let w = w.as_ref().unwrap();
        let mut ok = 0;
        while ok < 3 {
            ok += u32::from(w.get("/many").0 == 200);
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stats = crate::top::top_json(&srv);
        let many = crate::top::figures(&stats, "many");
        if many["requests"][1] == 6 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{many}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let gpu = message("gpu");
    assert!(
        gpu.starts_with("Unschedulable: no Ready node has the labels gpu=yes"),
        "{gpu}"
    );
    let described = srv.ok(&["describe", "app", "gpu"]);
    assert!(
        described.contains("Placement:    none (Unschedulable"),
        "{described}"
    );

    // The holder dies: the app moves, and the survivor serves it again.
    let holder = workers.iter().position(|(n, _)| placed[0] == *n).unwrap();
    workers[holder].1.take().unwrap().kill();
    let (survivor, alive) = &workers[1 - holder];
    let alive = alive.as_ref().unwrap();
    loop {
        let (status, body) = alive.get("/hello/again");
        if status == 200 {
            assert_eq!(body, "Hello from C! You asked for /hello/again\n");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        app(&srv, "hello").status.placement.unwrap().nodes,
        [survivor.to_string()]
    );
}

#[test]
fn a_node_cut_off_and_back_stops_serving_an_app_that_moved_away() {
    use shoal_api::NodePhase::{NotReady, Ready};
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let srv = server(&etcd, &dirs[0]);
    let token = join_token(&srv);
    let workers = [
        node(&[&srv], "n1", &token, &dirs[1]),
        node(&[&srv], "n2", &token, &dirs[2]),
    ];
    wait_phase(&srv, "n1", Ready);
    wait_phase(&srv, "n2", Ready);
    srv.deploy("single", "examples/hello-c/hello.wasm", "/single", "");
    let holder = app(&srv, "single").status.placement.unwrap().nodes[0].clone();
    let (cut, other) = if holder == "n1" { (0, 1) } else { (1, 0) };

    // Cut the holder off (frozen: no heartbeats, no watch), until the app moves away.
    workers[cut].signal("STOP");
    wait_phase(&srv, &holder, NotReady);
    let moved_to = loop {
        let nodes = app(&srv, "single").status.placement.unwrap().nodes;
        if !nodes.contains(&holder) && !nodes.is_empty() {
            break nodes[0].clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_ne!(moved_to, holder);
    loop {
        if workers[other].get("/single").0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Back: it catches up with the placement and no longer serves the app itself (it
    // forwards to the new holder), so the one replica runs on one node again.
    workers[cut].signal("CONT");
    wait_phase(&srv, &holder, Ready);
    loop {
        let back = nodes(&srv)
            .into_iter()
            .find(|n| n.metadata.name == holder)
            .unwrap();
        if back.status.apps == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(workers[cut].get("/single").0, 200, "served by forwarding");
}

#[test]
fn a_two_replica_app_loses_no_request_when_a_holder_dies() {
    use shoal_api::NodePhase::{NotReady, Ready};
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let srv = server(&etcd, &dirs[0]);
    let token = join_token(&srv);
    let mut holders = vec![
        Some(node(&[&srv], "h1", &token, &dirs[1])),
        Some(node(&[&srv], "h2", &token, &dirs[2])),
    ];
    for name in ["h1", "h2"] {
        wait_phase(&srv, name, Ready);
    }
    srv.deploy(
        "pair",
        "examples/hello-c/hello.wasm",
        "/pair",
        "  placement: {replicas: 2}\n",
    );
    // The front node joins after placement: it holds nothing and forwards everything.
    let front = node(&[&srv], "front", &token, &dirs[3]);
    wait_phase(&srv, "front", Ready);
    while front.get("/pair").0 != 200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    holders[0].take().unwrap().kill();
    // Every request through the front node is answered, before and after the leader notices.
    let client = crate::support::http_client();
    let mut answered = 0;
    while !nodes(&srv)
        .iter()
        .any(|n| n.metadata.name == "h1" && n.status.phase == NotReady)
    {
        for _ in 0..20 {
            let resp = client.get(format!("{}/pair", front.http)).send().unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap());
            answered += 1;
        }
    }
    assert!(answered > 0);
    drop(holders);
}

#[test]
fn a_cluster_pulls_a_registry_component_once_for_all_its_nodes() {
    let registry = shoal_testkit::Registry::start();
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = server(&etcd, &dirs[0]);
    let two = server(&etcd, &dirs[1]);
    let token = join_token(&one);
    let workers: Vec<Node> = (0..3)
        .map(|i| node(&[&one, &two], &format!("n{i}"), &token, &dirs[2 + i]))
        .collect();
    for i in 0..3 {
        wait_phase(&one, &format!("n{i}"), shoal_api::NodePhase::Ready);
    }
    let tag = format!("oci://{}/demo/hello:1", registry.addr);
    one.ok(&["push", &repo_path("examples/hello-c/hello.wasm"), &tag]);
    let pushed = registry.requests().len();

    one.apply(&app_yaml(
        "pulled",
        &tag,
        "/pulled",
        "  placement: {replicas: 3}\n",
    ));
    one.wait_ready("pulled");
    let placed = app(&one, "pulled").status.placement.unwrap().nodes;
    assert_eq!(placed.len(), 3, "{placed:?}");
    for w in &workers {
        assert_eq!(w.get("/pulled").1, "Hello from C! You asked for /pulled\n");
    }
    // One manifest and one blob from the registry, for two servers and three nodes.
    assert_eq!(pulls_since(&registry, pushed), (1, 1));

    // Another app of the same tag, through the other server: the tag is resolved again (one
    // manifest), the component is held already (no blob).
    two.apply(&app_yaml("again", &tag, "/again", ""));
    two.wait_ready("again");
    assert_eq!(pulls_since(&registry, pushed), (2, 1));
}

/// The manifest and blob GETs `registry` served after its first `skip` requests.
fn pulls_since(registry: &shoal_testkit::Registry, skip: usize) -> (usize, usize) {
    let pulls = registry.requests().split_off(skip);
    let gets = |kind: &str| {
        pulls
            .iter()
            .filter(|r| r.starts_with("GET") && r.contains(kind))
            .count()
    };
    (gets("/manifests/"), gets("/blobs/"))
}
