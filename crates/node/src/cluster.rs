//! A cluster node's way to the cluster: the servers, tried in turn, for its store, its
//! blobs and its liveness lease.

use crate::register::{LeaseError, LeaseKeeper};
use shoal_api::Digest;
use shoal_blobs::{BlobError, BlobSource};
use shoal_client::{Client, RemoteStore};

/// The cluster's servers, as a node reaches them with its credential.
pub(crate) struct Servers {
    urls: Vec<String>,
    token: String,
    tls: shoal_tls::ClientTls,
    clients: Vec<Client>,
}

impl Servers {
    /// The servers at `urls`, reached with the node's credential `token` and verified (over
    /// HTTPS) as `tls` says.
    pub(crate) fn new(urls: &[String], token: &str, tls: shoal_tls::ClientTls) -> Self {
        Self {
            urls: urls.to_vec(),
            token: token.to_string(),
            clients: urls
                .iter()
                .map(|s| Client::with_tls(s, Some(token.to_string()), &tls))
                .collect(),
            tls,
        }
    }

    /// The store, through the servers' `/v1/store` API.
    pub(crate) fn store(&self) -> RemoteStore {
        RemoteStore::with_tls(&self.urls, &self.token, &self.tls)
    }
}

#[async_trait::async_trait]
impl LeaseKeeper for Servers {
    async fn keep(&self, name: &str) -> Result<(), LeaseError> {
        let mut errors = Vec::new();
        for server in &self.clients {
            match server.keep_node_lease(name).await {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(LeaseError(errors.join("; ")))
    }
}

#[async_trait::async_trait]
impl BlobSource for Servers {
    async fn fetch(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let mut errors = Vec::new();
        for server in &self.clients {
            match server.download_blob(digest).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(BlobError::Fetch {
            digest: digest.clone(),
            reason: errors.join("; "),
        })
    }
}
