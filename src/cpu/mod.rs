//! The CPU reference: for each shader an f32 twin (`update`, the same arithmetic in the same
//! order, one element at a time) and an f64 oracle (`oracle`, SEMANTICS.md's rule computed from
//! the hyperparameters alone, sharing nothing with the kernels but the equations).

// The twins are written as the WGSL is (`g = g + λ·p`), so the two read line for line.
#![allow(clippy::assign_op_pattern)]

pub mod adadelta;
pub mod adafactor;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod asgd;
pub mod lamb;
pub mod lion;
pub mod muon;
pub mod rmsprop;
pub mod rprop;
pub mod sgd;

use crate::backend::Progress;
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::uniform::{DeviceStep, StepUniform};

/// Applies `f(param, grad, state)` to every element. Empty state slices are unused slots: each
/// layout of used slots gets a loop of its own ([`slot_loop`]) in which an unused slot is a
/// local default, so that no memory is touched for it, the loop has no branch and no bounds
/// check, and the compiler can vectorize it (each element's arithmetic is the same, and the
/// twins never read an unused slot).
#[inline(always)]
fn for_each<T: Copy + Default>(
    params: &mut [T],
    grads: &[f32],
    state: [&mut [T]; 3],
    f: impl FnMut(&mut T, f32, &mut [T; 3]),
) {
    let n = state
        .iter()
        .filter(|s| !s.is_empty())
        .fold(params.len().min(grads.len()), |n, s| n.min(s.len()));
    let (params, grads) = (&mut params[..n], &grads[..n]);
    match state.each_ref().map(|s| !s.is_empty()) {
        [false, false, false] => slot_loop::<T, false, false, false>(params, grads, state, f),
        [true, false, false] => slot_loop::<T, true, false, false>(params, grads, state, f),
        [false, true, false] => slot_loop::<T, false, true, false>(params, grads, state, f),
        [true, true, false] => slot_loop::<T, true, true, false>(params, grads, state, f),
        [false, false, true] => slot_loop::<T, false, false, true>(params, grads, state, f),
        [true, false, true] => slot_loop::<T, true, false, true>(params, grads, state, f),
        [false, true, true] => slot_loop::<T, false, true, true>(params, grads, state, f),
        [true, true, true] => slot_loop::<T, true, true, true>(params, grads, state, f),
    }
}

/// Bytes of each vector one block of [`slot_loop`] updates: two cache lines.
const BLOCK_BYTES: usize = 128;

/// How far ahead of the block it updates [`slot_loop`] asks the CPU for each vector's cache
/// lines. The hardware prefetcher alone leaves a step with four or five streams short of the
/// memory's bandwidth on this project's machine: asking 2 KiB ahead made Adam and AdamW steps
/// 8–11% faster at 2^24 and 2^26 on 2 threads, and the others no slower (BENCHMARKS § The CPU
/// backend); 1 KiB and 4 KiB did less.
const PREFETCH_BYTES: usize = 2048;

/// [`for_each`]'s loop over `params.len()` elements with slots `A`, `B`, `C` used (their
/// slices at least that long) and the others held in a local default: blocks of
/// [`BLOCK_BYTES`], each first asking for the used vectors' lines [`PREFETCH_BYTES`] ahead. The
/// prefetch changes when bytes arrive, never which operations run: the bits are the twin's.
#[inline(always)]
fn slot_loop<T: Copy + Default, const A: bool, const B: bool, const C: bool>(
    params: &mut [T],
    grads: &[f32],
    [s0, s1, s2]: [&mut [T]; 3],
    mut f: impl FnMut(&mut T, f32, &mut [T; 3]),
) {
    fn part<T>(on: bool, s: &mut [T], r: std::ops::Range<usize>) -> &mut [T] {
        if on { &mut s[r] } else { Default::default() }
    }
    let n = params.len();
    let block = BLOCK_BYTES / std::mem::size_of::<T>();
    let ahead = PREFETCH_BYTES / std::mem::size_of::<T>();
    let mut start = 0;
    while start < n {
        let end = n.min(start + block);
        if start + ahead + block <= n {
            let later = start + ahead..start + ahead + block;
            prefetch(&params[later.clone()]);
            prefetch(&grads[later.clone()]);
            for (on, s) in [(A, &*s0), (B, &*s1), (C, &*s2)] {
                if on {
                    prefetch(&s[later.clone()]);
                }
            }
        }
        let r = start..end;
        let state = [
            part(A, s0, r.clone()),
            part(B, s1, r.clone()),
            part(C, s2, r.clone()),
        ];
        block_loop::<T, A, B, C>(&mut params[r.clone()], &grads[r], state, &mut f);
        start = end;
    }
}

