//! The cluster store: [`Store`] on etcd v3, spoken through etcd's HTTP/JSON gateway (`/v3/…`).
//!
//! Keys and values are etcd's own; revisions are etcd's global revision, so a
//! `resourceVersion` is an etcd `mod_revision` and compare-and-swap is an etcd transaction on it.
//! A watch follows one streamed `/v3/watch` response; when etcd has compacted the history it
//! asked for, the watch ends with [`StoreError::Compacted`] and the caller re-lists.

use crate::http::root_cause;
use crate::{KeyValue, Precondition, Store, StoreError, Watch, WatchEvent};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use shoal_metrics::{Counter, Exposition, Histogram, Kind};
use std::sync::Arc;
use std::time::Duration;

/// How long one request to etcd may take before the store counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] on one or more etcd endpoints (tried in turn).
///
/// # Guarantees
/// A write is acknowledged only after etcd committed it (a quorum has it). Reads are
/// linearizable (etcd's default). Watches deliver every change after the revision asked for,
/// in order, or [`StoreError::Compacted`].
#[derive(Clone)]
pub struct Etcd {
    /// Every write also requires this key to still have this modification revision (see
    /// [`Etcd::fenced`]).
    fence: Option<(String, u64)>,
    endpoints: Vec<String>,
    http: reqwest::Client,
    /// For watches: no overall timeout, they stream for as long as they live.
    streaming: reqwest::Client,
    /// Requests, their latency and failures, and watches opened (shared by every copy).
    stats: Arc<EtcdStats>,
}

/// What a server measures of its etcd.
#[derive(Debug, Default)]
struct EtcdStats {
    /// Requests (each endpoint tried counts), and how long each took to answer.
    requests: Histogram,
    /// Requests an endpoint failed (unreachable, or an error answer).
    errors: Counter,
    /// Watch streams opened: one per watch, and one more each time a broken one is resumed.
    watches: Counter,
}

