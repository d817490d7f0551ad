//! CPU twins of `shaders/lamb.wgsl` and of its per-tensor driver `shaders/pieces.wgsl` (the
//! pieces, their sums' order, shared with `adafactor`): the same pieces, the same per-lane
//! arithmetic, the same order of every sum.

use std::ops::Range;

use rayon::prelude::*;

use super::CpuContext;
use crate::optim::Lamb;
use crate::uniform::{DeviceStep, StepUniform};

/// Invocations of one piece's workgroup (`PIECE_INVOCATIONS`).
const INVOCATIONS: usize = 256;
/// vec4 blocks each invocation takes (`PIECE_VECS`).
const VECS: usize = 4;
/// Elements of a whole piece: pieces are cut on this grid from the group's first element.
pub(crate) const PIECE_ELEMENTS: usize = INVOCATIONS * VECS * 4;

/// One piece: elements `range` (relative to the group, starting at a multiple of 4) of tensor
/// `tensor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub tensor: usize,
    pub range: Range<usize>,
}

/// The pieces of `tensors` (element ranges relative to the group, in order, each starting at a
/// multiple of 4): each tensor cut at the multiples of [`PIECE_ELEMENTS`], tensor by tensor.
pub(crate) fn pieces(tensors: &[Range<usize>]) -> Vec<Piece> {
    let mut out = Vec::new();
    for (tensor, r) in tensors.iter().enumerate() {
        let mut start = r.start;
        while start < r.end {
            let end = ((start / PIECE_ELEMENTS + 1) * PIECE_ELEMENTS).min(r.end);
            out.push(Piece {
                tensor,
                range: start..end,
            });
            start = end;
        }
    }
    out
}

/// `lamb_direction`: (m·f₁)/(√v/√(1−β₂ᵗ) + ε) + λθ for one lane.
#[inline]
fn direction(step: &StepUniform, dev: &DeviceStep, p: f32, m: f32, v: f32) -> f32 {
    let d = v.sqrt() / (step.bias_correction2_sqrt * dev.at_step.bias_correction2_sqrt) + step.eps;
    (m * (step.lr2 * dev.at_step.lr2_mul)) / d + step.weight_decay * p
}

/// `squares`: x·x summed over the four lanes left to right.
#[inline]
pub(crate) fn squares(x: [f32; 4]) -> f32 {
    x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3]
}

/// `moments` of one block (1–4 lanes): updates m and v, returns (Σθ², Σu²).
fn moments(
    step: &StepUniform,
    dev: &DeviceStep,
    params: &[f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) -> [f32; 2] {
    let (mut q, mut u) = ([0.0f32; 4], [0.0f32; 4]);
    for k in 0..params.len() {
        let p = params[k];
        let g = grads[k] * (step.grad_scale * dev.grad_mul);
        let m_new = step.beta1 * m[k] + step.one_minus_beta1 * g;
        let v_new = step.beta2 * v[k] + step.one_minus_beta2 * g * g;
        m[k] = m_new;
        v[k] = v_new;
        q[k] = p;
        u[k] = direction(step, dev, p, m_new, v_new);
    }
    [squares(q), squares(u)]
}

/// `v` cut into the pieces' ranges (sorted, disjoint; the gaps between them left out).
pub(crate) fn split<'a, T>(mut v: &'a mut [T], pieces: &[Piece]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut at = 0;
    for piece in pieces {
        let rest = std::mem::take(&mut v);
        let (_, rest) = rest.split_at_mut(piece.range.start - at);
        let (this, rest) = rest.split_at_mut(piece.range.len());
        out.push(this);
        v = rest;
        at = piece.range.end;
    }
    out
}

/// `moments_pass`'s order over one piece of `len` elements: invocation l adds `block`'s sums
/// of its blocks 4l … 4l+3 (each 1–4 lanes, given as a range of the piece) in order, then the
/// tree over the 256 invocations.
pub(crate) fn piece_tree(len: usize, mut block: impl FnMut(Range<usize>) -> [f32; 2]) -> [f32; 2] {
    let mut tree = [[0.0f32; 2]; INVOCATIONS];
    for (l, acc) in tree.iter_mut().enumerate() {
        for k in 0..VECS {
            let first = (l * VECS + k) * 4;
            if first >= len {
                break;
            }
            let s = block(first..(first + 4).min(len));
            *acc = [acc[0] + s[0], acc[1] + s[1]];
        }
    }
    crate::control::reduce(&mut tree)
}

