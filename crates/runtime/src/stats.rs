//! What the runtime measures of the node: compiles, hits of the compile cache, and its
//! engines' pooled instance slots.

use crate::Runtime;
use shoal_metrics::{Counter, Exposition, Histogram, Kind};

/// The runtime's own counts.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Compiles (in this process or a child), successful or not, and how long each took.
    pub(crate) compiles: Histogram,
    /// Loads the compile cache answered.
    pub(crate) cache_hits: Counter,
}

impl Runtime {
    /// Writes the node's runtime families: compiles and their durations, compile cache hits,
    /// and the instance slots of each engine's pool (in use, and warm: used before, free now).
    pub fn write_metrics(&self, out: &mut Exposition) {
        out.single_histogram(
            "shoal_node_compile_duration_seconds",
            "Components and modules compiled on this node (cache misses), and how long each took.",
            &self.stats.compiles,
        );
        out.single(
            "shoal_node_compile_cache_hits_total",
            "Loads of compiled code the node's compile cache answered.",
            Kind::Counter,
            self.stats.cache_hits.get(),
        );
        // Snapshots are WASI 0.2 components: their pool's figures are added to `sync`'s.
        let engines = [
            ("0.2", &self.sync),
            ("0.3", &self.concurrent),
            ("0.2", &self.snapshot),
        ];
        let pools: Vec<_> = engines
            .iter()
            .filter_map(|(wasi, flavor)| Some((*wasi, flavor.engine.pooling_allocator_metrics()?)))
            .collect();
        type Read = fn(&wasmtime::PoolingAllocatorMetrics) -> u64;
        let families: [(&str, &str, Read); 4] = [
            (
                "shoal_node_instances",
                "Component instances alive now, by the WASI version their engine serves.",
                |p| p.component_instances(),
            ),
            (
                "shoal_node_memory_slots_in_use",
                "Linear memory slots of the pooling allocator in use now.",
                |p| p.memories() as u64,
            ),
            (
                "shoal_node_memory_slots_warm",
                "Linear memory slots free now that an instance used before (reused first).",
                |p| u64::from(p.unused_warm_memories()),
            ),
            (
                "shoal_node_memory_resident_unused_bytes",
                "Bytes of free memory slots kept resident for the next instance (keep-resident).",
                |p| p.unused_memory_bytes_resident() as u64,
            ),
        ];
        for (name, help, read) in families {
            out.family(name, help, Kind::Gauge);
            for wasi in ["0.2", "0.3"] {
                let pools = pools.iter().filter(|(w, _)| *w == wasi);
                let mut pools = pools.map(|(_, pool)| read(pool)).peekable();
                if pools.peek().is_some() {
                    out.sample(name, "", &[("wasi", wasi)], pools.sum::<u64>());
                }
            }
        }
    }
}