/// Asks the CPU to bring `s`'s cache lines into its caches (a hint: nothing is read). `s` is
/// one block of [`slot_loop`], whose length is a constant, so that this loop unrolls.
#[inline(always)]
fn prefetch<T>(s: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let first = s.as_ptr().cast::<i8>();
        for line in 0..std::mem::size_of_val(s).div_ceil(64) {
            // SAFETY: the address lies inside `s`, and a prefetch reads nothing (SSE, which
            // every x86-64 CPU has).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first.add(line * 64)) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

/// [`slot_loop`]'s loop over one block: every element through `f`, with no branch and no
/// bounds check, so that the compiler vectorizes it.
#[inline(always)]
fn block_loop<T: Copy + Default, const A: bool, const B: bool, const C: bool>(
    params: &mut [T],
    grads: &[f32],
    [s0, s1, s2]: [&mut [T]; 3],
    f: &mut impl FnMut(&mut T, f32, &mut [T; 3]),
) {
    fn used<T>(on: bool, s: &mut [T], n: usize) -> &mut [T] {
        if on { &mut s[..n] } else { s }
    }
    let n = params.len();
    let grads = &grads[..n];
    let (a, b, c) = (used(A, s0, n), used(B, s1, n), used(C, s2, n));
    let z = T::default();
    for i in 0..n {
        let mut s = [
            if A { a[i] } else { z },
            if B { b[i] } else { z },
            if C { c[i] } else { z },
        ];
        f(&mut params[i], grads[i], &mut s);
        if A {
            a[i] = s[0];
        }
        if B {
            b[i] = s[1];
        }
        if C {
            c[i] = s[2];
        }
    }
}

/// One step of the f32 twins over whole vectors (empty vectors are unused state slots).
pub fn twin_step(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>; 3],
) {
    let [a, b, c] = state;
    twin_slices(optimizer, step, dev, params, grads, [a, b, c]);
}

/// Evaluates `$body` with `$name` bound to the variant flags `$v` as a literal, one copy of
/// `$body` per value: the twins' branches on the variant then fold away inside the element
/// loop, which the compiler can vectorize.
macro_rules! constant {
    ([bool; 2], $v:expr, $name:ident => $body:expr) => {{
        let v: [bool; 2] = $v;
        constant!(@pick [] [v[0], v[1]], $name => $body)
    }};
    // One branch per flag, each binding it as a literal; the body sits in every leaf.
    (@pick [$($done:literal),*] [], $name:ident => $body:expr) => {{
        let $name = [$($done),*];
        $body
    }};
    (@pick [$($done:literal),*] [$head:expr $(, $rest:expr)*], $name:ident => $body:expr) => {
        if $head {
            constant!(@pick [$($done,)* true] [$($rest),*], $name => $body)
        } else {
            constant!(@pick [$($done,)* false] [$($rest),*], $name => $body)
        }
    };
}

/// One step of the f32 twins over slices: the one place that dispatches to each family's
/// `update`.
#[inline(always)]
fn twin_slices(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    params: &mut [f32],
    grads: &[f32],
    state: [&mut [f32]; 3],
) {
    match optimizer {
        Optimizer::Sgd(o) => {
            constant!([bool; 2], o.variant(), v => for_each(params, grads, state, |p, g, s| {
                sgd::update(step, dev, v, p, g, s)
            }))
        }
        Optimizer::RmsProp(o) => {
            constant!([bool; 2], o.variant(), v => for_each(params, grads, state, |p, g, s| {
                rmsprop::update(step, dev, v, p, g, s)
            }))
        }
        Optimizer::Adam(o) => match o.amsgrad {
            true => for_each(params, grads, state, |p, g, s| {
                adam::update(step, dev, [true, false, false], p, g, s)
            }),
            false => for_each(params, grads, state, |p, g, s| {
                adam::update(step, dev, [false, false, false], p, g, s)
            }),
        },
        Optimizer::RAdam(_) => for_each(params, grads, state, |p, g, s| {
            adam::update(step, dev, [false, true, false], p, g, s)
        }),
        Optimizer::NAdam(_) => for_each(params, grads, state, |p, g, s| {
            adam::update(step, dev, [false, false, true], p, g, s)
        }),
        Optimizer::Adagrad(_) => for_each(params, grads, state, |p, g, s| {
            adagrad::update(step, dev, [], p, g, s)
        }),
        Optimizer::Adamax(_) => for_each(params, grads, state, |p, g, s| {
            adamax::update(step, dev, [], p, g, s)
        }),
        Optimizer::Adadelta(_) => for_each(params, grads, state, |p, g, s| {
            adadelta::update(step, dev, [], p, g, s)
        }),
        Optimizer::Rprop(_) => for_each(params, grads, state, |p, g, s| {
            rprop::update(step, dev, [], p, g, s)
        }),
        Optimizer::Asgd(_) => for_each(params, grads, state, |p, g, s| {
            asgd::update(step, dev, [], p, g, s)
        }),
        Optimizer::Lion(_) => for_each(params, grads, state, |p, g, s| {
            lion::update(step, dev, [], p, g, s)
        }),
        // Per tensor, not per element: the slices are one tensor here (`twin_step`); the
        // backend runs `lamb::step` on its groups' tensors itself, never through tasks.
        Optimizer::Lamb(o) => {
            let [m, v, _] = state;
            let whole = 0..params.len();
            let tensors = std::slice::from_ref(&whole);
            let ctx = CpuContext::new();
            lamb::step(o, step, dev, tensors, params, grads, [m, v], &ctx);
        }
        // Likewise: the slices are one vector (its averages in the first slot).
        Optimizer::Adafactor(_) => {
            let (factors, _) = crate::optim::factors(&[(0..params.len(), vec![params.len()])]);
            let ctx = CpuContext::new();
            adafactor::step(step, dev, &factors, params, grads, state[0], &ctx);
        }
        // Likewise, the slices as one 1×n matrix (the backend gives `muon::step` its groups'
        // matrices itself).
        Optimizer::Muon(o) => {
            let n = params.len();
            let mats = [crate::optim::muon::Matrix {
                range: 0..n,
                rows: 1,
                cols: n,
                work: 0,
            }];
            let mut scratch = [muon::Scratch::new(&mats[0])];
            let ctx = CpuContext::new();
            muon::step(
                o,
                step,
                dev,
                &mats,
                params,
                grads,
                state[0],
                &mut scratch,
                &ctx,
            );
        }
    }
}

/// [`twin_slices`] compiled for AVX2 where the CPU has it (checked once per call): the same
/// IEEE operations in the same order on 8 lanes instead of 4, so the same bits (no FMA is
/// enabled, and Rust never contracts).
fn twin_slices_wide(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    params: &mut [f32],
    grads: &[f32],
    state: [&mut [f32]; 3],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(
            optimizer: &Optimizer,
            step: &StepUniform,
            dev: &DeviceStep,
            params: &mut [f32],
            grads: &[f32],
            state: [&mut [f32]; 3],
        ) {
            twin_slices(optimizer, step, dev, params, grads, state)
        }
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2(optimizer, step, dev, params, grads, state) };
    }
    twin_slices(optimizer, step, dev, params, grads, state)
}

