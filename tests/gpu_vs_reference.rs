//! Every optimizer variant on the GPU against its f32 twin (ULP bound) and the f64 oracle
//! (|x − ref| ≤ atol·scale + rtol·|ref|), after 1 and after 100 steps, at sizes that are not
//! multiples of the vec4 block or the workgroup and that cross chunk seams. The bounds and why
//! they are what they are: `wgoptim::verify`.
//!
//! Runs on a device with 1 MiB storage bindings (a seam every 262,144 floats) and 16 workgroups
//! per dimension (so chunks dispatch in two dimensions). The parameter and gradient buffers are
//! the caller's, with NaN poison after the last element: the poison must survive, and must not
//! leak into the results. `tests/real_limits.rs` repeats a step at the adapter's real limits.

mod common;

use common::{POISON, poisoned_buffer, read_raw};
use wgoptim::verify::{self, Data, run_against_reference};
use wgoptim::{Backend, GpuOptimizer};

const CHUNK: usize = (common::SMALL_BINDING_BYTES / 4) as usize;
// 2·CHUNK + 5 crosses two seams with a partial last block and dispatches in two dimensions;
// 1,000,003 (four chunks), run here until #14's 47 variants made this file a third of the test
// time, added no seam or dispatch shape it does not (`wgoptim verify` runs 1,000,003).
const SIZES: [usize; 6] = [1, 3, 255, 256, 257, 2 * CHUNK + 5];
const STEPS: u64 = 100;

/// Muon's sizes: its products cost O(m) per parameter, and one group's scratch space must
/// fit the small device's 1 MiB bindings; 4,099 is two 32 × 64 matrices, more than one piece.
const MUON_SIZES: [usize; 5] = [1, 3, 255, 257, 4099];

/// Muon, which takes matrices only, over `verify::shaped_layout`'s wide and tall matrix (one
/// row below 8 parameters), gaps zero, against the twin and the oracle as above.
fn run_muon(ctx: &wgoptim::GpuContext, name: &str, optimizer: wgoptim::Optimizer) {
    for &n in &MUON_SIZES {
        let layout = verify::shaped_layout(&optimizer, n).unwrap();
        let mut data = Data::new(n as u64);
        let mut params = vec![0.0; layout.len()];
        for t in layout.tensors() {
            params[t.range()].copy_from_slice(&data.vector(t.len));
        }
        let mut gpu = GpuOptimizer::with_layout(ctx, optimizer, layout).unwrap();
        gpu.write_params(&params).unwrap();
        let reports =
            run_against_reference(&mut gpu, &params, STEPS, &[1, STEPS], n as u64 + 1).unwrap();
        for r in &reports {
            assert!(
                r.diff.passes(r.steps),
                "{name} n={n} after {} steps: {:?}",
                r.steps,
                r.diff
            );
        }
    }
}