impl Etcd {
    /// A store on `spec`: `etcd://HOST:PORT[,HOST:PORT…]`.
    ///
    /// # Errors
    /// `spec` is not an etcd URL.
    pub fn new(spec: &str) -> Result<Self, StoreError> {
        let hosts = spec.strip_prefix("etcd://").ok_or_else(|| {
            StoreError::Unavailable(format!(
                "'{spec}' is not an etcd store; use etcd://HOST:PORT[,HOST:PORT…]"
            ))
        })?;
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("http://{}", h.trim_end_matches('/')))
            .collect();
        if endpoints.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "'{spec}' names no etcd endpoint; use etcd://HOST:PORT"
            )));
        }
        let tls = shoal_tls::ClientTls::system();
        Ok(Self {
            fence: None,
            endpoints,
            http: crate::http::client(Some(REQUEST_TIMEOUT), &tls)?,
            streaming: crate::http::client(None, &tls)?,
            stats: Arc::default(),
        })
    }

    /// Writes what this server measured of etcd: requests and their latency, failures, and
    /// watch streams opened.
    pub fn write_metrics(&self, out: &mut Exposition) {
        out.single_histogram(
            "shoal_etcd_request_duration_seconds",
            "Requests to etcd that got an answer, and how long each took.",
            &self.stats.requests,
        );
        out.single(
            "shoal_etcd_request_errors_total",
            "Requests to an etcd endpoint that failed: unreachable, or answered with an error.",
            Kind::Counter,
            self.stats.errors.get(),
        );
        out.single(
            "shoal_etcd_watches_total",
            "Watch streams opened on etcd; more than the watches needed means watches restarted.",
            Kind::Counter,
            self.stats.watches.get(),
        );
    }

    /// This store over HTTPS, verifying etcd with `tls` (and presenting its client
    /// certificate, if it has one), as etcd's `--client-cert-auth` expects.
    ///
    /// # Errors
    /// The HTTP stack cannot be set up.
    pub fn with_tls(mut self, tls: &shoal_tls::ClientTls) -> Result<Self, StoreError> {
        for endpoint in &mut self.endpoints {
            if let Some(host) = endpoint.strip_prefix("http://") {
                *endpoint = format!("https://{host}");
            }
        }
        self.http = crate::http::client(Some(REQUEST_TIMEOUT), tls)?;
        self.streaming = crate::http::client(None, tls)?;
        Ok(self)
    }

    /// Checks that etcd answers.
    ///
    /// # Errors
    /// No endpoint answered.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call("/v3/kv/range", json!({"key": b64("\0"), "limit": 1}))
            .await
            .map(drop)
    }

    /// This store, with every write (put or delete) fenced by `key` still having modification
    /// revision `revision`: once `key` changed, writes fail with [`StoreError::Conflict`].
    /// A leader writes through a store fenced by its leadership key, so that once deposed it
    /// cannot overwrite what its successor wrote.
    pub fn fenced(&self, key: &str, revision: u64) -> Self {
        Self {
            fence: Some((key.to_string(), revision)),
            ..self.clone()
        }
    }

    /// Grants a lease of `ttl` seconds; keys written with it vanish when it expires.
    ///
    /// # Errors
    /// etcd is unreachable.
    pub async fn grant_lease(&self, ttl: u64) -> Result<i64, StoreError> {
        let resp = self
            .call("/v3/lease/grant", json!({"TTL": ttl.to_string()}))
            .await?;
        i64::try_from(num(resp.get("ID")))
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(|| StoreError::Unavailable(format!("etcd granted no lease: {resp}")))
    }

    /// Renews `lease`; false if it already expired.
    ///
    /// # Errors
    /// etcd is unreachable.
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, StoreError> {
        let resp = self
            .call("/v3/lease/keepalive", json!({"ID": lease.to_string()}))
            .await?;
        Ok(num(resp.get("result").and_then(|r| r.get("TTL"))) > 0)
    }

    /// Gives `lease` up, deleting its keys at once.
    ///
    /// # Errors
    /// etcd is unreachable.
    pub async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        self.call("/v3/lease/revoke", json!({"ID": lease.to_string()}))
            .await
            .map(drop)
    }

    /// Creates `key` = `value` bound to `lease`, if `key` does not exist; the revision of the
    /// write, or `None` if the key exists.
    ///
    /// # Errors
    /// etcd is unreachable.
    pub async fn create_with_lease(
        &self,
        key: &str,
        value: &[u8],
        lease: i64,
    ) -> Result<Option<u64>, StoreError> {
        let op = json!({"request_put": {
            "key": b64(key), "value": B64.encode(value), "lease": lease.to_string()
        }});
        match self.txn(key, Precondition::Absent, op).await? {
            (true, resp) => Ok(Some(revision(&resp))),
            (false, _) => Ok(None),
        }
    }

    /// POSTs `body` to `path` on the first endpoint that answers.
    async fn call(&self, path: &str, body: Value) -> Result<Value, StoreError> {
        let mut last = String::new();
        for endpoint in &self.endpoints {
            let started = std::time::Instant::now();
            let resp = match self
                .http
                .post(format!("{endpoint}{path}"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    self.stats.errors.inc();
                    last = format!("{endpoint}: {}", root_cause(&e));
                    continue;
                }
            };
            let status = resp.status();
            let value = resp.json::<Value>().await;
            self.stats.requests.observe(started.elapsed());
            let value = value.map_err(|e| {
                self.stats.errors.inc();
                StoreError::Unavailable(format!("{endpoint}: bad answer: {e}"))
            })?;
            if status.is_success() {
                return Ok(value);
            }
            self.stats.errors.inc();
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            last = format!("{endpoint}: {status}: {message}");
        }
        Err(StoreError::Unavailable(format!(
            "cannot reach etcd ({last}); retry once etcd is back"
        )))
    }

    async fn txn(
        &self,
        key: &str,
        pre: Precondition,
        op: Value,
    ) -> Result<(bool, Value), StoreError> {
        let mut compare = match pre {
            Precondition::None => vec![],
            Precondition::Absent => vec![json!({
                "key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"
            })],
            Precondition::ModRevision(r) => vec![json!({
                "key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": r.to_string()
            })],
        };
        if let Some((fence, revision)) = &self.fence {
            compare.push(json!({
                "key": b64(fence), "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string()
            }));
        }
        let resp = self
            .call(
                "/v3/kv/txn",
                json!({"compare": compare, "success": [op], "failure": []}),
            )
            .await?;
        let ok = resp
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok((ok, resp))
    }
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// The end of etcd's range for every key starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return B64.encode(end);
        }
    }
    // Every byte 0xff (or empty): to the end of the key space.
    B64.encode([0u8])
}

