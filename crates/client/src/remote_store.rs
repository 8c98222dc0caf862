//! [`RemoteStore`]: the [`Store`] a node uses, through a server's `/v1/store` API.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use shoal_store::{KeyValue, Precondition, Store, StoreError, Watch, WatchEvent};
use std::time::Duration;

/// A [`Store`] reached through one or more Shoal servers (tried in turn), with a node's
/// credential (or the client token).
///
/// # Guarantees
/// The same semantics as the store behind the servers (compare-and-swap, ordered watches,
/// `Compacted`); a server that cannot be reached is [`StoreError::Unavailable`], and a watch
/// whose connection breaks ends with that error, so the caller re-lists.
#[derive(Clone)]
pub struct RemoteStore {
    servers: Vec<String>,
    token: String,
    http: reqwest::Client,
    streaming: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireKv {
    key: String,
    value: String,
    mod_revision: u64,
}

impl WireKv {
    fn decode(self) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            value: B64
                .decode(&self.value)
                .map_err(|e| StoreError::Unavailable(format!("bad value of {}: {e}", self.key)))?,
            key: self.key,
            mod_revision: self.mod_revision,
        })
    }
}

fn pre(p: Precondition) -> String {
    match p {
        Precondition::None => "none".into(),
        Precondition::Absent => "absent".into(),
        Precondition::ModRevision(n) => n.to_string(),
    }
}

impl RemoteStore {
    /// A store behind `servers` (base URLs), authenticated with the node `token`, verifying
    /// HTTPS servers against the system's roots.
    pub fn new(servers: &[String], token: &str) -> Self {
        Self::with_tls(servers, token, &shoal_tls::ClientTls::system())
    }

    /// A store behind `servers` (base URLs), authenticated with the node `token`, verifying
    /// HTTPS servers as `tls` says.
    pub fn with_tls(servers: &[String], token: &str, tls: &shoal_tls::ClientTls) -> Self {
        let build = |timeout| {
            shoal_store::http::client(timeout, tls).expect("an HTTP client with rustls builds")
        };
        Self {
            servers: servers
                .iter()
                .map(|s| s.trim_end_matches('/').to_string())
                .collect(),
            token: token.to_string(),
            http: build(Some(Duration::from_secs(10))),
            streaming: build(None),
        }
    }

    /// Sends the request `make` builds to each server in turn until one answers; maps the
    /// API's errors to the store's.
    async fn send(
        &self,
        client: &reqwest::Client,
        make: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        key: &str,
    ) -> Result<reqwest::Response, StoreError> {
        let mut last = String::from("no server configured");
        for server in &self.servers {
            let resp = match make(client, server).bearer_auth(&self.token).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{server}: {e}");
                    continue;
                }
            };
            return match resp.status().as_u16() {
                200..=299 | 404 => Ok(resp),
                409 => Err(StoreError::Conflict { key: key.into() }),
                status => {
                    let text = resp.text().await.unwrap_or_default();
                    Err(StoreError::Unavailable(format!(
                        "{server}: {status}: {text}"
                    )))
                }
            };
        }
        Err(StoreError::Unavailable(last))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, StoreError> {
        resp.json()
            .await
            .map_err(|e| StoreError::Unavailable(format!("bad answer from the server: {e}")))
    }
}

#[async_trait::async_trait]
impl Store for RemoteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self
            .send(
                &self.http,
                |c, s| c.get(format!("{s}/v1/store/kv")).query(&[("key", key)]),
                key,
            )
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        Self::json::<WireKv>(resp).await?.decode().map(Some)
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError> {
        #[derive(Deserialize)]
        struct Listing {
            items: Vec<WireKv>,
            revision: u64,
        }
        let resp = self
            .send(
                &self.http,
                |c, s| {
                    c.get(format!("{s}/v1/store/list"))
                        .query(&[("prefix", prefix)])
                },
                prefix,
            )
            .await?;
        let listing: Listing = Self::json(resp).await?;
        let items = listing
            .items
            .into_iter()
            .map(WireKv::decode)
            .collect::<Result<_, _>>()?;
        Ok((items, listing.revision))
    }

    async fn put(&self, key: &str, value: Vec<u8>, p: Precondition) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Written {
            revision: u64,
        }
        let resp = self
            .send(
                &self.http,
                |c, s| {
                    c.put(format!("{s}/v1/store/kv"))
                        .query(&[("key", key.to_string()), ("pre", pre(p))])
                        .body(value.clone())
                },
                key,
            )
            .await?;
        Ok(Self::json::<Written>(resp).await?.revision)
    }

    async fn delete(&self, key: &str, p: Precondition) -> Result<Option<u64>, StoreError> {
        #[derive(Deserialize)]
        struct Deleted {
            revision: Option<u64>,
        }
        let resp = self
            .send(
                &self.http,
                |c, s| {
                    c.delete(format!("{s}/v1/store/kv"))
                        .query(&[("key", key.to_string()), ("pre", pre(p))])
                },
                key,
            )
            .await?;
        Ok(Self::json::<Deleted>(resp).await?.revision)
    }

    async fn watch(&self, prefix: &str, after: u64) -> Result<Watch, StoreError> {
        let resp = self
            .send(
                &self.streaming,
                |c, s| {
                    c.get(format!("{s}/v1/store/watch"))
                        .query(&[("prefix", prefix.to_string()), ("after", after.to_string())])
                },
                prefix,
            )
            .await?;
        Ok(shoal_store::http::line_watch(
            resp,
            "the server's",
            |line| vec![decode_event(line)],
        ))
    }
}

