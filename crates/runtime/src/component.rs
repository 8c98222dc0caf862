//! Loaded HTTP components: compiled, linked, checked and pre-instantiated, shared by digest.

use crate::host::Host;
use crate::ticker::Ticker;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use wasmtime_wasi_http::handler::ProxyPre;

/// A component ready to serve: compiled, linked, checked and pre-instantiated. A cheap handle:
/// clones share one compiled component, which is released when the last handle goes (see
/// [`HttpApp`](crate::HttpApp) scaling to zero).
#[derive(Clone)]
pub struct HttpComponent {
    pub(crate) inner: Arc<Prepared>,
}

pub(crate) struct Prepared {
    /// Its `wasi:http@0.2` or `@0.3` handler, pre-instantiated.
    pub(crate) pre: ProxyPre<Host>,
    /// The engine it is compiled for.
    pub(crate) engine: wasmtime::Engine,
    /// Guest code of this component can run only while epochs tick.
    pub(crate) _ticker: Arc<Ticker>,
    /// What it was loaded from (to load it again after scaling to zero).
    pub(crate) artifact: crate::Artifact,
}

impl HttpComponent {
    /// `sha256:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.artifact.digest
    }

    /// The WASI version of the handler it exports.
    pub fn wasi(&self) -> Wasi {
        match self.inner.pre {
            ProxyPre::P2(_) => Wasi::P2,
            ProxyPre::P3(_) => Wasi::P3,
        }
    }
}

/// The WASI version a component is written against, by what it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wasi {
    /// WASI 0.2: `wasi:http/incoming-handler@0.2.x` or `wasi:cli/run@0.2.x` (or a wasip1
    /// module, run through 0.2).
    P2,
    /// WASI 0.3: `wasi:http/handler@0.3.x` or `wasi:cli/run@0.3.x`.
    P3,
}

impl Wasi {
    /// `0.2` or `0.3`.
    pub fn version(self) -> &'static str {
        match self {
            Wasi::P2 => "0.2",
            Wasi::P3 => "0.3",
        }
    }
}

/// The components loaded on a node, by digest, held weakly: apps with the same component share
/// it, and it is released when no app holds it.
#[derive(Default)]
pub(crate) struct LoadedSet {
    by_digest: Mutex<HashMap<String, Weak<Prepared>>>,
}

impl LoadedSet {
    pub(crate) fn get(&self, digest: &str) -> Option<Arc<Prepared>> {
        self.lock().get(digest).and_then(Weak::upgrade)
    }

    /// Registers `prepared`, unless another thread loaded the same digest meanwhile (then that
    /// one is shared and `prepared` dropped).
    pub(crate) fn insert(&self, prepared: Prepared) -> Arc<Prepared> {
        let mut map = self.lock();
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(existing) = map.get(&prepared.artifact.digest).and_then(Weak::upgrade) {
            return existing;
        }
        let inner = Arc::new(prepared);
        map.insert(inner.artifact.digest.clone(), Arc::downgrade(&inner));
        inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Prepared>>> {
        self.by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
