//! What the stores reached over HTTP share: etcd (through its gateway) and a node's store
//! through the servers (`shoal_client::RemoteStore`).

use crate::{StoreError, Watch, WatchEvent};
use std::time::Duration;

/// A client that never uses a proxy, verifies HTTPS servers as `tls` says, gives up
/// connecting after 2 s, and gives each request `timeout` (none for streamed watches).
///
/// # Errors
/// The HTTP stack cannot be set up.
pub fn client(
    timeout: Option<Duration>,
    tls: &shoal_tls::ClientTls,
) -> Result<reqwest::Client, StoreError> {
    let builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls.config())
        .no_proxy()
        .connect_timeout(Duration::from_secs(2));
    match timeout {
        Some(t) => builder.timeout(t),
        None => builder,
    }
    .build()
    .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// A [`Watch`] fed by a response streaming one message per line: `decode` turns each non-blank
/// line into events, and an error among them ends the watch. When the stream ends or breaks,
/// the watch ends with [`StoreError::Unavailable`] naming `source`, so its reader re-lists.
pub fn line_watch<F>(mut resp: reqwest::Response, source: &'static str, mut decode: F) -> Watch
where
    F: FnMut(&[u8]) -> Vec<Result<WatchEvent, StoreError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    let ended = StoreError::Unavailable(format!("{source} watch ended"));
                    let _ = tx.send(Err(ended)).await;
                    return;
                }
                Err(e) => {
                    let broke = StoreError::Unavailable(format!(
                        "{source} watch broke: {}",
                        root_cause(&e)
                    ));
                    let _ = tx.send(Err(broke)).await;
                    return;
                }
            };
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                for item in decode(&line) {
                    let fatal = item.is_err();
                    if tx.send(item).await.is_err() || fatal {
                        return;
                    }
                }
            }
        }
    });
    Watch::new(rx)
}

/// The innermost cause of an error, which says what actually failed (e.g. connection refused).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
