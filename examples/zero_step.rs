//! Times the sharded optimizer's step at one size: per rank, the median over the steps of the
//! communication (reduce-scatter, norm all-reduce, all-gather) and of the local update, and the
//! bytes each rank sends and receives per step.
//!
//! ```text
//! cargo build --release --features mpi --example zero_step
//! mpirun -np 4 --oversubscribe target/release/examples/zero_step --size 24 --steps 10 [--clip]
//! ```
//! `--size K` is 2^K parameters (AdamW on the CPU backend, one thread per rank). To measure the
//! bytes sent, add OpenMPI's monitoring to the mpirun line:
//! `--mca pml_monitoring_enable 2 --mca pml_monitoring_enable_output 3 --mca
//! pml_monitoring_filename /tmp/zero` writes each rank's bytes sent to each peer (lines `C`) into
//! `/tmp/zero.{rank}.prof`.

#[path = "common/arg.rs"]
mod arg;

use arg::arg;
use mpi::traits::*;
use wgoptim::zero::ZeroOptimizer;
use wgoptim::{Adam, CpuContext, CpuOptimizer, GradientControl};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> wgoptim::Result<()> {
    let universe = mpi::initialize().ok_or(wgoptim::Error::Mpi("MPI initialised twice".into()))?;
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let len = 1usize << arg("--size", 24);
    let steps = arg("--steps", 10).max(1);
    let clip = std::env::args().any(|a| a == "--clip");
    let cpu = CpuContext::with_threads(1)?;
    let mut zero = ZeroOptimizer::new(&world, Adam::adamw().lr(1e-3), len, |g| {
        CpuOptimizer::with_groups(&cpu, g)
    })?;
    if clip {
        zero.set_gradient_control(Some(GradientControl {
            max_norm: Some(1.0),
            ..Default::default()
        }))?;
    }
    let params: Vec<f32> = (0..len).map(|i| (i % 97) as f32 * 1e-3).collect();
    zero.write_params(&params)?;
    let grads: Vec<f32> = (0..len).map(|i| ((i + rank) % 89) as f32 * 1e-4).collect();
    zero.step(&grads)?; // warm-up
    let (mut comm, mut update, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps {
        world.barrier();
        let start = std::time::Instant::now();
        zero.step(&grads)?;
        total.push(start.elapsed().as_secs_f64());
        let t = zero.last_times();
        comm.push(t.communication().as_secs_f64());
        update.push(t.computation().as_secs_f64());
    }
    let mine = [median(total), median(comm), median(update)];
    let mut all = vec![0.0f64; 3 * size];
    world.all_gather_into(&mine[..], &mut all[..]);
    if rank == 0 {
        let bytes = zero.bytes_sent_per_step();
        let formula = 2.0 * (size as f64 - 1.0) / size as f64 * (8 * len) as f64; // grads + params
        println!(
            "{len} parameters, AdamW, {size} rank(s), {steps} steps (+1 warm-up){}",
            if clip { ", clipping" } else { "" }
        );
        println!("rank  step ms  communication ms  norm + update ms");
        for r in 0..size {
            let m = &all[3 * r..3 * r + 3];
            println!(
                "{r:>4} {:>8.1} {:>17.1} {:>17.1}",
                1e3 * m[0],
                1e3 * m[1],
                1e3 * m[2]
            );
        }
        println!(
            "bytes per rank per step (mean over ranks): sends {bytes}, sends + receives {} \
             (padded to {} elements); 2·(N−1)/N·(gradient + parameter bytes) = {formula:.0}",
            2 * bytes,
            size * zero.shard().len()
        );
        println!(
            "state per rank: {} bytes (AdamW unsharded: {} bytes)",
            zero.state_bytes(),
            8 * len
        );
    }
    Ok(())
}
