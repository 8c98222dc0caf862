//! Leader election among servers: one at a time runs the cluster's controllers.
//!
//! The leader holds `cluster/leader`, written with an etcd lease of [`TTL`] that it renews
//! every [`RENEW`]. When it dies or loses etcd, the lease expires and another server's create
//! succeeds. A leader that cannot renew stops its controllers, and every write its controllers
//! make is fenced by its leadership key's revision: once another server holds the key, a
//! deposed leader's writes fail instead of overwriting its successor's.

use shoal_store::Etcd;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The key the leader holds.
pub const LEADER_KEY: &str = shoal_store::raw::LEADER;
/// Lease time-to-live, in seconds.
pub const TTL: u64 = 2;
/// How often the leader renews (and followers try to take over).
pub const RENEW: Duration = Duration::from_millis(500);

/// Campaigns until `shutdown`: whenever this server (`id`) leads, runs `lead` with a store
/// fenced by its leadership (every write fails once another server leads) and a token
/// cancelled when it stops leading.
pub async fn campaign<F, Fut>(etcd: Etcd, id: String, shutdown: CancellationToken, lead: F)
where
    F: Fn(Etcd, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    while !shutdown.is_cancelled() {
        let lease = match etcd.grant_lease(TTL).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("leader election: {e}");
                pause(&shutdown).await;
                continue;
            }
        };
        let revision = match etcd
            .create_with_lease(LEADER_KEY, id.as_bytes(), lease)
            .await
        {
            Ok(Some(revision)) => revision,
            Ok(None) | Err(_) => {
                // Someone leads (or etcd is away): let this lease lapse, and look again.
                let _ = etcd.revoke(lease).await;
                pause(&shutdown).await;
                continue;
            }
        };
        tracing::info!("server {id} leads the cluster");
        let leading = shutdown.child_token();
        let controllers = tokio::spawn(lead(etcd.fenced(LEADER_KEY, revision), leading.clone()));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RENEW) => {}
            }
            match tokio::time::timeout(RENEW, etcd.keep_alive(lease)).await {
                Ok(Ok(true)) => {}
                _ => {
                    tracing::warn!("server {id} lost its leadership lease; its controllers stop");
                    break;
                }
            }
        }
        leading.cancel();
        let _ = controllers.await;
        let _ = etcd.revoke(lease).await;
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(RENEW) => {}
    }
}
