//! Bytes the CLI moves or has the server move, with progress (see `crate::progress`):
//! uploads of local components and trees, and pulls the server makes from registries.

use crate::progress::Transfers;
use anyhow::bail;
use shoal_api::pull::{PullEvent, PullRequest, SpinPull};
use shoal_api::{App, Digest, OciRef};
use shoal_client::Client;
use shoal_manifest::spin::Values;
use shoal_oci::Progress;

/// Uploads `bytes` unless the server has them; `limit` caches the server's upload limit.
pub async fn upload(
    client: &Client,
    bytes: Vec<u8>,
    limit: &mut Option<u64>,
) -> anyhow::Result<Digest> {
    let digest = Digest::of(&bytes);
    if client.has_blob(&digest).await? {
        return Ok(digest);
    }
    // Refuse before sending: a server cutting off a large body mid-upload shows as a broken pipe.
    let limit = match *limit {
        Some(l) => l,
        None => *limit.insert(client.max_upload().await?),
    };
    if bytes.len() as u64 > limit {
        bail!("{}", shoal_server::upload_too_large(limit));
    }
    let bars = Transfers::new("uploading");
    let id = digest.to_string();
    bars.start(&id, bytes.len() as u64);
    let reporter = bars.clone();
    let sent_id = id.clone();
    let stored = client
        .upload_blob_reported(bytes, move |n| reporter.advance(&sent_id, n))
        .await?;
    bars.finish(&id);
    Ok(stored)
}

/// Has the server pull the component `reference` names; returns the reference pinned to
/// the manifest digest it resolved to.
pub async fn pull_component(client: &Client, reference: &OciRef) -> anyhow::Result<OciRef> {
    let req = PullRequest {
        reference: reference.to_string(),
        spin: None,
    };
    match pull(client, &req).await? {
        PullEvent::Component { reference, .. } => {
            match shoal_api::ComponentRef::parse(&reference) {
                Ok(shoal_api::ComponentRef::Oci(pinned)) => Ok(pinned),
                _ => bail!("the server answered a pull with '{reference}', not an OCI reference"),
            }
        }
        PullEvent::Spin { .. } => bail!("{reference}: the server answered a Spin application"),
        _ => unreachable!("pull returns a result event"),
    }
}

/// Has the server pull the Spin application `reference` names and make its Apps (in
/// `namespace`, with the variables' `values`); prints its notes.
pub async fn pull_spin(
    client: &Client,
    reference: &str,
    namespace: &str,
    values: &Values,
) -> anyhow::Result<Vec<App>> {
    let req = PullRequest {
        reference: reference.to_string(),
        spin: Some(SpinPull {
            namespace: namespace.to_string(),
            variables: values.given.clone(),
            env: values.env.clone(),
        }),
    };
    match pull(client, &req).await {
        Ok(PullEvent::Spin { apps, notes, .. }) => {
            for note in notes {
                eprintln!("note: {reference}: {note}");
            }
            Ok(apps)
        }
        Ok(_) => {
            bail!("--spin {reference}: the server answered a component, not a Spin application")
        }
        Err(e) => bail!("--spin {reference}: {e}"),
    }
}

/// One pull, its events drawn as bars.
async fn pull(client: &Client, req: &PullRequest) -> anyhow::Result<PullEvent> {
    let bars = Transfers::new("pulling");
    let end = client
        .pull(req, |event| match event {
            PullEvent::Start { digest, total } => bars.start(digest, *total),
            PullEvent::Progress { digest, done } => bars.set(digest, *done),
            PullEvent::Finish { digest } => bars.finish(digest),
            _ => {}
        })
        .await?;
    Ok(end)
}
