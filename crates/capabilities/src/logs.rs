//! Guest stdout and stderr, line by line into the workload's bounded log.

use crate::capability::{Capability, GrantError};
use bytes::Bytes;
use shoal_api::capabilities::logs;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_logs::{AppLog, MAX_LINE};
use shoal_runtime::{Grant, InstanceBuilder};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The logs capability: every workload's stdout and stderr go to its log (nothing to ask).
pub struct Logs;

/// Output into the log of whichever workload an instance belongs to.
struct Output;

#[async_trait::async_trait]
impl Capability for Logs {
    fn name(&self) -> &'static str {
        logs::NAME
    }

    async fn grant(
        &self,
        _owner: &ObjectRef,
        _spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        Ok(Some(Arc::new(Output)))
    }
}

impl Grant for Output {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        let log = instance.log().clone();
        instance
            .wasi()
            .stdout(LogStream::new(log.clone(), "stdout"))
            .stderr(LogStream::new(log, "stderr"));
    }
}

/// A guest output stream that appends complete lines to an app's log.
///
/// # Guarantees
/// At most [`MAX_LINE`] bytes of an unfinished line are buffered per stream; a longer line is
/// written out in pieces. What the guest writes past the app's log budget rotates older lines
/// away; the disk use of an app's log is bounded whatever the guest does.
#[derive(Clone)]
pub struct LogStream {
    log: Arc<AppLog>,
    stream: &'static str,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    /// A stream named `stream` (`stdout` or `stderr`) into `log`.
    pub fn new(log: Arc<AppLog>, stream: &'static str) -> Self {
        Self {
            log,
            stream,
            partial: Arc::default(),
        }
    }

    fn push(&self, mut bytes: &[u8]) {
        let mut partial = self.partial.lock().expect("log buffer poisoned");
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            partial.extend_from_slice(&bytes[..nl]);
            self.log.write_line(self.stream, &partial);
            partial.clear();
            bytes = &bytes[nl + 1..];
        }
        partial.extend_from_slice(bytes);
        while partial.len() >= MAX_LINE {
            let rest = partial.split_off(MAX_LINE);
            self.log.write_line(self.stream, &partial);
            *partial = rest;
        }
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        // The last clone flushes what is left of an unfinished line.
        if Arc::strong_count(&self.partial) == 1 {
            let partial = self.partial.lock().expect("log buffer poisoned");
            if !partial.is_empty() {
                self.log.write_line(self.stream, &partial);
            }
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
