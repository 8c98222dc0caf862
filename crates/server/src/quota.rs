//! Namespace quotas at apply time: apps, jobs, the memory apps reserve, and the bytes of the
//! components and file trees objects use. What a namespace uses is computed from its objects
//! when it is asked for (an apply, `describe namespace`), never counted apart from them, so it
//! cannot drift. Applies on one server are serialised by its apply lock; two servers applying
//! into one namespace at the same instant can both pass a check (a quota is a fence against
//! mistakes and greed, not a transaction). The instance and key-value quotas are the nodes'.

use crate::{ApiError, ApiState};
use shoal_api::{App, Digest, FileMount, Job, Namespace, NamespaceStatus, Node, Replicas};
use std::collections::BTreeSet;

/// What one object adds to its namespace's usage.
#[derive(Debug, Default, Clone)]
pub(crate) struct Footprint {
    apps: u64,
    jobs: u64,
    memory: u64,
    blobs: BTreeSet<Digest>,
}

fn blobs_of(component: &shoal_api::ComponentRef, files: &[FileMount]) -> BTreeSet<Digest> {
    component
        .digest()
        .into_iter()
        .chain(files.iter().filter_map(|f| f.source.digest()))
        .cloned()
        .collect()
}

impl Footprint {
    /// An app's, in a cluster of `nodes` nodes (what `replicas: all` reserves on).
    pub(crate) fn app(app: &App, nodes: u64) -> Self {
        let replicas = match app.spec.placement.as_ref().and_then(|p| p.replicas) {
            Some(Replicas::Count(n)) => u64::from(n),
            Some(Replicas::All) => nodes.max(1),
            None => 1,
        };
        Self {
            apps: 1,
            memory: app.spec.limits.resolve().memory.saturating_mul(replicas),
            blobs: blobs_of(&app.spec.component, &app.spec.files),
            ..Self::default()
        }
    }

    /// A job's.
    pub(crate) fn job(job: &Job) -> Self {
        Self {
            jobs: 1,
            blobs: blobs_of(&job.spec.component, &job.spec.files),
            ..Self::default()
        }
    }

    fn add(&mut self, other: Self) {
        self.apps += other.apps;
        self.jobs += other.jobs;
        self.memory = self.memory.saturating_add(other.memory);
        self.blobs.extend(other.blobs);
    }
}

/// Which object an apply writes, left out of the usage it is checked against.
pub(crate) enum Applying<'a> {
    /// App `0`.
    App(&'a str),
    /// Job `0`.
    Job(&'a str),
}

/// The footprint of every object in `ns` but `except`.
async fn footprint(
    state: &ApiState,
    ns: &str,
    except: Option<&Applying<'_>>,
) -> Result<Footprint, ApiError> {
    let nodes = node_count(state).await?;
    let mut total = Footprint::default();
    for app in state.objects.list::<App>(Some(ns)).await?.0 {
        if !matches!(except, Some(Applying::App(n)) if *n == app.metadata.name) {
            total.add(Footprint::app(&app, nodes));
        }
    }
    for job in state.objects.list::<Job>(Some(ns)).await?.0 {
        if !matches!(except, Some(Applying::Job(n)) if *n == job.metadata.name) {
            total.add(Footprint::job(&job));
        }
    }
    Ok(total)
}

/// What `footprint` amounts to, blobs by their sizes here.
fn status(state: &ApiState, f: &Footprint) -> NamespaceStatus {
    NamespaceStatus {
        apps: f.apps,
        jobs: f.jobs,
        memory: f.memory,
        uploads: f
            .blobs
            .iter()
            .filter_map(|d| std::fs::metadata(state.blobs.path(d)).ok())
            .map(|m| m.len())
            .sum(),
    }
}

/// What namespace `ns`'s objects use now.
pub(crate) async fn usage(state: &ApiState, ns: &str) -> Result<NamespaceStatus, ApiError> {
    Ok(status(state, &footprint(state, ns, None).await?))
}

/// The app `nodes`, for [`Footprint::app`].
pub(crate) async fn node_count(state: &ApiState) -> Result<u64, ApiError> {
    Ok(state.objects.list::<Node>(None).await?.0.len() as u64)
}

/// Refuses (403) an apply of `applying` adding `adds` that would take namespace `ns` over a
/// quota, naming the quota and its usage.
pub(crate) async fn admit(
    state: &ApiState,
    ns: &Namespace,
    applying: Applying<'_>,
    adds: Footprint,
) -> Result<(), ApiError> {
    let quota = &ns.spec.quota;
    if quota.is_empty() {
        return Ok(());
    }
    let name = &ns.metadata.name;
    let mut after = footprint(state, name, Some(&applying)).await?;
    after.add(adds);
    let after = status(state, &after);
    let over = |what: &str, used: String, limit: String| {
        Err(ApiError::Forbidden(format!(
            "namespace/{name}: quota {what}: this apply needs {used} of {limit}; delete what it no longer needs, or ask an admin to raise spec.quota.{what}"
        )))
    };
    let mib = |b: u64| format!("{} MiB", b.div_ceil(1 << 20));
    if let Some(limit) = quota.apps
        && after.apps > limit
    {
        return over("apps", format!("{} apps", after.apps), limit.to_string());
    }
    if let Some(limit) = quota.jobs
        && after.jobs > limit
    {
        return over("jobs", format!("{} jobs", after.jobs), limit.to_string());
    }
    if let Some(limit) = &quota.memory
        && after.memory > limit.bytes()
    {
        return over("memory", mib(after.memory), limit.to_string());
    }
    if let Some(limit) = &quota.uploads
        && after.uploads > limit.bytes()
    {
        return over("uploads", mib(after.uploads), limit.to_string());
    }
    Ok(())
}