/// Elements one task of [`twin_step_parallel`] updates.
const TASK_ELEMENTS: usize = 1 << 15;

/// [`twin_step`] split into tasks of [`TASK_ELEMENTS`] elements run on `ctx`'s threads. Every
/// element is updated by the same twin, independently of the others,
/// so the result is the sequential twin's bit for bit whatever the thread count.
pub(crate) fn twin_step_parallel(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    params: &mut [f32],
    grads: &[f32],
    state: [&mut [f32]; 3],
    ctx: &CpuContext,
) {
    use rayon::prelude::*;
    let tasks = params.len().div_ceil(TASK_ELEMENTS);
    fn split(slot: &mut [f32], tasks: usize) -> Vec<&mut [f32]> {
        if slot.is_empty() {
            (0..tasks).map(|_| <&mut [f32]>::default()).collect()
        } else {
            slot.chunks_mut(TASK_ELEMENTS).collect()
        }
    }
    let [a, b, c] = state;
    let (a, b, c) = (split(a, tasks), split(b, tasks), split(c, tasks));
    let parts: Vec<_> = params
        .chunks_mut(TASK_ELEMENTS)
        .zip(grads.chunks(TASK_ELEMENTS))
        .zip(a.into_iter().zip(b).zip(c))
        .collect();
    let run = || {
        parts.into_par_iter().for_each(|((p, g), ((a, b), c))| {
            twin_slices_wide(optimizer, step, dev, p, g, [a, b, c]);
        })
    };
    ctx.install(run)
}

