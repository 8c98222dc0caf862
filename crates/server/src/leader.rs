//! Leader election among servers: one at a time runs the cluster's controllers.
//!
//! The leader holds `cluster/leader`, written with an etcd lease of [`TTL`] that it renews
//! every [`RENEW`]. When it dies or loses etcd, the lease expires and another server's create
//! succeeds. A leader that cannot renew stops its controllers, and every write its controllers
//! make is fenced by its leadership key's revision: once another server holds the key, a
//! deposed leader's writes fail instead of overwriting its successor's.

use crate::metrics::ServerMetrics;
use shoal_store::Etcd;
use std::sync::Arc;
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
/// `metrics` shows whether it leads.
pub async fn campaign<F, Fut>(
    etcd: Etcd,
    id: String,
    metrics: Arc<ServerMetrics>,
    shutdown: CancellationToken,
    lead: F,
) where
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
        metrics.set_leading(true);
        let leading = shutdown.child_token();
        let mut controllers =
            tokio::spawn(lead(etcd.fenced(LEADER_KEY, revision), leading.clone()));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RENEW) => {}
                // Controllers that end while this server leads (a panic) cannot be left dead
                // behind a live lease: step down, so a leader (this one again, or another)
                // starts them afresh.
                ended = &mut controllers => {
                    match ended {
                        Err(e) if e.is_panic() => tracing::error!(
                            "server {id}: the controllers panicked; stepping down so they restart"
                        ),
                        _ => tracing::error!(
                            "server {id}: the controllers stopped while leading; stepping down"
                        ),
                    }
                    let _ = etcd.revoke(lease).await;
                    pause(&shutdown).await;
                    break;
                }
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
        metrics.set_leading(false);
        if !controllers.is_finished() {
            let _ = controllers.await;
        }
        let _ = etcd.revoke(lease).await;
    }
}

/// Runs the controller `make` gives until `shutdown`, starting it again (after [`RENEW`])
/// whenever it panics: one bad pass never leaves a node or a cluster without its controller.
/// `name` says which in the log.
pub async fn supervise<F, Fut>(name: &str, shutdown: CancellationToken, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    while !shutdown.is_cancelled() {
        match tokio::spawn(make()).await {
            Err(e) if e.is_panic() => {
                tracing::error!("the {name} controller panicked; starting it again");
                pause(&shutdown).await;
            }
            _ => return,
        }
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(RENEW) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A controller run, boxed.
    type Run = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Starts counted runs of a controller that panics on its first run and then waits to be
    /// stopped; returns the channel each run's number arrives on.
    fn counted() -> (
        impl Fn(CancellationToken) -> Run + Clone,
        tokio::sync::mpsc::UnboundedReceiver<usize>,
    ) {
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let run = move |stop: CancellationToken| {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = tx.send(n);
            Box::pin(async move {
                if n == 1 {
                    panic!("a controller bug");
                }
                stop.cancelled().await;
            }) as Run
        };
        (run, rx)
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<usize>) -> Option<usize> {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the controller was not started again")
    }

    #[tokio::test]
    async fn a_supervised_controller_that_panics_is_started_again() {
        let (run, mut rx) = counted();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            supervise("test", stop.clone(), move || run(stop.clone())).await
        });
        assert_eq!(next(&mut rx).await, Some(1));
        assert_eq!(next(&mut rx).await, Some(2));
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_leader_whose_controllers_panic_steps_down_and_they_start_again() {
        let etcd = tokio::task::spawn_blocking(shoal_testkit::Etcd::start)
            .await
            .unwrap();
        let store = Etcd::new(&etcd.url()).unwrap();
        let (run, mut rx) = counted();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(campaign(
            store,
            "s1".into(),
            Arc::default(),
            shutdown.clone(),
            move |_, leading| run(leading),
        ));
        assert_eq!(next(&mut rx).await, Some(1));
        assert_eq!(next(&mut rx).await, Some(2));
        shutdown.cancel();
        task.await.unwrap();
        drop(etcd);
    }
}
