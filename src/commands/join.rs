//! How `shoal node` gets its own credential: from its data dir (`node-credential`) once it
//! has joined; before that, from the servers in exchange for the cluster's join token — or
//! the token given is already the node's credential, made by an operator with `shoal create
//! node`. The join token is needed once; from then on the node is only itself.

use anyhow::bail;
use shoal_client::{Client, ClientError};
use shoal_tls::ClientTls;
use std::path::Path;
use std::time::Duration;

/// Where a node keeps its credential, in its data dir.
pub const FILE: &str = "node-credential";

/// Node `name`'s credential, joining through `servers` with `token` if its data dir holds
/// none; waits for a server while none answers. Servers are verified as `tls` says.
///
/// # Errors
/// The data dir belongs to another node, no token is given for the first start, or a server
/// refuses the join (the name has joined already, the token is wrong).
pub async fn credential(
    servers: &[String],
    name: &str,
    token: Option<&str>,
    data_dir: &Path,
    tls: &ClientTls,
) -> anyhow::Result<String> {
    let path = data_dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let kept = text.trim().to_string();
        return match shoal_server::credential_node(&kept) {
            Some(n) if n == name => {
                still_valid(servers, name, &kept, &path, tls).await?;
                Ok(kept)
            }
            Some(n) => bail!(
                "{} holds the credential of node/{n}, not node/{name}: a data dir belongs to one node; start with --name {n} or another --data-dir",
                path.display()
            ),
            None => bail!(
                "{} is not a node credential; remove it to join again with --join-token",
                path.display()
            ),
        };
    }
    let Some(token) = token else {
        bail!(
            "node/{name} has not joined yet: pass --join-token (or SHOAL_JOIN_TOKEN) with the cluster's join token (shoal server writes it to DATA_DIR/join-token) or a credential from `shoal create node {name}`"
        );
    };
    let credential = match shoal_server::credential_node(token) {
        Some(n) if n == name => token.to_string(),
        Some(n) => bail!("--join-token is the credential of node/{n}, not node/{name}"),
        None => join(servers, name, token, tls).await?,
    };
    crate::settings::ensure_secret(&path, Some(&credential))
}

/// Refuses to start with a credential the servers revoked (the node was removed, or its
/// credential replaced); a server that cannot be reached says nothing either way.
async fn still_valid(
    servers: &[String],
    name: &str,
    credential: &str,
    path: &Path,
    tls: &ClientTls,
) -> anyhow::Result<()> {
    for server in servers {
        match Client::with_tls(server, Some(credential.to_string()), tls)
            .max_upload()
            .await
        {
            Ok(_) => return Ok(()),
            Err(ClientError::Api { status: 401, .. }) => bail!(
                "the servers no longer accept node/{name}'s credential in {} (the node was removed with shoal delete node, or its credential replaced); remove that file and start with --join-token to join again",
                path.display()
            ),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Asks the servers, in turn, for node `name`'s credential with the join token.
async fn join(
    servers: &[String],
    name: &str,
    token: &str,
    tls: &ClientTls,
) -> anyhow::Result<String> {
    let clients: Vec<Client> = servers
        .iter()
        .map(|s| Client::with_tls(s, Some(token.to_string()), tls))
        .collect();
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut unreachable = Vec::new();
        for client in &clients {
            match client.join_node(name, false).await {
                Ok(credential) => return Ok(credential),
                Err(e @ ClientError::Unreachable { .. }) => unreachable.push(e.to_string()),
                Err(e) => bail!("node/{name} cannot join through {}: {e}", client.server()),
            }
        }
        tracing::warn!(
            "node/{name}: waiting for a server to join through: {}",
            unreachable.join("; ")
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