fn run(name: &str) {
    let Some(ctx) = common::small() else { return };
    let optimizer = verify::variants()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, o)| o)
        .unwrap_or_else(|| panic!("no variant {name}"));
    if optimizer.kernel() == wgoptim::Kernel::Muon {
        return run_muon(&ctx, name, optimizer);
    }
    for (k, &n) in SIZES.iter().enumerate() {
        let seed = 1000 * k as u64 + n as u64;
        let params = Data::new(seed).vector(n);
        let param_buffer = poisoned_buffer(&ctx, &params, 64);
        let grad_buffer = poisoned_buffer(&ctx, &vec![0.0; n], 64);
        if optimizer.kernel().shaped_state() && 4 * n as u64 > common::SMALL_BINDING_BYTES {
            // Adafactor over one vector binds its n averages whole: past one binding, refused.
            let refused = GpuOptimizer::adopt(&ctx, optimizer, param_buffer, grad_buffer, n);
            assert!(
                matches!(refused, Err(wgoptim::Error::InvalidShape(_))),
                "{name} n={n}: expected InvalidShape"
            );
            continue;
        }
        let mut gpu = GpuOptimizer::adopt(
            &ctx,
            optimizer,
            param_buffer.clone(),
            grad_buffer.clone(),
            n,
        )
        .unwrap();
        assert_eq!(
            gpu.chunks().len(),
            n.div_ceil(CHUNK),
            "{name} n={n}: chunk count"
        );
        if n > CHUNK {
            assert!(
                gpu.chunks()[0].workgroups[1] > 1,
                "{name} n={n}: expected a 2-D dispatch"
            );
        }
        let reports =
            run_against_reference(&mut gpu, &params, STEPS, &[1, STEPS], seed + 1).unwrap();
        for r in &reports {
            assert!(
                r.diff.passes(r.steps),
                "{name} n={n} after {} steps: {:?} (twin bound {} ULP)",
                r.steps,
                r.diff,
                verify::twin_ulp_bound(r.steps)
            );
        }
        for (what, buffer) in [("parameters", &param_buffer), ("gradients", &grad_buffer)] {
            let raw = read_raw(&ctx, buffer);
            let bad = raw[n..]
                .iter()
                .filter(|x| x.to_bits() != POISON.to_bits())
                .count();
            assert_eq!(
                bad, 0,
                "{name} n={n}: {bad} poisoned {what} elements past the end were written"
            );
        }
        for slot in optimizer.state_layout().slots {
            let raw = read_raw(&ctx, gpu.state_buffer(slot.name).unwrap());
            assert!(
                raw[n..].iter().all(|&x| x == slot.init),
                "{name} n={n}: padding of {} was written",
                slot.name
            );
        }
        assert_eq!(gpu.steps(), STEPS);
    }
}

macro_rules! variant_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $( #[test] fn $test() { run($name); } )*

        #[test]
        fn every_variant_has_a_test() {
            let tested = [$($name),*];
            let all: Vec<&str> = verify::variants().into_iter().map(|(n, _)| n).collect();
            assert_eq!(tested.to_vec(), all);
        }
    };
}

variant_tests! {
    sgd => "sgd",
    sgd_weight_decay => "sgd-weight-decay",
    sgd_momentum => "sgd-momentum",
    sgd_momentum_dampening => "sgd-momentum-dampening",
    sgd_nesterov => "sgd-nesterov",
    sgd_maximize => "sgd-maximize",
    rmsprop => "rmsprop",
    rmsprop_centered => "rmsprop-centered",
    rmsprop_momentum => "rmsprop-momentum",
    rmsprop_centered_momentum => "rmsprop-centered-momentum",
    rmsprop_maximize => "rmsprop-maximize",
    adam => "adam",
    adam_l2 => "adam-l2",
    adam_amsgrad => "adam-amsgrad",
    adam_maximize => "adam-maximize",
    adamw => "adamw",
    adamw_amsgrad => "adamw-amsgrad",
    adagrad => "adagrad",
    adagrad_decay => "adagrad-decay",
    adagrad_maximize => "adagrad-maximize",
    adamax => "adamax",
    adamax_l2 => "adamax-l2",
    adamax_maximize => "adamax-maximize",
    radam => "radam",
    radam_l2 => "radam-l2",
    radam_decoupled => "radam-decoupled",
    adadelta => "adadelta",
    adadelta_l2 => "adadelta-l2",
    adadelta_maximize => "adadelta-maximize",
    nadam => "nadam",
    nadam_l2 => "nadam-l2",
    nadam_decoupled => "nadam-decoupled",
    rprop => "rprop",
    rprop_bounds => "rprop-bounds",
    rprop_maximize => "rprop-maximize",
    asgd => "asgd",
    asgd_averaging => "asgd-averaging",
    asgd_maximize => "asgd-maximize",
    lion => "lion",
    lion_decay => "lion-decay",
    lion_maximize => "lion-maximize",
    lamb => "lamb",
    lamb_no_decay => "lamb-no-decay",
    lamb_nvlamb => "lamb-nvlamb",
    adafactor => "adafactor",
    adafactor_decay => "adafactor-decay",
    adafactor_maximize => "adafactor-maximize",
    muon => "muon",
    muon_plain_rms => "muon-plain-rms",
}
