//! The CPU twin of a step over low-precision state: each block is decoded as the kernel's
//! `load_*` decodes it, updated by the family's f32 twin (the same `update`, unchanged), and
//! encoded as `store_*` and `finish_*` encode it (bf16 rounding with the same random bits; int8
//! with the block's new absmax); bf16 parameters are written back as `param_bf16.wgsl` writes
//! them. f32 state and parameters take the plain twin path.

use super::{CpuContext, TASK_ELEMENTS, twin_slices, twin_step_parallel};
use crate::optim::{Optimizer, ParamDType, Rounding, StateSlot};
use crate::precision::{
    BLOCK, PARAM_STREAM_SLOT, StoredSlice, StoredState, bf16_bits, bf16_value, random_bits_in,
    stream,
};
use crate::uniform::{DeviceStep, StepUniform};

/// One step of `optimizer` over a group whose first element is element `first` of the flat
/// parameter space, with its state in stored form (`StoredState::None` for unused slots), split
/// into tasks on `ctx`'s threads. Bit-identical whatever the thread
/// count: every block is decoded, updated and encoded on its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stored_step(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    first: usize,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [StoredState; 3],
    ctx: &CpuContext,
) {
    let layout = optimizer.state_layout();
    let mut slots: [Option<StateSlot>; 3] = [None; 3];
    for slot in &layout.slots {
        slots[slot.slot] = Some(*slot);
    }
    let f32_params = optimizer.param_dtype() != ParamDType::Bf16;
    if let [a, b, c] = state
        && f32_params
        && [&*a, &*b, &*c]
            .iter()
            .all(|s| matches!(s, StoredState::None | StoredState::F32(_)))
    {
        fn f32s(s: &mut StoredState) -> &mut [f32] {
            match s {
                StoredState::F32(v) => v,
                _ => &mut [],
            }
        }
        twin_step_parallel(
            optimizer,
            step,
            dev,
            params,
            grads,
            [f32s(a), f32s(b), f32s(c)],
            ctx,
        );
        return;
    }
    use rayon::prelude::*;
    let tasks = params.len().div_ceil(TASK_ELEMENTS);
    let [a, b, c] = state;
    fn split(s: &mut StoredState, tasks: usize) -> Vec<StoredSlice<'_>> {
        s.as_slice_mut().chunks(TASK_ELEMENTS, tasks)
    }
    let parts: Vec<_> = params
        .chunks_mut(TASK_ELEMENTS)
        .zip(grads.chunks(TASK_ELEMENTS))
        .zip(
            split(a, tasks)
                .into_iter()
                .zip(split(b, tasks))
                .zip(split(c, tasks)),
        )
        .enumerate()
        .collect();
    let t = step.t.wrapping_add(dev.at_step.t);
    let run = || {
        parts
            .into_par_iter()
            .for_each(|(k, ((p, g), ((a, b), c)))| {
                let start = first + k * TASK_ELEMENTS;
                block_step(optimizer, step, dev, &slots, start, t, p, g, [a, b, c]);
            })
    };
    ctx.install(run)
}

/// One task: block by block, decode, update with the twin, encode.
#[allow(clippy::too_many_arguments)]
fn block_step(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    slots: &[Option<StateSlot>; 3],
    first: usize,
    t: u32,
    params: &mut [f32],
    grads: &[f32],
    mut state: [StoredSlice<'_>; 3],
) {
    let mut scratch = [[0.0f32; BLOCK]; 3];
    // The parameters' random stream of this step (bf16 parameters only), hashed once.
    let param_stream =
        (optimizer.param_dtype() == ParamDType::Bf16).then(|| stream(t, PARAM_STREAM_SLOT));
    for start in (0..params.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(params.len());
        let n = end - start;
        for (k, slot) in slots.iter().enumerate() {
            if let Some(slot) = slot {
                state[k].decode_range(slot.non_negative, start..end, &mut scratch[k][..n]);
            }
        }
        let [s0, s1, s2] = &mut scratch;
        fn used(on: bool, s: &mut [f32; BLOCK], n: usize) -> &mut [f32] {
            if on { &mut s[..n] } else { &mut [] }
        }
        let on = |k: usize| slots[k].is_some();
        twin_slices(
            optimizer,
            step,
            dev,
            &mut params[start..end],
            &grads[start..end],
            [used(on(0), s0, n), used(on(1), s1, n), used(on(2), s2, n)],
        );
        let at = (first + start) as u32;
        for (k, slot) in slots.iter().enumerate() {
            if let Some(slot) = slot {
                state[k].encode_range(slot, start..end, &scratch[k][..n], at, t);
            }
        }
        if let Some(stream) = param_stream {
            // bf16 parameters: written back with stochastic rounding, as `param_bf16.wgsl`.
            for (k, p) in params[start..end].iter_mut().enumerate() {
                let r = random_bits_in(stream, at.wrapping_add(k as u32));
                *p = bf16_value(bf16_bits(*p, Rounding::Stochastic, r));
            }
        }
    }
}
