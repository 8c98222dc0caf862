//! What the runtime measures of the node: compiles, hits of the compile cache, and its
//! engines' pooled instance slots.

use crate::Runtime;
use shoal_metrics::{Counter, Exposition, Histogram, Kind};
use std::time::Instant;

/// The runtime's own counts.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Compiles (in this process or a child), successful or not, and how long each took.
    pub(crate) compiles: Histogram,
    /// Loads the compile cache answered.
    pub(crate) cache_hits: Counter,
}

/// Counts the time from `started` into a histogram when dropped: on every way out of a
/// compile.
pub(crate) struct Timed<'a> {
    histogram: &'a Histogram,
    started: Instant,
}

impl<'a> Timed<'a> {
    pub(crate) fn new(histogram: &'a Histogram, started: Instant) -> Self {
        Self { histogram, started }
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed());
    }
}

impl Runtime {
    /// Writes the node's runtime families: compiles and their durations, compile cache hits,
    /// and the instance slots of each engine's pool (in use, and warm: used before, free now).
    pub fn write_metrics(&self, out: &mut Exposition) {
        let name = "shoal_node_compile_duration_seconds";
        out.family(
            name,
            "Components and modules compiled on this node (cache misses), and how long each took.",
            Kind::Histogram,
        );
        out.histogram(name, "", &self.stats.compiles);
        let name = "shoal_node_compile_cache_hits_total";
        out.family(
            name,
            "Loads of compiled code the node's compile cache answered.",
            Kind::Counter,
        );
        out.sample(name, "", &[], self.stats.cache_hits.get());
        let engines = [("0.2", &self.sync), ("0.3", &self.concurrent)];
        let pools: Vec<_> = engines
            .iter()
            .filter_map(|(wasi, flavor)| Some((*wasi, flavor.engine.pooling_allocator_metrics()?)))
            .collect();
        let name = "shoal_node_instances";
        out.family(
            name,
            "Component instances alive now, by the WASI version their engine serves.",
            Kind::Gauge,
        );
        for (wasi, pool) in &pools {
            out.sample(name, "", &[("wasi", wasi)], pool.component_instances());
        }
        let name = "shoal_node_memory_slots_in_use";
        out.family(
            name,
            "Linear memory slots of the pooling allocator in use now.",
            Kind::Gauge,
        );
        for (wasi, pool) in &pools {
            out.sample(name, "", &[("wasi", wasi)], pool.memories());
        }
        let name = "shoal_node_memory_slots_warm";
        out.family(
            name,
            "Linear memory slots free now that an instance used before (reused first).",
            Kind::Gauge,
        );
        for (wasi, pool) in &pools {
            out.sample(
                name,
                "",
                &[("wasi", wasi)],
                u64::from(pool.unused_warm_memories()),
            );
        }
        let name = "shoal_node_memory_resident_unused_bytes";
        out.family(
            name,
            "Bytes of free memory slots kept resident for the next instance (keep-resident).",
            Kind::Gauge,
        );
        for (wasi, pool) in &pools {
            out.sample(
                name,
                "",
                &[("wasi", wasi)],
                pool.unused_memory_bytes_resident(),
            );
        }
    }
}
