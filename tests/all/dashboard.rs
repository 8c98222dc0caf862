//! The web dashboard (`/ui`) in a real headless Chromium: its login, what it shows against
//! what the API says, a chart that moves under load, an app's log followed live — and the
//! login cookie's limits, over plain HTTP.

use crate::browser::Browser;
use crate::support::{Node, job_yaml, repo_path};
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const MISBEHAVE: &str = "tests/fixtures/misbehave.wasm";
const JOB: &str = "tests/fixtures/job-component.wasm";

fn client_token(node: &Node) -> String {
    std::fs::read_to_string(node.data_dir.join("token"))
        .unwrap()
        .trim()
        .to_string()
}

/// `GET path` on the API with the client token: its JSON.
fn api(node: &Node, path: &str) -> Value {
    node.api_client()
        .get(format!("{}{path}", node.api))
        .bearer_auth(client_token(node))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap()
}

/// Types `token` into the login form and sends it.
fn log_in(browser: &mut Browser, token: &str) {
    browser.wait_for("the login form", "!!document.getElementById('token')");
    let token = serde_json::to_string(token).unwrap();
    browser.eval(&format!(
        "document.getElementById('token').value = {token}; document.getElementById('login').requestSubmit(); true"
    ));
}

#[test]
fn the_dashboard_shows_what_the_api_says_and_its_charts_move_under_load() {
    let node = Node::start_warm(&[]);
    node.deploy("web", MISBEHAVE, "/web", "");
    node.apply(&job_yaml("once", JOB, &["hello"], ""));
    let mut browser = Browser::start();
    browser.navigate(&format!("{}/ui", node.api));

    // A wrong token is refused on the form, saying why.
    log_in(&mut browser, "0123456789abcdef");
    let problem = browser.wait_for(
        "why the login failed",
        "document.getElementById('problem')?.textContent",
    );
    assert!(problem.as_str().unwrap().contains("not valid"), "{problem}");

    log_in(&mut browser, &client_token(&node));
    browser.wait_for("a snapshot", "+document.body.dataset.snapshots >= 1");
    // The token is kept where the page's script cannot read it.
    assert_eq!(browser.eval("document.cookie"), "");

    // Apps, as the API has them: name, status, serving revision.
    let shown_apps = "[...document.querySelectorAll('#apps tbody tr')].map(r => [r.dataset.app, r.querySelector('.phase').textContent, r.querySelector('.revision').textContent])";
    let ready = browser.wait_for(
        "app web Ready",
        &format!("(r => r.some(a => a[0] == 'web' && a[1] == 'Ready') && r)({shown_apps})"),
    );
    let apps = api(&node, "/v1/namespaces/default/apps");
    let expected: Vec<Value> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            serde_json::json!([
                a["metadata"]["name"],
                a["status"]["phase"],
                a["status"]["servingGeneration"].to_string()
            ])
        })
        .collect();
    assert_eq!(ready.as_array().unwrap(), &expected);

    // Nodes, as the API lists them.
    let nodes = api(&node, "/v1/nodes");
    let names: Vec<&Value> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["metadata"]["name"])
        .collect();
    assert!(!names.is_empty());
    let shown_nodes =
        browser.eval("[...document.querySelectorAll('#nodes tbody tr')].map(r => r.dataset.node)");
    assert_eq!(
        shown_nodes.as_array().unwrap().iter().collect::<Vec<_>>(),
        names
    );

    // The job's run, once the API says it succeeded.
    node.ok(&[
        "wait",
        "job",
        "once",
        "--for",
        "complete",
        "--timeout",
        "120s",
    ]);
    browser.wait_for(
        "job once's run #1 Succeeded",
        "document.querySelector('#jobs tr[data-job=once] [data-run=\"1\"]')?.classList.contains('Succeeded')",
    );

    // Every event shown is one the API has.
    let shown_events = browser.wait_for(
        "events",
        "(e => e.length && e)([...document.querySelectorAll('#events tbody tr')].map(r => r.dataset.event))",
    );
    let events = api(&node, "/v1/namespaces/default/events");
    let known: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["metadata"]["name"])
        .collect();
    for e in shown_events.as_array().unwrap() {
        assert!(
            known.contains(&e),
            "event {e} shown, not in the API's {known:?}"
        );
    }

    // Selecting the app shows its revisions and follows its log as it is written.
    browser.eval("document.querySelector('#apps tr[data-app=web]').click(); true");
    browser.wait_for(
        "web's revisions",
        "document.querySelector('#revisions tr[data-revision=\"1\"]')?.textContent.includes('serving')",
    );
    browser.wait_for("the log followed", "!!document.getElementById('log')");
    assert_eq!(node.get("/web/say/hello-dashboard").0, 200);
    browser.wait_for(
        "the app's new log line",
        "document.getElementById('log').textContent.includes('said: /web/say/hello-dashboard')",
    );

    // Under load the rate chart moves, and the figures match the API's.
    let rate_now = "+document.querySelector('#chart-rate').dataset.last";
    assert_eq!(browser.eval(rate_now), 0.0);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, url) = (stop.clone(), format!("{}/web/work", node.http));
        std::thread::spawn(move || {
            let http = crate::support::http_client();
            while !stop.load(Ordering::Relaxed) {
                let answer = http.get(&url).send().unwrap();
                assert_eq!(answer.status(), 200);
                answer.text().unwrap();
            }
        })
    };
    browser.wait_for(
        "the rate chart rise",
        &format!("{rate_now} > 0 && +document.querySelector('#apps tr[data-app=web] .rate').dataset.value > 0"),
    );
    let stats = api(&node, "/v1/namespaces/default/stats");
    let web = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap();
    assert!(web["requests"][1].as_u64().unwrap() > 0, "{web}");
    let points = browser.eval("+document.querySelector('#chart-rate').dataset.points");
    assert!(points.as_f64().unwrap() >= 2.0, "{points}");
    let png = browser.screenshot(&std::path::PathBuf::from(repo_path(
        "target/test-artifacts/dashboard.png",
    )));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    // Logging out forgets the login.
    browser.eval("document.getElementById('logout').click(); true");
    browser.wait_for("the login form again", "!!document.getElementById('token')");
}

