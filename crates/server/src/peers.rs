//! The other servers of a cluster: each registers itself under `servers/`, and uploaded blobs
//! are copied to every live peer before the upload is acknowledged, so that a blob outlives
//! the server that took it. A server asked for a blob it lacks fetches it from a peer.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shoal_store::{Etcd, Objects};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The header on a copy sent to a peer (which does not copy it further), and on a fetch from
/// a peer (which answers from its own store only, never asking its peers in turn).
pub const REPLICA: &str = "shoal-replica";

/// How long a blob no peer had is not asked for again.
const MISS_TTL: Duration = Duration::from_secs(2);
/// The most misses remembered.
const MAX_MISSES: usize = 10_000;

/// A server as it registers itself.
#[derive(Debug, Serialize, Deserialize)]
struct Registration {
    /// Its API, as peers reach it.
    address: String,
}

/// This server's view of its peers.
pub struct Peers {
    objects: Objects,
    me: String,
    token: String,
    http: reqwest::Client,
    /// Blobs no peer had, and when that was found.
    misses: std::sync::Mutex<std::collections::HashMap<shoal_api::Digest, std::time::Instant>>,
}

impl Peers {
    /// Peers found in `objects`; `me` is this server's API address, `token` the cluster's,
    /// and peers reached over HTTPS are verified as `tls` says.
    pub fn new(objects: Objects, me: String, token: String, tls: &shoal_tls::ClientTls) -> Self {
        Self {
            objects,
            me,
            token,
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(tls.config())
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client with rustls builds"),
            misses: Default::default(),
        }
    }

    async fn others(&self) -> Vec<String> {
        match self.objects.store().list(shoal_store::raw::SERVERS).await {
            Ok((kvs, _)) => kvs
                .iter()
                .filter_map(|kv| serde_json::from_slice::<Registration>(&kv.value).ok())
                .map(|r| r.address)
                .filter(|a| *a != self.me)
                .collect(),
            Err(e) => {
                tracing::warn!("cannot list peer servers: {e}");
                Vec::new()
            }
        }
    }

    /// Copies `bytes` (blob `digest`) to every live peer; failures are logged, not fatal.
    pub(crate) async fn replicate(&self, digest: &shoal_api::Digest, bytes: Bytes) {
        let copies = self.others().await.into_iter().map(|peer| {
            let req = self
                .http
                .post(format!("{peer}/v1/blobs"))
                .bearer_auth(&self.token)
                .header(REPLICA, "1")
                .body(bytes.clone());
            async move {
                match req.send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => {
                        tracing::warn!("blob {digest}: peer {peer} refused a copy: {}", r.status())
                    }
                    Err(e) => tracing::warn!("blob {digest}: cannot copy to peer {peer}: {e}"),
                }
            }
        });
        futures::future::join_all(copies).await;
    }

    /// Blob `digest` from the first peer that has it in its own store. One hop only: the
    /// peers do not ask theirs (the request says it is a replica's), so a digest nobody has
    /// costs one request per peer — and none for [`MISS_TTL`] after.
    pub(crate) async fn fetch(&self, digest: &shoal_api::Digest) -> Option<Bytes> {
        if self
            .misses
            .lock()
            .expect("misses lock")
            .get(digest)
            .is_some_and(|at| at.elapsed() < MISS_TTL)
        {
            return None;
        }
        for peer in self.others().await {
            let resp = self
                .http
                .get(format!("{peer}/v1/blobs/{digest}"))
                .bearer_auth(&self.token)
                .header(REPLICA, "1")
                .send()
                .await;
            if let Ok(r) = resp
                && r.status().is_success()
                && let Ok(bytes) = r.bytes().await
            {
                return Some(bytes);
            }
        }
        let mut misses = self.misses.lock().expect("misses lock");
        if misses.len() >= MAX_MISSES {
            misses.retain(|_, at| at.elapsed() < MISS_TTL);
        }
        if misses.len() < MAX_MISSES {
            misses.insert(digest.clone(), std::time::Instant::now());
        }
        None
    }
}

/// Keeps `servers/ID` → this server's address alive on an etcd lease until `shutdown`.
pub async fn register(etcd: Etcd, id: String, address: String, shutdown: CancellationToken) {
    let key = format!("{}{id}", shoal_store::raw::SERVERS);
    let value = serde_json::to_vec(&Registration { address }).expect("serializes");
    while !shutdown.is_cancelled() {
        let registered = async {
            let lease = etcd.grant_lease(crate::leader::TTL).await?;
            etcd.create_with_lease(&key, &value, lease).await?;
            Ok::<_, shoal_store::StoreError>(lease)
        }
        .await;
        if let Ok(lease) = registered {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = etcd.revoke(lease).await;
                        return;
                    }
                    _ = tokio::time::sleep(crate::leader::RENEW) => {}
                }
                if !matches!(etcd.keep_alive(lease).await, Ok(true)) {
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(crate::leader::RENEW) => {}
        }
    }
}
