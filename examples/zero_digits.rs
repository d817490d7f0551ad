//! The digits MLP trained data-parallel with the optimizer state sharded over MPI ranks
//! (ZeRO stage 1): every rank holds the model, computes the gradient of its own slice of each
//! mini-batch, and keeps and updates 1/N of the AdamW state. Rank 0 then trains the same model
//! in one process on the whole batches and prints how far the two loss curves are apart, and
//! every rank prints its state memory.
//!
//! ```text
//! cargo build --release --features mpi,demo --example zero_digits
//! mpirun -np 4 --oversubscribe target/release/examples/zero_digits [--steps 300] [--cpu-threads 1]
//! ```
//! (as root, add `--allow-run-as-root`.)

#[path = "common/arg.rs"]
mod arg;

use arg::arg;
use mpi::traits::*;
use ndarray::Axis;
use wgoptim::demo::classify::{Model, evaluate, init};
use wgoptim::demo::data::{Dataset, digits};
use wgoptim::zero::ZeroOptimizer;
use wgoptim::{Adam, Backend, CpuContext, CpuOptimizer, GradientControl, ParamGroup};

const BATCH: usize = 64;
const MODEL: Model = Model::Mlp { hidden: 32 };

fn rows(data: &Dataset, idx: &[usize]) -> Dataset {
    Dataset {
        name: data.name.clone(),
        x: data.x.select(Axis(0), idx),
        y: idx.iter().map(|&i| data.y[i]).collect(),
        classes: data.classes,
    }
}

fn main() -> wgoptim::Result<()> {
    let universe = mpi::initialize().ok_or(wgoptim::Error::Mpi("MPI initialised twice".into()))?;
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let steps = arg("--steps", 300);
    let cpu = CpuContext::with_threads(arg("--cpu-threads", 1))?;
    let (train, test) = digits()?.split(0.2, 5);
    if !BATCH.is_multiple_of(size) {
        return Err(wgoptim::Error::Argument(format!(
            "the batch of {BATCH} must split evenly over {size} ranks"
        )));
    }

    // The model's tensors in one group; the sharded optimizer packs them.
    let tensors = MODEL.layout(train.x.ncols(), train.classes)?;
    let mut group = ParamGroup::new(Adam::adamw().lr(0.01));
    for t in tensors.tensors() {
        group = group.tensor(&t.name, &t.shape);
    }
    let groups = vec![group];
    let control = GradientControl {
        max_norm: Some(1.0),
        ..Default::default()
    };
    let mut zero = ZeroOptimizer::with_groups(&world, groups.clone(), |g| {
        CpuOptimizer::with_groups(&cpu, g)
    })?;
    zero.set_gradient_control(Some(control))?;
    let layout = zero.layout().clone();
    zero.write_params(&init(&layout, 11))?;

    // Batch b is rows [b·64, (b+1)·64) of the training set (cycled); rank r takes the r-th
    // of N equal slices of it.
    let batch = |step: usize| -> Vec<usize> {
        let n = train.y.len();
        (0..BATCH).map(|i| (step * BATCH + i) % n).collect()
    };
    let every = (steps / 12).max(1);
    let mut grads = vec![0.0f32; layout.len()];
    let mut curve = Vec::new();
    let mut comm = 0.0f64;
    let mut update = 0.0f64;
    for step in 0..steps {
        let idx = batch(step);
        let slice = BATCH / size;
        let mine = rows(&train, &idx[rank * slice..(rank + 1) * slice]);
        evaluate(MODEL, &layout, zero.params(), &mine, Some(&mut grads))?;
        zero.step(&grads)?;
        let t = zero.last_times();
        comm += t.communication().as_secs_f64();
        update += t.computation().as_secs_f64();
        if (step + 1) % every == 0 || step + 1 == steps {
            let (loss, _) = evaluate(MODEL, &layout, zero.params(), &train, None)?;
            curve.push((step + 1, loss));
        }
    }
    let (_, accuracy) = evaluate(MODEL, &layout, zero.params(), &test, None)?;

    // Memory per rank, from the local optimizer's allocations.
    let mut states = vec![0u64; size];
    world.all_gather_into(&zero.state_bytes(), &mut states[..]);
    if rank == 0 {
        let one = CpuOptimizer::with_groups(&cpu, groups.clone())?;
        let whole = one.state_bytes();
        println!(
            "{} parameters, AdamW state {whole} bytes unsharded (1/{size}: {})",
            layout.len(),
            whole / size as u64
        );
        for (r, bytes) in states.iter().enumerate() {
            println!(
                "rank {r}/{size}: state {bytes} bytes = {:.3} of unsharded, shard {:?}",
                *bytes as f64 / whole as f64,
                {
                    let s = r * zero.shard().len();
                    s..s + zero.shard().len()
                }
            );
        }

        // The same training in one process, on the whole batches.
        let mut one = one;
        one.set_gradient_control(Some(control))?;
        one.write_params(&init(&layout, 11))?;
        let mut reference = Vec::new();
        for step in 0..steps {
            let whole = rows(&train, &batch(step));
            let params = one.read_params()?;
            evaluate(MODEL, &layout, &params, &whole, Some(&mut grads))?;
            one.write_grads(&grads)?;
            one.step()?;
            if (step + 1) % every == 0 || step + 1 == steps {
                let (loss, _) = evaluate(MODEL, &layout, &one.read_params()?, &train, None)?;
                reference.push(loss);
            }
        }
        println!(
            "{:>6} {:>14} {:>14}",
            "step",
            format!("loss ({size} ranks)"),
            "loss (1 process)"
        );
        let mut worst = 0.0f64;
        for ((step, loss), one) in curve.iter().zip(&reference) {
            println!("{step:>6} {loss:>14.6} {one:>14.6}");
            worst = worst.max((loss - one).abs());
        }
        println!("max |loss difference| vs one process: {worst:.3e}");
        println!("test accuracy: {:.1}%", 100.0 * accuracy);
        println!(
            "rank 0 per step: communication {:.3} ms, update {:.3} ms",
            1e3 * comm / steps as f64,
            1e3 * update / steps as f64
        );
    }
    Ok(())
}
