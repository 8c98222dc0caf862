//! How a server reaches the nodes' own endpoints (`/.shoal/logs`, `/.shoal/stats`): each node
//! over TLS at its ingress address by its TLS name (`NAME.nodes.shoal.internal`), verified by
//! the cluster's CA, presenting that node's credential.

use crate::{ApiError, ApiState};
use std::time::Duration;

/// Nodes to ask, and how to reach them.
pub(crate) struct Nodes {
    /// Each node's name, base URL (`https://NAME.nodes.shoal.internal:PORT`) and credential.
    pub(crate) nodes: Vec<(String, String, String)>,
    /// Where each node's TLS name is.
    resolve: Vec<(String, std::net::SocketAddr)>,
    /// How the nodes are verified.
    tls: shoal_tls::ClientTls,
}

impl Nodes {
    /// The cluster nodes `holders` names (every node: `None`) that have a credential and an
    /// address that resolves; a node left out is logged.
    pub(crate) async fn of(state: &ApiState, holders: Option<&[String]>) -> Result<Self, ApiError> {
        let (all, _) = state.objects.list::<shoal_api::Node>(None).await?;
        let mut nodes = Vec::new();
        let mut resolve = Vec::new();
        for n in all
            .into_iter()
            .filter(|n| holders.is_none_or(|h| h.contains(&n.metadata.name)))
        {
            let name = n.metadata.name;
            let Some(credential) = crate::auth::of(state, &name).await? else {
                continue;
            };
            let Some(at) = socket_addr(&n.spec.address).await else {
                tracing::warn!(
                    "node/{name}: its address {} does not resolve; it is not asked",
                    n.spec.address
                );
                continue;
            };
            let host = shoal_tls::node_server_name(&name);
            nodes.push((name, format!("https://{host}:{}", at.port()), credential));
            resolve.push((host, at));
        }
        Ok(Self {
            nodes,
            resolve,
            tls: state.cluster_tls.clone(),
        })
    }

    /// An HTTP client that reaches them, each request given up after `timeout`.
    pub(crate) fn client(&self, timeout: Duration) -> Result<reqwest::Client, ApiError> {
        self.resolve
            .iter()
            .fold(
                reqwest::Client::builder()
                    .no_proxy()
                    .timeout(timeout)
                    .tls_backend_preconfigured(self.tls.config()),
                |b, (host, at)| b.resolve(host, *at),
            )
            .build()
            .map_err(|e| ApiError::Unavailable(e.to_string()))
    }
}

/// Where a node's ingress address (`http://HOST:PORT`) is.
async fn socket_addr(address: &str) -> Option<std::net::SocketAddr> {
    let uri: http::Uri = address.parse().ok()?;
    let (host, port) = (uri.host()?, uri.port_u16()?);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port)).await.ok()?.next()
}