/// etcd's JSON numbers are 64-bit integers written as strings.
fn num(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn revision(resp: &Value) -> u64 {
    num(resp.get("header").and_then(|h| h.get("revision")))
}

#[derive(Deserialize)]
struct RawKv {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    mod_revision: Value,
}

fn decode_kv(raw: &Value) -> Result<KeyValue, StoreError> {
    let kv: RawKv = serde_json::from_value(raw.clone())
        .map_err(|e| StoreError::Unavailable(format!("etcd: bad key-value: {e}")))?;
    let bytes = |s: &str| {
        B64.decode(s)
            .map_err(|e| StoreError::Unavailable(format!("etcd: bad base64: {e}")))
    };
    Ok(KeyValue {
        key: String::from_utf8_lossy(&bytes(&kv.key)?).into_owned(),
        value: bytes(&kv.value)?,
        mod_revision: num(Some(&kv.mod_revision)),
    })
}

fn kvs(resp: &Value) -> Result<Vec<KeyValue>, StoreError> {
    resp.get("kvs")
        .and_then(Value::as_array)
        .map_or(Ok(Vec::new()), |a| a.iter().map(decode_kv).collect())
}

#[async_trait]
impl Store for Etcd {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self.call("/v3/kv/range", json!({"key": b64(key)})).await?;
        Ok(kvs(&resp)?.into_iter().next())
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let resp = self
            .call(
                "/v3/kv/range",
                json!({"key": b64(prefix), "range_end": prefix_end(prefix)}),
            )
            .await?;
        Ok((kvs(&resp)?, revision(&resp)))
    }

    async fn put(&self, key: &str, value: Vec<u8>, pre: Precondition) -> Result<u64, StoreError> {
        let op = json!({"request_put": {"key": b64(key), "value": B64.encode(&value)}});
        match self.txn(key, pre, op).await? {
            (true, resp) => Ok(revision(&resp)),
            (false, _) => Err(StoreError::Conflict {
                key: key.to_string(),
            }),
        }
    }

    async fn delete(&self, key: &str, pre: Precondition) -> Result<Option<u64>, StoreError> {
        let op = json!({"request_delete_range": {"key": b64(key)}});
        match self.txn(key, pre, op).await? {
            (true, resp) => {
                let deleted = resp
                    .get("responses")
                    .and_then(|r| r.get(0))
                    .and_then(|r| r.get("response_delete_range"))
                    .map_or(0, |d| num(d.get("deleted")));
                Ok((deleted > 0).then(|| revision(&resp)))
            }
            (false, _) => Err(StoreError::Conflict {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(&self, prefix: &str, after: u64) -> Result<Watch, StoreError> {
        let body = json!({"create_request": {
            "key": b64(prefix),
            "range_end": prefix_end(prefix),
            "start_revision": (after + 1).to_string(),
        }});
        let mut last = String::new();
        let mut resp = None;
        self.stats.watches.inc();
        for endpoint in &self.endpoints {
            match self
                .streaming
                .post(format!("{endpoint}/v3/watch"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    resp = Some(r);
                    break;
                }
                Ok(r) => {
                    self.stats.errors.inc();
                    last = format!("{endpoint}: {}", r.status());
                }
                Err(e) => {
                    self.stats.errors.inc();
                    last = format!("{endpoint}: {}", root_cause(&e));
                }
            }
        }
        let resp = resp.ok_or_else(|| StoreError::Unavailable(format!("etcd watch: {last}")))?;
        // The gateway streams one JSON object per message, newline-separated.
        Ok(crate::http::line_watch(resp, "etcd", move |line| {
            watch_items(line, after)
        }))
    }
}

/// The events (or the error) in one streamed watch message.
fn watch_items(line: &[u8], after: u64) -> Vec<Result<WatchEvent, StoreError>> {
    let msg: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return vec![Err(StoreError::Unavailable(format!(
                "etcd watch: bad message: {e}"
            )))];
        }
    };
    let Some(result) = msg.get("result") else {
        let message = msg
            .get("error")
            .map_or_else(|| msg.to_string(), ToString::to_string);
        return vec![Err(StoreError::Unavailable(format!(
            "etcd watch: {message}"
        )))];
    };
    if num(result.get("compact_revision")) > 0 {
        return vec![Err(StoreError::Compacted { requested: after })];
    }
    if result.get("canceled").and_then(Value::as_bool) == Some(true) {
        return vec![Err(StoreError::Unavailable(
            "etcd canceled the watch".into(),
        ))];
    }
    let Some(events) = result.get("events").and_then(Value::as_array) else {
        return Vec::new();
    };
    events
        .iter()
        .map(|e| {
            let kv = decode_kv(e.get("kv").unwrap_or(&Value::Null))?;
            Ok(match e.get("type").and_then(Value::as_str) {
                Some("DELETE") => WatchEvent::Delete {
                    key: kv.key,
                    revision: kv.mod_revision,
                },
                _ => WatchEvent::Put(kv),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_testkit::Etcd as EtcdProcess;

    #[tokio::test]
    async fn conforms() {
        let etcd = EtcdProcess::start();
        let s = Etcd::new(&etcd.url()).unwrap();
        crate::conformance::cas_and_revisions(&s).await;
        crate::conformance::watch_resumes_from_revision(&s).await;
    }

    #[tokio::test]
    async fn conforms_over_tls_with_a_client_certificate_etcd_requires() {
        let etcd = EtcdProcess::start_tls();
        let files = etcd.tls.clone().unwrap();
        let trusted = shoal_tls::ClientTls::ca_file(&files.ca).unwrap();
        // Without the client certificate, etcd ends the handshake.
        let anonymous = Etcd::new(&etcd.url()).unwrap().with_tls(&trusted).unwrap();
        assert!(matches!(
            anonymous.ping().await,
            Err(StoreError::Unavailable(_))
        ));
        let s = Etcd::new(&etcd.url())
            .unwrap()
            .with_tls(
                &trusted
                    .with_identity(&files.client_cert, &files.client_key)
                    .unwrap(),
            )
            .unwrap();
        crate::conformance::cas_and_revisions(&s).await;
        crate::conformance::watch_resumes_from_revision(&s).await;
    }

    #[tokio::test]
    async fn a_watch_behind_compaction_says_so_and_an_outage_is_an_error_not_a_hang() {
        let mut etcd = EtcdProcess::start();
        let s = Etcd::new(&etcd.url()).unwrap();
        let first = s
            .put("a/1", b"1".to_vec(), Precondition::None)
            .await
            .unwrap();
        let last = s
            .put("a/2", b"2".to_vec(), Precondition::None)
            .await
            .unwrap();
        s.call("/v3/kv/compaction", json!({"revision": last.to_string()}))
            .await
            .unwrap();
        let mut w = s.watch("a/", first - 1).await.unwrap();
        assert!(matches!(
            w.next().await,
            Some(Err(StoreError::Compacted { .. }))
        ));

        let mut live = s.watch("a/", last).await.unwrap();
        etcd.kill();
        assert!(matches!(
            live.next().await,
            Some(Err(StoreError::Unavailable(_)))
        ));
        assert!(matches!(
            s.get("a/1").await,
            Err(StoreError::Unavailable(_))
        ));
        etcd.restart();
        assert_eq!(s.get("a/2").await.unwrap().unwrap().value, b"2");
    }

    #[tokio::test]
    async fn a_fenced_store_cannot_write_once_its_fence_moved() {
        let etcd = EtcdProcess::start();
        let s = Etcd::new(&etcd.url()).unwrap();
        let lease = s.grant_lease(5).await.unwrap();
        let held = s
            .create_with_lease("leader", b"me", lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.create_with_lease("leader", b"you", lease).await.unwrap(),
            None
        );
        let leader = s.fenced("leader", held);
        leader
            .put("x", b"1".to_vec(), Precondition::None)
            .await
            .unwrap();
        // Deposed: the key changes hands.
        s.revoke(lease).await.unwrap();
        let other = s.grant_lease(5).await.unwrap();
        s.create_with_lease("leader", b"you", other)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            leader.put("x", b"2".to_vec(), Precondition::None).await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(leader.delete("x", Precondition::None).await.is_err());
        assert_eq!(s.get("x").await.unwrap().unwrap().value, b"1");
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(B64.decode(prefix_end("apps/")).unwrap(), b"apps0");
        assert_eq!(B64.decode(prefix_end("a\u{7f}")).unwrap(), b"a\x80");
    }
}