#[test]
fn the_login_cookie_authenticates_reads_only_and_only_in_its_namespace() {
    let node = Node::start_warm(&[]);
    node.ok(&["create", "namespace", "team"]);
    let view = node
        .ok(&["-n", "team", "create", "token", "--role", "view"])
        .trim()
        .to_string();
    let http = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(node.trust().config())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |token: &str, origin: Option<&str>| {
        let mut req = http
            .post(format!("{}/ui/login", node.api))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send().unwrap()
    };

    let wrong = login("0123456789abcdef", None);
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().unwrap().contains("not valid for this server"));
    let elsewhere = login(&view, Some("https://evil.example"));
    assert_eq!(elsewhere.status(), 403);
    assert!(elsewhere.headers().get("set-cookie").is_none());

    let ok = login(&view, Some(&node.api));
    assert_eq!(ok.status(), 303);
    let set = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let get = |path: &str| {
        http.get(format!("{}{path}", node.api))
            .header("cookie", &cookie)
            .send()
            .unwrap()
    };

    let page = get("/ui");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.text().unwrap().contains("/ui/dashboard.js"));
    assert_eq!(get("/v1/namespaces/team/apps").status(), 200);
    assert_eq!(get("/v1/namespaces/default/apps").status(), 403);
    assert_eq!(get("/v1/namespaces/default/dashboard").status(), 403);

    // The stream: a snapshot of the namespace, without the nodes a view token may not list.
    let mut stream = get("/v1/namespaces/team/dashboard");
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("\n\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data in {text}"));
    assert!(text.starts_with("event: snapshot"), "{text}");
    let snapshot: Value = serde_json::from_str(data).unwrap();
    assert_eq!(snapshot["namespace"], "team");
    assert_eq!(snapshot["nodes"], Value::Null);

    // A write with only the cookie is refused: it takes the token in Authorization.
    let write = http
        .put(format!("{}/v1/namespaces/team/apps/x", node.api))
        .header("cookie", &cookie)
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(write.status(), 401);

    // Without the cookie the page is the login form.
    let anonymous = http.get(format!("{}/ui", node.api)).send().unwrap();
    assert!(anonymous.text().unwrap().contains("name=\"token\""));
}