/// State vectors in binding-slot order, empty where the variant has no such slot.
fn new_state<T: Copy + From<f32>>(optimizer: &Optimizer, len: usize) -> [Vec<T>; 3] {
    let mut state: [Vec<T>; 3] = Default::default();
    for slot in optimizer.state_layout().slots {
        state[slot.slot] = vec![T::from(slot.init); len];
    }
    state
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

mod context;
mod lowp;
mod optimizer;
pub use context::CpuContext;
pub(crate) use context::host_vec;
pub use optimizer::CpuOptimizer;

/// The f64 oracle over whole vectors: parameters and state kept in f64, gradients given in f32.
#[derive(Clone, Debug)]
pub struct Oracle {
    progress: Progress,
    params: Vec<f64>,
    state: [Vec<f64>; 3],
    /// Per parameter: how far an f32 computation may rightly be from the oracle beyond
    /// rounding (Lion's sign near 0, [`lion::oracle`]); zeros for the others.
    slack: Vec<f64>,
    /// Lion: per element, a bound on the f32 momentum's distance from the oracle's.
    m_error: Vec<f64>,
    /// The tensors (element ranges and shapes) of per-tensor rules (LAMB, Adafactor): the
    /// whole vector unless given.
    tensors: Vec<(std::ops::Range<usize>, Vec<usize>)>,
}

impl Oracle {
    /// The oracle starting from `params`.
    pub fn new(optimizer: impl Into<Optimizer>, params: &[f32]) -> Result<Self> {
        let n = params.len();
        Self::with_shapes(optimizer, params, vec![(0..n, vec![n])])
    }

    /// The oracle starting from `params`, whose per-tensor rules (LAMB) see the tensors
    /// `tensors` (element ranges, in order, inside the vector), each a vector.
    pub fn with_tensors(
        optimizer: impl Into<Optimizer>,
        params: &[f32],
        tensors: Vec<std::ops::Range<usize>>,
    ) -> Result<Self> {
        let tensors = tensors
            .into_iter()
            .map(|r| (r.clone(), vec![r.len()]))
            .collect();
        Self::with_shapes(optimizer, params, tensors)
    }

    /// The oracle starting from `params`, whose per-tensor rules (LAMB, Adafactor) see the
    /// tensors `tensors` (element ranges, in order, inside the vector, and their shapes).
    pub fn with_shapes(
        optimizer: impl Into<Optimizer>,
        params: &[f32],
        tensors: Vec<(std::ops::Range<usize>, Vec<usize>)>,
    ) -> Result<Self> {
        let optimizer = optimizer.into();
        if let Optimizer::Muon(_) = optimizer {
            crate::optim::muon::matrices(&tensors)?;
        }
        let state_len = optimizer.state_len(params.len(), &tensors);
        Ok(Self {
            progress: Progress::new(optimizer)?,
            params: params.iter().map(|&p| f64::from(p)).collect(),
            state: new_state(&optimizer, state_len),
            slack: vec![0.0; params.len()],
            m_error: vec![0.0; params.len()],
            tensors,
        })
    }

    /// Sets the learning rate of the following steps.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.progress.set_lr(lr)
    }

    /// One step with gradients `grads`.
    pub fn step(&mut self, grads: &[f32]) -> Result<()> {
        check_len("gradients", self.params.len(), grads.len())?;
        let (lr, t) = (self.progress.lr, self.progress.steps + 1);
        let g = |g: f32| f64::from(g);
        let params = &mut self.params;
        let [a, b, c] = &mut self.state;
        let state = [a.as_mut_slice(), b.as_mut_slice(), c.as_mut_slice()];
        match &self.progress.optimizer {
            Optimizer::Sgd(o) => for_each(params, grads, state, |p, x, s| {
                sgd::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::RmsProp(o) => for_each(params, grads, state, |p, x, s| {
                rmsprop::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Adam(o) => for_each(params, grads, state, |p, x, s| {
                adam::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Adagrad(o) => for_each(params, grads, state, |p, x, s| {
                adagrad::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Adamax(o) => for_each(params, grads, state, |p, x, s| {
                adamax::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Adadelta(o) => for_each(params, grads, state, |p, x, s| {
                adadelta::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::RAdam(o) => for_each(params, grads, state, |p, x, s| {
                adam::radam_oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::NAdam(o) => {
                let rule = adam::nadam_oracle(o, lr, t);
                for_each(params, grads, state, |p, x, s| rule(p, g(x), s))
            }
            Optimizer::Rprop(o) => {
                for_each(params, grads, state, |p, x, s| rprop::oracle(o, p, g(x), s))
            }
            Optimizer::Asgd(o) => for_each(params, grads, state, |p, x, s| {
                asgd::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Lamb(o) => {
                let [m, v, _] = state;
                let ranges: Vec<_> = self.tensors.iter().map(|(r, _)| r.clone()).collect();
                lamb::oracle(o, lr, t, &ranges, params, grads, m, v);
            }
            Optimizer::Adafactor(o) => {
                let (factors, _) = crate::optim::factors(&self.tensors);
                adafactor::oracle(o, lr, t, &factors, params, grads, state[0]);
            }
            Optimizer::Muon(o) => {
                let (mats, _) = crate::optim::muon::matrices(&self.tensors)?;
                muon::oracle(o, lr, &mats, params, grads, state[0]);
            }
            Optimizer::Lion(o) => {
                let elements = params.iter_mut().zip(grads).zip(state[0].iter_mut());
                let bookkeeping = self.m_error.iter_mut().zip(&mut self.slack);
                for (((p, &x), m), (m_error, slack)) in elements.zip(bookkeeping) {
                    lion::oracle(o, lr, p, g(x), m, m_error, slack);
                }
            }
        }
        self.progress.advance();
        Ok(())
    }

    /// The parameters.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// Per parameter, the distance from the oracle an f32 computation may rightly have on top
    /// of rounding: 2γ for each step where Lion's sign argument was within f32 rounding of 0
    /// ([`lion::oracle`]); zeros for every other rule.
    pub fn param_slack(&self) -> &[f64] {
        &self.slack
    }

    /// One state tensor by PyTorch's name, if this variant has it.
    pub fn state(&self, name: &str) -> Option<&[f64]> {
        let layout = self.progress.optimizer.state_layout();
        layout
            .find(name)
            .map(|slot| self.state[slot.slot].as_slice())
    }
}
