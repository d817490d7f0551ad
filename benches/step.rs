//! criterion: one optimizer step (submit + device wait) per kernel family at 2^16, 2^20 and
//! 2^24 parameters, with throughput in the bytes a fused step must move.
//! `WGPU_BACKEND=vulkan cargo bench --bench step`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wgoptim::verify::{Data, variants};
use wgoptim::{Backend, GpuContext, GpuOptimizer};

fn step(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("no GPU adapter, nothing to benchmark: {e}");
            return;
        }
    };
    eprintln!("adapter: {}", ctx.describe());
    let names = ["sgd", "sgd-momentum", "rmsprop", "adam", "adamw", "adagrad"];
    let mut group = c.benchmark_group("step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, optimizer) in variants().into_iter().filter(|(n, _)| names.contains(n)) {
        for log2 in [16, 20, 24] {
            let n = 1usize << log2;
            let mut data = Data::new(1);
            let Ok(mut opt) = GpuOptimizer::with_params(&ctx, optimizer, &data.vector(n)) else {
                continue;
            };
            opt.write_grads(&data.gradients(n)).ok();
            group.throughput(Throughput::Bytes(
                (optimizer.bytes_moved_per_param() * n as f64) as u64,
            ));
            group.bench_with_input(BenchmarkId::new(name, format!("2^{log2}")), &n, |b, _| {
                b.iter(|| {
                    opt.step().ok();
                    ctx.wait().ok();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
