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

    /// This node's TLS identity: a new key, certified by the cluster's CA through the first
    /// server that answers.
    ///
    /// # Errors
    /// No server answered or could (`retry`: worth trying again), or one refused.
    pub(crate) async fn identity(
        &self,
        name: &str,
    ) -> Result<shoal_tls::NodeIdentity, IdentityError> {
        let key = shoal_tls::NodeKey::generate().map_err(|e| IdentityError {
            retry: false,
            reason: e.to_string(),
        })?;
        let mut errors = Vec::new();
        for server in &self.clients {
            match server.node_certificate(name, key.public_pem()).await {
                Ok(c) => {
                    return shoal_tls::NodeIdentity::new(&key, &c.certificate, &c.ca).map_err(
                        |e| IdentityError {
                            retry: false,
                            reason: e.to_string(),
                        },
                    );
                }
                // A refusal (a revoked credential, a server that issues none) is final.
                Err(e @ shoal_client::ClientError::Api { status, .. }) if status < 500 => {
                    return Err(IdentityError {
                        retry: false,
                        reason: e.to_string(),
                    });
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(IdentityError {
            retry: true,
            reason: errors.join("; "),
        })
    }

    /// The store, through the servers' `/v1/store` API.
    pub(crate) fn store(&self) -> RemoteStore {
        RemoteStore::with_tls(&self.urls, &self.token, &self.tls)
    }
}

/// Why a node has no TLS identity.
#[derive(Debug)]
pub(crate) struct IdentityError {
    /// No server answered: worth trying again.
    pub(crate) retry: bool,
    /// What went wrong.
    pub(crate) reason: String,
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
