//! The loop both node controllers run (the app agent and the job controller): watch one kind
//! of object, take in changes, reports of work they started, and their own timers, and
//! reconcile each object any of them touched. Level-triggered: a reconcile looks only at the
//! object as it is and what the node knows, never at what woke it.

use crate::watch::{Change, watch};
use shoal_store::{ObjectKey, Objects, Resource};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A level-triggered controller of objects of kind [`Controller::Object`].
pub(crate) trait Controller: Send + 'static {
    /// The kind it watches.
    type Object: Resource;
    /// What work it started reports when it ends.
    type Report: Send + 'static;

    /// Takes in a change of the watched objects; returns the objects to reconcile.
    fn observe(&mut self, change: Change<Self::Object>) -> Vec<ObjectKey>;

    /// Takes in the report of work that ended; returns the objects to reconcile.
    fn report(
        &mut self,
        report: Self::Report,
        work: &Work<Self::Report>,
    ) -> impl Future<Output = Vec<ObjectKey>> + Send;

    /// When it wants to look again if nothing else happens.
    fn next_wake(&self) -> Option<Instant>;

    /// That time has come; returns the objects to reconcile.
    fn wake(&mut self, now: Instant) -> impl Future<Output = Vec<ObjectKey>> + Send;

    /// Brings one object towards its spec; idempotent.
    fn reconcile(
        &mut self,
        key: &ObjectKey,
        work: &Work<Self::Report>,
    ) -> impl Future<Output = ()> + Send;

    /// Housekeeping after each round of reconciles.
    fn settle(&mut self) {}
}

/// Starts work for a controller; its end comes back as a report.
pub(crate) struct Work<R> {
    reports: mpsc::Sender<R>,
}

impl<R: Send + 'static> Work<R> {
    /// Runs `work` on its own task, its result reported back to the controller. Dropping
    /// (or aborting) the handle stops the work; no report comes then.
    pub(crate) fn spawn(&self, work: impl Future<Output = R> + Send + 'static) -> JoinHandle<()> {
        let reports = self.reports.clone();
        tokio::spawn(async move {
            let report = work.await;
            let _ = reports.send(report).await;
        })
    }
}

/// Runs `controller` on `objects` until `shutdown` is cancelled.
pub(crate) async fn run<C: Controller>(
    objects: Objects,
    mut controller: C,
    shutdown: CancellationToken,
) {
    let (changes_tx, mut changes) = mpsc::channel(1024);
    let (reports_tx, mut reports) = mpsc::channel(1024);
    let watcher = tokio::spawn(watch::<C::Object, _>(
        objects,
        changes_tx,
        std::convert::identity,
        shutdown.clone(),
    ));
    let work = Work {
        reports: reports_tx,
    };
    loop {
        let next_wake = controller.next_wake();
        let touched = tokio::select! {
            _ = shutdown.cancelled() => break,
            change = changes.recv() => match change {
                Some(change) => controller.observe(change),
                None => break,
            },
            // `work` keeps a sender, so this channel never closes while the loop runs.
            Some(report) = reports.recv() => controller.report(report, &work).await,
            _ = sleep_until(next_wake) => controller.wake(Instant::now()).await,
        };
        for key in touched {
            controller.reconcile(&key, &work).await;
        }
        controller.settle();
    }
    watcher.abort();
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