/// `moments_pass` for one piece.
fn piece_sums(
    step: &StepUniform,
    dev: &DeviceStep,
    p: &[f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) -> [f32; 2] {
    piece_tree(p.len(), |lanes| {
        moments(
            step,
            dev,
            &p[lanes.clone()],
            &g[lanes.clone()],
            &mut m[lanes.clone()],
            &mut v[lanes],
        )
    })
}

/// `finish_pass`'s sums: each tensor's pieces' sums added in order.
pub(crate) fn tensor_sums(tensors: usize, pieces: &[Piece], sums: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let mut totals = vec![[0.0f32; 2]; tensors];
    for (piece, x) in pieces.iter().zip(sums) {
        let s = &mut totals[piece.tensor];
        *s = [s[0] + x[0], s[1] + x[1]];
    }
    totals
}

/// One step of LAMB over a group: the three passes of `shaders/pieces.wgsl` in its order, the
/// pieces of each pass on `ctx`'s threads (each piece's arithmetic is the same on any thread).
/// `tensors` are the group's tensors (element ranges relative to it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    o: &Lamb,
    step: &StepUniform,
    dev: &DeviceStep,
    tensors: &[Range<usize>],
    params: &mut [f32],
    grads: &[f32],
    [m, v]: [&mut [f32]; 2],
    ctx: &CpuContext,
) {
    let pieces = pieces(tensors);
    // moments_pass.
    let sums: Vec<[f32; 2]> = {
        let (ms, vs) = (split(m, &pieces), split(v, &pieces));
        let work: Vec<_> = pieces.iter().zip(ms).zip(vs).collect();
        let params = &*params;
        ctx.install(|| {
            work.into_par_iter()
                .map(|((piece, m), v)| {
                    let r = piece.range.clone();
                    piece_sums(step, dev, &params[r.clone()], &grads[r], m, v)
                })
                .collect()
        })
    };
    // finish_pass: per tensor, its pieces' sums in order, then the trust ratio.
    let adapt = o.variant()[0];
    let ratios: Vec<f32> = tensor_sums(tensors.len(), &pieces, &sums)
        .iter()
        .map(|s| {
            let (param_norm, update_norm) = (s[0].sqrt(), s[1].sqrt());
            if adapt && param_norm > 0.0 && update_norm > 0.0 {
                param_norm / update_norm
            } else {
                1.0
            }
        })
        .collect();
    // apply_pass.
    let (m, v) = (&*m, &*v);
    let work: Vec<_> = pieces.iter().zip(split(params, &pieces)).collect();
    ctx.install(|| {
        work.into_par_iter().for_each(|(piece, params)| {
            let ratio = ratios[piece.tensor];
            for (k, i) in piece.range.clone().enumerate() {
                let p = params[k];
                let u = direction(step, dev, p, m[i], v[i]);
                params[k] = p - (step.lr * ratio) * u;
            }
        })
    });
}

/// The f64 oracle of LAMB for step `t` at learning rate `lr` over `tensors`: apex's rule with
/// exact norms.
#[allow(clippy::too_many_arguments)]
pub fn oracle(
    o: &Lamb,
    lr: f64,
    t: u64,
    tensors: &[Range<usize>],
    params: &mut [f64],
    grads: &[f32],
    m: &mut [f64],
    v: &mut [f64],
) {
    let (beta1, beta2) = o.betas;
    let t = t as f64;
    let (bc1, bc2) = (1.0 - beta1.powf(t), 1.0 - beta2.powf(t));
    let adapt = o.use_nvlamb || o.weight_decay != 0.0;
    for r in tensors {
        let mut u = Vec::with_capacity(r.len());
        for i in r.clone() {
            let g = f64::from(grads[i]) * if o.maximize { -1.0 } else { 1.0 };
            m[i] = beta1 * m[i] + (1.0 - beta1) * g;
            v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
            u.push((m[i] / bc1) / ((v[i] / bc2).sqrt() + o.eps) + o.weight_decay * params[i]);
        }
        let norm = |x: &mut dyn Iterator<Item = f64>| x.map(|x| x * x).sum::<f64>().sqrt();
        let (param_norm, update_norm) = (
            norm(&mut params[r.clone()].iter().copied()),
            norm(&mut u.iter().copied()),
        );
        let ratio = if adapt && param_norm > 0.0 && update_norm > 0.0 {
            param_norm / update_norm
        } else {
            1.0
        };
        for (i, u) in r.clone().zip(u) {
            params[i] -= lr * ratio * u;
        }
    }
}
