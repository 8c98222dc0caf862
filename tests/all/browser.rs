//! A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol: the
//! dashboard's tests load pages in it, read what they show and take screenshots.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// One Chromium with one page, in its own profile.
pub struct Browser {
    child: Child,
    page: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium headless on a free DevTools port and attaches to its page. The API's
    /// certificate comes from a CA the browser does not know, so certificate errors are
    /// ignored (this browser loads nothing but the node under test).
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                // Tests run as root in CI, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--ignore-certificate-errors",
                "--window-size=1400,1100",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("chromium: {e} (scripts/test installs Debian's chromium)"));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let browser_url = loop {
            let line = lines
                .next()
                .expect("chromium ended before it listened for DevTools")
                .unwrap();
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                break url.to_string();
            }
        };
        // Keep reading its stderr, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let port = browser_url
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let targets: Vec<Value> = crate::support::http_client()
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let page_url = targets
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page among {targets:?}"))
            .to_string();
        let (page, _) = tungstenite::connect(page_url.as_str()).unwrap();
        if let MaybeTlsStream::Plain(tcp) = page.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        Browser {
            child,
            page,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Calls DevTools method `method` on the page; its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// [`Browser::call`], its DevTools error returned.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params});
        self.page.send(Message::text(command.to_string())).unwrap();
        loop {
            let message = self.page.read().unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] != id {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(error.clone());
            }
            return Ok(answer["result"].clone());
        }
    }

    /// Loads `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url}));
        assert!(result.get("errorText").is_none(), "{url}: {result}");
    }

    /// The value of JavaScript `expression` in the page (a promise is awaited); `null` when
    /// it throws, as while a page is still loading, or when the page navigated under it.
    pub fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let result = match self.try_call("Runtime.evaluate", params) {
            Ok(result) => result,
            Err(error) if error["message"] == "Inspected target navigated or closed" => {
                return Value::Null;
            }
            Err(error) => panic!("Runtime.evaluate: {error}"),
        };
        match result.get("exceptionDetails") {
            Some(_) => Value::Null,
            None => result["result"]["value"].clone(),
        }
    }

    /// Evaluates `expression` until it is truthy (for up to a minute); its last value.
    pub fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.eval(expression);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what}: {expression} is {value}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG of the page as it looks now, written to `path`.
    pub fn screenshot(&mut self, path: &std::path::Path) -> Vec<u8> {
        use base64::Engine;
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
