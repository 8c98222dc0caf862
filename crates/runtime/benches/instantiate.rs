//! Per-request overhead in process, for the C hello component, with and without the pooling
//! allocator: instantiate + drop alone (`HttpApp::instantiate_once`), and a whole request — a
//! fresh instance handles one GET and is dropped — through the same `HttpApp::handle` the
//! ingress calls; and a whole request with `spec.reuse`. Prints p50/p99/mean of each
//! operation's latency (a request's ends with its response body; its instance is torn down
//! after that) and "all in": the loop's wall time per operation, teardown included.
//!
//!     cargo bench -p shoal-runtime --bench instantiate
//!
//! With `SHOAL_BENCH_ONLY_REQUEST=1`, only the pooled fresh request runs (e.g. under `perf
//! record --call-graph dwarf`).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use shoal_runtime::{
    Artifact, Grants, HttpApp, Limits, RequestBody, Reuse, Runtime, RuntimeConfig, Serving,
    Workload,
};
use std::path::Path;
use std::time::{Duration, Instant};

const WARMUP: usize = 2_000;
const REQUESTS: usize = 20_000;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let component = root.join("examples/hello-c/hello.wasm");
    println!("C hello, {REQUESTS} operations each, one thread:\n");
    println!("| allocator | operation | p50 | p99 | mean | all in |");
    println!("|---|---|---|---|---|---|");
    for (pooling, op) in [
        (true, Op::Instantiate),
        (false, Op::Instantiate),
        (true, Op::Request),
        (false, Op::Request),
        (true, Op::ReusedRequest),
    ] {
        // For a profiler: only the pooled fresh request.
        let only_request = std::env::var_os("SHOAL_BENCH_ONLY_REQUEST").is_some();
        if only_request && !(pooling && op == Op::Request) {
            continue;
        }
        let (p50, p99, mean, all_in) = measure(&component, pooling, op);
        let name = if pooling { "pooling" } else { "on-demand" };
        let op = match op {
            Op::Instantiate => "instantiate + drop",
            Op::Request => "request, fresh instance",
            Op::ReusedRequest => "request, spec.reuse",
        };
        println!("| {name} | {op} | {p50:.1?} | {p99:.1?} | {mean:.1?} | {all_in:.1?} |");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Instantiate,
    Request,
    ReusedRequest,
}

fn measure(component: &Path, pooling: bool, op: Op) -> (Duration, Duration, Duration, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = std::sync::Arc::new(
        Runtime::new(
            RuntimeConfig {
                max_instances: 16,
                cache_dir: dir.path().join("compiled"),
                busy_threads: 1,
                pooling,
                keep_resident: 64 << 20,
                absent_imports: shoal_runtime::AbsentImports::none(),
                compile_limits: None,
            },
            |_, _| Ok(()),
        )
        .expect("runtime"),
    );
    let artifact = Artifact {
        digest: "sha256:bench".into(),
        path: component.to_path_buf(),
        snapshot: false,
    };
    let loaded = runtime
        .load_http(&artifact)
        .expect("the hello component loads");
    let logs = shoal_logs::LogDir::open(dir.path().join("logs"), 1 << 20).expect("log dir");
    let workload = Workload::new(
        "app/bench".into(),
        logs.app("default", "bench"),
        Grants::default(),
        std::sync::Arc::new(shoal_metrics::AppMetrics::new("default", "bench")),
    );
    // The defaults of an App's limits, and a fresh instance per request unless reused.
    let serving = Serving {
        limits: Limits {
            memory: 128 << 20,
            cpu: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            concurrency: 100,
        },
        reuse: (op == Op::ReusedRequest).then_some(Reuse {
            max_requests: 1_000_000,
            max_concurrent: 1,
        }),
        idle_after: None,
        shared: None,
    };
    let app = HttpApp::new(workload, serving, loaded.component, &runtime);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut all_in = Instant::now();
        for i in 0..WARMUP + REQUESTS {
            if i == WARMUP {
                all_in = Instant::now();
            }
            let start = Instant::now();
            if op == Op::Instantiate {
                app.instantiate_once().await.expect("instantiates");
                if i >= WARMUP {
                    times.push(start.elapsed());
                }
                continue;
            }
            let req = http::Request::get("http://bench/")
                .body(RequestBody::new(
                    Empty::<Bytes>::new(),
                    1 << 20,
                    Duration::from_secs(10),
                ))
                .expect("request");
            let resp = app.handle(req).await;
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            assert!(!body.is_empty());
            if i >= WARMUP {
                times.push(start.elapsed());
            }
            // Let the request's task end (and, with reuse, give its instance back) untimed,
            // as it would between two requests on a busy ingress thread.
            tokio::task::yield_now().await;
        }
        let all_in = all_in.elapsed() / REQUESTS as u32;
        times.sort();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        (
            times[times.len() / 2],
            times[times.len() * 99 / 100],
            mean,
            all_in,
        )
    })
}