/// One line of the server's watch stream.
fn decode_event(line: &[u8]) -> Result<WatchEvent, StoreError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Line {
        Put(WireKv),
        Delete { key: String, revision: u64 },
        Compacted(u64),
        Error(String),
    }
    match serde_json::from_slice::<Line>(line) {
        Ok(Line::Put(kv)) => kv.decode().map(WatchEvent::Put),
        Ok(Line::Delete { key, revision }) => Ok(WatchEvent::Delete { key, revision }),
        Ok(Line::Compacted(requested)) => Err(StoreError::Compacted { requested }),
        Ok(Line::Error(e)) => Err(StoreError::Unavailable(e)),
        Err(e) => Err(StoreError::Unavailable(format!("bad watch line: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_store::{Embedded, Objects};
    use std::sync::Arc;

    /// A real API server on an embedded store, over HTTPS with a CA made for it, port 0;
    /// returns its URL and what trusts it.
    async fn server(dir: &std::path::Path) -> (String, shoal_tls::ClientTls) {
        let store = Embedded::open(&dir.join("state.redb")).unwrap();
        let blobs = shoal_blobs::BlobStore::open(dir.join("blobs")).unwrap();
        let state = shoal_server::ApiState::new(
            Objects::new(Arc::new(store)),
            blobs,
            "client".into(),
            1 << 20,
        )
        .with_join_token("join".into());
        let local = shoal_tls::LocalCertificates::ensure(
            &dir.join("tls"),
            None,
            &["127.0.0.1".to_string()],
        )
        .unwrap();
        let certs = shoal_tls::Certificates::load(Some((local.cert, local.key)), None).unwrap();
        let config = shoal_tls::server_config(certs, &[shoal_tls::ALPN_HTTP1]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(shoal_server::run(
            listener,
            Some(config),
            Arc::new(state),
            shoal_server::ApiLimits::default(),
            std::future::pending(),
        ));
        (url, shoal_tls::ClientTls::ca_file(&local.ca).unwrap())
    }

    #[tokio::test]
    async fn conforms_through_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let (url, tls) = server(dir.path()).await;
        let s = RemoteStore::with_tls(&[url], "client", &tls);
        shoal_store::conformance::cas_and_revisions(&s).await;
        let dir = tempfile::tempdir().unwrap();
        let (url, tls) = server(dir.path()).await;
        let s = RemoteStore::with_tls(&["https://127.0.0.1:1".into(), url], "client", &tls);
        shoal_store::conformance::watch_resumes_from_revision(&s).await;
    }

    #[tokio::test]
    async fn a_server_it_does_not_trust_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _) = server(dir.path()).await;
        let s = RemoteStore::new(std::slice::from_ref(&url), "client");
        let err = s.get("apps/default/a").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains(&url)),
            "{err}"
        );
    }

    fn ready_app() -> Vec<u8> {
        br#"{"apiVersion":"shoal/v1alpha1","kind":"App","spec":{"component":"a.wasm","routes":[{"path":"/a"}]},"metadata":{"name":"a"},"status":{"phase":"Ready"}}"#.to_vec()
    }

    #[tokio::test]
    async fn a_node_writes_status_events_and_its_node_but_never_a_spec() {
        let dir = tempfile::tempdir().unwrap();
        let (url, tls) = server(dir.path()).await;
        let client = RemoteStore::with_tls(std::slice::from_ref(&url), "client", &tls);
        let credential = crate::Client::with_tls(&url, Some("join".into()), &tls)
            .join_node("n1", false)
            .await
            .unwrap();
        let node = RemoteStore::with_tls(&[url], &credential, &tls);
        let app = br#"{"apiVersion":"shoal/v1alpha1","kind":"App","spec":{"component":"a.wasm","routes":[{"path":"/a"}]},"metadata":{"name":"a"},"status":{"phase":"Pending"}}"#;
        let rev = client
            .put("apps/default/a", app.to_vec(), Precondition::Absent)
            .await
            .unwrap();
        let ready = br#"{"apiVersion":"shoal/v1alpha1","kind":"App","spec":{"component":"a.wasm","routes":[{"path":"/a"}]},"metadata":{"name":"a","resourceVersion":9},"status":{"phase":"Ready"}}"#;
        node.put(
            "apps/default/a",
            ready.to_vec(),
            Precondition::ModRevision(rev),
        )
        .await
        .unwrap();
        let respec = br#"{"apiVersion":"shoal/v1alpha1","kind":"App","spec":{"component":"evil.wasm","routes":[{"path":"/a"}]},"metadata":{"name":"a"},"status":{"phase":"Ready"}}"#;
        let err = node
            .put("apps/default/a", respec.to_vec(), Precondition::None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("403"), "{err}");
        assert!(
            node.delete("apps/default/a", Precondition::None)
                .await
                .is_err()
        );
        assert!(
            node.put("routes/x", b"y".to_vec(), Precondition::None)
                .await
                .is_err()
        );
        assert!(node.get("routes/x").await.is_err());
        let event = |name: &str, message: &str| {
            format!(
                r#"{{"apiVersion":"shoal/v1alpha1","kind":"Event","metadata":{{"name":"{name}"}},"involvedObject":{{"kind":"app","namespace":"default","name":"a"}},"type":"Normal","reason":"Ready","message":"{message}","source":"node/n1","timestamp":"2026-01-01T00:00:00Z"}}"#
            )
            .into_bytes()
        };
        // However many a writer sends, the newest 50 per object are kept.
        for i in 0..60 {
            let name = format!("app.a.{i:020}");
            node.put(
                &format!("events/default/{name}"),
                event(&name, "m"),
                Precondition::None,
            )
            .await
            .unwrap();
        }
        let (events, _) = node.list("events/default/app.a.").await.unwrap();
        assert_eq!(events.len(), shoal_store::EVENTS_PER_OBJECT);
        assert!(
            events[0].key.ends_with(&format!("{:020}", 10)),
            "{}",
            events[0].key
        );
        // An event named for another object, or with a message past the limit: refused.
        for (name, message) in [
            ("app.b.1", "m".to_string()),
            ("app.a.2", "x".repeat(shoal_store::MAX_EVENT_MESSAGE + 1)),
        ] {
            let err = node
                .put(
                    &format!("events/default/{name}"),
                    event(name, &message),
                    Precondition::None,
                )
                .await
                .unwrap_err();
            assert!(err.to_string().contains("400"), "{name}: {err}");
        }
        let n1 = br#"{"apiVersion":"shoal/v1alpha1","kind":"Node","metadata":{"name":"n1"},"spec":{"address":"http://127.0.0.1:1","capacityMemory":1,"maxInstances":1}}"#;
        node.put("nodes/n1", n1.to_vec(), Precondition::None)
            .await
            .unwrap();
        // What the leader's controllers own is not a node's to write: an app's placement
        // (a node could pull every app's traffic to itself), a node's phase.
        let (kv, _) = node.list("apps/").await.unwrap();
        let rev = kv[0].mod_revision;
        let grab = br#"{"apiVersion":"shoal/v1alpha1","kind":"App","spec":{"component":"a.wasm","routes":[{"path":"/a"}]},"metadata":{"name":"a"},"status":{"phase":"Ready","placement":{"nodes":["n1"]}}}"#;
        let err = node
            .put(
                "apps/default/a",
                grab.to_vec(),
                Precondition::ModRevision(rev),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("status.placement"), "{err}");
        let ready = br#"{"apiVersion":"shoal/v1alpha1","kind":"Node","metadata":{"name":"n1"},"spec":{"address":"http://127.0.0.1:1","capacityMemory":1,"maxInstances":1},"status":{"phase":"Ready"}}"#;
        let err = node
            .put("nodes/n1", ready.to_vec(), Precondition::None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("status.phase"), "{err}");
        let n3 = String::from_utf8_lossy(n1).replace("n1", "n3");
        let err = node
            .put("nodes/n3", n3.into_bytes(), Precondition::None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("another node's Node object"),
            "{err}"
        );
        // A write checked against a revision that is no longer current is a conflict.
        let err = node
            .put(
                "apps/default/a",
                ready_app(),
                Precondition::ModRevision(rev - 1),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");

        // Not an object of its kind, or not the one its key names: refused.
        for (key, body) in [
            ("nodes/n1", &b"{}"[..]),
            ("nodes/n2", &n1[..]),
            ("events/default/app.a.3", &b"{\"status\": 42}"[..]),
        ] {
            let err = node
                .put(key, body.to_vec(), Precondition::None)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("400"), "{key}: {err}");
        }
        assert_eq!(node.list("apps/").await.unwrap().0.len(), 1);
    }
}
