//! Pre-initialised snapshots (`spec.init`): the init function runs once when a revision is
//! deployed, in a sandbox that grants nothing, and every request starts from the memory it
//! left; an init that fails fails its revision with its message.

use crate::support::{Node, app_yaml, repo_path};

const TABLE: &str = "examples/init-c/table.wasm";
const INIT: &str = "  init: {function: wizer-initialize}\n";

#[test]
fn every_request_starts_from_the_memory_the_init_left_and_the_snapshot_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start_in(tmp.path(), &[]);
    // The example: the table app with spec.init.
    node.ok(&["apply", "-f", &repo_path("examples/init-c/app.yaml")]);
    node.wait_ready("primes");
    // The same component without spec.init builds its index on every request (a fresh
    // instance each): the answer says who built it.
    node.deploy("lazy", TABLE, "/lazy", "");
    for _ in 0..3 {
        let (status, body) = node.get("/primes/9999991");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            "9999991 is prime; 664579 primes up to it; index built at deploy time (spec.init)\n"
        );
    }
    let (_, body) = node.get("/lazy/97");
    assert_eq!(
        body,
        "97 is prime; 25 primes up to it; index built for this request (no spec.init)\n"
    );
    let described = node.ok(&["describe", "app", "primes"]);
    assert!(
        described.contains("pre-initialised by wizer-initialize in"),
        "{described}"
    );
    assert!(
        described.contains("Init:         wizer-initialize at deploy time (at most 60s)"),
        "{described}"
    );
    assert!(
        node.ok(&["get", "app", "primes", "-o", "yaml"])
            .contains("function: wizer-initialize")
    );

    // A restarted node finds the snapshot (and its compiled code) in its cache.
    node.stop();
    let node = Node::start_in(tmp.path(), &[]);
    node.wait_ready("primes");
    let described = node.ok(&["describe", "app", "primes"]);
    assert!(
        described.contains("pre-initialised by wizer-initialize (snapshot from cache)"),
        "{described}"
    );
    let (_, body) = node.get("/primes/10");
    assert!(
        body.contains("4 primes up to it; index built at deploy time"),
        "{body}"
    );
}

#[test]
fn what_a_request_writes_over_the_snapshot_is_gone_for_the_next_one() {
    let node = Node::start_warm(&[]);
    // A snapshot's pool slot restores only the pages its last instance wrote: this table's
    // requests write a word every other page of the index (more runs of pages than one scan
    // of written pages reports) and who built it, after answering.
    node.deploy("writes", "tests/fixtures/init-writes.wasm", "/writes", INIT);
    // 3 and 65537 are in words 0 and 1024, which every request overwrites.
    for n in ["3", "65537", "3", "9999991", "65537"] {
        let (status, body) = node.get(&format!("/writes/{n}"));
        assert_eq!(status, 200, "{body}");
        let expected = match n {
            "3" => "3 is prime; 2 primes up to it",
            "65537" => "65537 is prime; 6543 primes up to it",
            _ => "9999991 is prime; 664579 primes up to it",
        };
        assert_eq!(
            body,
            format!("{expected}; index built at deploy time (spec.init)\n")
        );
    }
}

#[test]
fn an_init_that_fails_fails_its_revision_with_why_and_the_last_good_one_serves_on() {
    let node = Node::start_warm(&[]);
    node.deploy("primes", TABLE, "/primes", INIT);
    let spins = "  init: {function: wizer-initialize, timeout: 1s}\n";
    for (fixture, init, said) in [
        (
            "tests/fixtures/init-traps.wasm",
            INIT,
            "was not pre-initialised (spec.init): `wizer-initialize` trapped: wasm trap: wasm `unreachable` instruction executed",
        ),
        (
            "tests/fixtures/init-prints.wasm",
            INIT,
            "`wizer-initialize` called the import wasi:cli/stdin@0.2.12#get-stdin, and an init may call none",
        ),
        (
            "tests/fixtures/init-spins.wasm",
            spins,
            "`wizer-initialize` ran longer than 1s (spec.init.timeout)",
        ),
        (
            TABLE,
            "  init: {function: setup}\n",
            "the component exports no function `setup`",
        ),
    ] {
        node.apply(&app_yaml("primes", &repo_path(fixture), "/primes", init));
        let err = node.fails(&["wait", "app", "primes", "--timeout", "120s"], None);
        assert!(err.contains(said), "{fixture}: {err}");
        let described = node.ok(&["describe", "app", "primes"]);
        assert!(described.contains(said), "{described}");
        // The generation that initialised serves on.
        let (status, body) = node.get("/primes/7");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("built at deploy time"), "{body}");
    }
    // A name that cannot be an export is refused at apply, naming the field.
    let err = node.fails(
        &["apply", "-f", "-"],
        Some(&app_yaml(
            "bad",
            &repo_path(TABLE),
            "/bad",
            "  init: {function: 'my init'}\n",
        )),
    );
    assert!(err.contains("spec.init.function"), "{err}");
}
