//! How close low-precision state keeps an optimizer to its f32 self, measured with
//! bitsandbytes' own protocol (`tests/test_optim.py::test_optimizer8bit`): parameters
//! p = 0.1·randn, gradients g = 0.01·randn each step, and, when re-syncing, the f32 reference
//! reset to the low-precision run's parameters and dequantized state before every step, so
//! that each step's own error is measured rather than their accumulation.
//!
//! The low-precision run is the CPU backend, which equals the GPU kernels bit for bit
//! (`tests/lowp.rs`); the reference is the f32 twin of the same rule.

use crate::backend::Backend;
use crate::cpu::{CpuOptimizer, twin_step_parallel};
use crate::error::Result;
use crate::optim::{GradDType, Optimizer, ParamDType, StateDType, StatePrecision};
use crate::uniform::DeviceStep;
use crate::verify::Data;

/// One fidelity run's worst step (re-synced) or its end (drift).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Fidelity {
    /// Largest per-step (or final) mean |p − p_ref|.
    pub mean_abs: f64,
    /// Largest per-step (or final) mean |p − p_ref| / (|p_ref| + 1e-9).
    pub mean_rel: f64,
    /// Largest number of state elements, in one state tensor at one step, outside
    /// |s − s_ref| ≤ 3e-3 + 1e-3·|s_ref| (bitsandbytes' `isclose` bound).
    pub state_outliers: usize,
    /// Largest mean |s − s_ref| / max|s_ref| over the state tensors: the state's own error
    /// (re-synced: this step's rounding), relative to the tensor's scale.
    pub state_error: f64,
}

/// Runs `optimizer` with state type `dtype` (every size; threshold 0; its gradient type as it
/// is) and its all-f32 self over
/// `len` parameters for `steps` steps, re-syncing the reference before each step when
/// `resync`, and returns the worst step's errors (re-synced) or the errors after the last step
/// (not re-synced: the drift).
pub fn fidelity(
    optimizer: Optimizer,
    dtype: StateDType,
    len: usize,
    steps: u64,
    resync: bool,
    seed: u64,
) -> Result<Fidelity> {
    // The reference keeps everything in f32, gradients and parameters too: a variant that
    // reads half gradients or keeps bf16 parameters shows their rounding here as well.
    let reference = optimizer
        .with_state_precision(StatePrecision::f32())
        .with_grad_dtype(GradDType::F32)
        .with_param_dtype(ParamDType::F32);
    let lowp = optimizer.with_state_precision(StatePrecision { dtype, min_len: 0 });
    let mut data = Data::new(seed);
    let p0 = data.normal(len, 0.1);
    let mut run = CpuOptimizer::with_params(&crate::CpuContext::new(), lowp, &p0)?;
    let mut params = p0;
    let layout = reference.state_layout();
    let mut state: [Vec<f32>; 3] = Default::default();
    for slot in &layout.slots {
        state[slot.slot] = vec![slot.init; len];
    }
    let mut worst = Fidelity::default();
    for t in 1..=steps {
        if resync {
            params.copy_from_slice(run.params());
            for slot in &layout.slots {
                state[slot.slot] = run.read_state(slot.name)?;
            }
        }
        let grads = data.normal(len, 0.01);
        let uniform = reference.uniform(reference.lr(), t);
        let [a, b, c] = &mut state;
        twin_step_parallel(
            &reference,
            &uniform,
            &DeviceStep::NEUTRAL,
            &mut params,
            &grads,
            [a, b, c],
            &crate::CpuContext::new(),
        );
        run.write_grads(&grads)?;
        run.step()?;
        if resync || t == steps {
            let n = len as f64;
            let (mut abs, mut rel) = (0.0, 0.0);
            for (&p, &r) in run.params().iter().zip(&params) {
                let d = (f64::from(p) - f64::from(r)).abs();
                abs += d;
                rel += d / (f64::from(r).abs() + 1e-9);
            }
            let mut outliers = 0;
            for slot in &layout.slots {
                let got = run.read_state(slot.name)?;
                let bad = got
                    .iter()
                    .zip(&state[slot.slot])
                    .filter(|&(&x, &r)| {
                        let (x, r) = (f64::from(x), f64::from(r));
                        (x - r).abs().is_nan() || (x - r).abs() > 3e-3 + 1e-3 * r.abs()
                    })
                    .count();
                outliers = outliers.max(bad);
                let reference = &state[slot.slot];
                let scale = reference
                    .iter()
                    .fold(0.0f64, |m, &r| m.max(f64::from(r).abs()));
                let err: f64 = got
                    .iter()
                    .zip(reference)
                    .map(|(&x, &r)| (f64::from(x) - f64::from(r)).abs())
                    .sum::<f64>()
                    / n;
                worst.state_error = worst.state_error.max(err / scale.max(f64::MIN_POSITIVE));
            }
            worst.mean_abs = worst.mean_abs.max(abs / n);
            worst.mean_rel = worst.mean_rel.max(rel / n);
            worst.state_outliers = worst.state_outliers.max(outliers);
        }
    }
    Ok(worst)
}
