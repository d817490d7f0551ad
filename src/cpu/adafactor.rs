//! CPU twin of `shaders/adafactor.wgsl` on the per-tensor driver (its pieces and their order
//! from [`super::lamb`]), and the f64 oracle of `torch.optim.Adafactor`.

use rayon::prelude::*;

use super::CpuContext;
use super::lamb::{Piece, piece_tree, pieces, split, squares, tensor_sums};
use crate::optim::{Adafactor, Factor};
use crate::uniform::{DeviceStep, StepUniform};

/// `at_least`: max(x, lo) as torch's `clamp_(min=lo)`, a NaN x stays NaN.
#[inline]
fn at_least(x: f32, lo: f32) -> f32 {
    if x < lo { lo } else { x }
}

/// `lerp`: torch's a + w(b − a) for w < 0.5, else b − (b − a)(1 − w).
#[inline]
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// What every pass reads: the uniform, the device's part, and their products.
struct Pass<'a> {
    step: &'a StepUniform,
    grad_factor: f32,
    weight: f32,
}

impl Pass<'_> {
    /// `direction`: element `e` of tensor `f`'s u for gradient g (averages updated; `means`
    /// the tensor's matrices' mean row averages).
    #[inline]
    fn direction(&self, f: &Factor, variance: &[f32], means: &[f32], e: usize, g: f32) -> f32 {
        let eps = self.step.eps;
        let v_hat = if f.factored() {
            let size = f.rows * f.cols;
            let (b, within) = (e / size, e % size);
            let row = variance[f.row_state(b) + within / f.cols];
            let col = variance[f.col_state(b) + within % f.cols];
            (row * col) / at_least(means[b], eps)
        } else {
            variance[f.state + e]
        };
        (1.0 / at_least(v_hat, eps * eps).sqrt()) * g
    }
}

/// `tensor_factor`: α/max(1, RMS(u)/d) with α = max(ε₂, RMS(θ))·ρ, from (Σθ², Σu²).
fn tensor_factor(step: &StepUniform, dev: &DeviceStep, f: &Factor, s: [f32; 2]) -> f32 {
    let n = if f.factored() {
        (f.batch * f.rows * f.cols) as u32
    } else {
        f.rows as u32
    };
    let root_n = (n as f32).sqrt();
    let rho = step.lr.min(step.lr2 * dev.at_step.lr2_mul);
    let rms = s[0].sqrt() / root_n;
    let alpha = if rms > step.eps2 { rms } else { step.eps2 } * rho;
    let q = s[1].sqrt() / (root_n * step.clip_threshold);
    alpha / if q > 1.0 { q } else { 1.0 }
}

/// One step of Adafactor over a group: `shaders/adafactor.wgsl`'s passes in the driver's order
/// (lines, means, moments, finish, apply), each line, matrix and piece summed in the shader's
/// order, the independent ones on `ctx`'s threads. A vector's averages are updated in a pass of
/// their own before the pieces' sums, element by element as `moments` does (the same values).
pub(crate) fn step(
    step: &StepUniform,
    dev: &DeviceStep,
    factors: &[Factor],
    params: &mut [f32],
    grads: &[f32],
    variance: &mut [f32],
    ctx: &CpuContext,
) {
    let pass = Pass {
        step,
        grad_factor: step.grad_scale * dev.grad_mul,
        weight: step.average * dev.at_step.average_mul,
    };
    let pass = &pass;
    let gf = pass.grad_factor;
    // lines_pass: each row's and column's mean of g², lerped into its average.
    let lines: Vec<_> = factors.iter().flat_map(Factor::lines).collect();
    let fresh: Vec<f32> = ctx.install(|| {
        lines
            .par_iter()
            .map(|line| {
                let mut s = 0.0f32;
                for k in 0..line.count {
                    let g = grads[line.first + k * line.stride] * gf;
                    s += g * g;
                }
                lerp(variance[line.state], s / line.count as f32, pass.weight)
            })
            .collect()
    });
    for (line, x) in lines.iter().zip(fresh) {
        variance[line.state] = x;
    }
    // means_pass: per tensor, its matrices' mean row averages.
    let means: Vec<Vec<f32>> = factors
        .iter()
        .map(|f| {
            (0..if f.factored() { f.batch } else { 0 })
                .map(|b| {
                    let rows = &variance[f.row_state(b)..f.row_state(b) + f.rows];
                    let mut s = 0.0f32;
                    for &r in rows {
                        s += r;
                    }
                    s / f.rows as f32
                })
                .collect()
        })
        .collect();
    // moments: a vector's averages (element by element), then each piece's (Σθ², Σu²).
    for f in factors.iter().filter(|f| !f.factored()) {
        let state = &mut variance[f.state..f.state + f.rows];
        for (v, &g) in state.iter_mut().zip(&grads[f.range.clone()]) {
            let g = g * gf;
            *v = lerp(*v, g * g, pass.weight);
        }
    }
    let ranges: Vec<_> = factors.iter().map(|f| f.range.clone()).collect();
    let pieces = pieces(&ranges);
    let variance = &*variance;
    let element = |piece: &Piece, k: usize| piece.range.start + k - factors[piece.tensor].range.start;
    let sums: Vec<[f32; 2]> = {
        let params = &*params;
        ctx.install(|| {
            pieces
                .par_iter()
                .map(|piece| {
                    let f = &factors[piece.tensor];
                    let r = piece.range.clone();
                    let (p, g) = (&params[r.clone()], &grads[r]);
                    piece_tree(p.len(), |lanes| {
                        let (mut q, mut u) = ([0.0f32; 4], [0.0f32; 4]);
                        for (l, k) in lanes.enumerate() {
                            q[l] = p[k];
                            let e = element(piece, k);
                            u[l] = pass.direction(f, variance, &means[piece.tensor], e, g[k] * gf);
                        }
                        [squares(q), squares(u)]
                    })
                })
                .collect()
        })
    };
    // finish_pass.
    let factor: Vec<f32> = tensor_sums(factors.len(), &pieces, &sums)
        .into_iter()
        .zip(factors)
        .map(|(s, f)| tensor_factor(step, dev, f, s))
        .collect();
    // apply_pass.
    let work: Vec<_> = pieces.iter().zip(split(params, &pieces)).collect();
    ctx.install(|| {
        work.into_par_iter().for_each(|(piece, params)| {
            let f = &factors[piece.tensor];
            let at = factor[piece.tensor];
            for (k, i) in piece.range.clone().enumerate() {
                let p = params[k];
                let e = element(piece, k);
                let u = pass.direction(f, variance, &means[piece.tensor], e, grads[i] * gf);
                params[k] = p * step.decay - at * u;
            }
        })
    });
}

/// The f64 oracle of Adafactor for step `t` at learning rate `lr`: PyTorch's rule over each
/// tensor of `factors` with exact sums (parameters and averages in f64).
pub(crate) fn oracle(
    o: &Adafactor,
    lr: f64,
    t: u64,
    factors: &[Factor],
    params: &mut [f64],
    grads: &[f32],
    variance: &mut [f64],
) {
    let w = o.weight(t);
    let rho = lr.min(Adafactor::rho_bound(t));
    let (eps1, eps2) = (o.eps1(), o.eps.1);
    let sign = if o.maximize { -1.0 } else { 1.0 };
    let lerp = |a: f64, b: f64| a + w * (b - a);
    for f in factors {
        let r = f.range.clone();
        let g: Vec<f64> = grads[r.clone()].iter().map(|&g| sign * f64::from(g)).collect();
        let n = r.len() as f64;
        let rms = |x: &mut dyn Iterator<Item = f64>| (x.map(|x| x * x).sum::<f64>() / n).sqrt();
        let alpha = eps2.max(rms(&mut params[r.clone()].iter().copied())) * rho;
        let v_hat: Vec<f64> = if f.factored() {
            let (rows, cols) = (f.rows, f.cols);
            let mut v_hat = Vec::with_capacity(g.len());
            for b in 0..f.batch {
                let at = |i: usize, j: usize| g[b * rows * cols + i * cols + j];
                for i in 0..rows {
                    let mean = (0..cols).map(|j| at(i, j) * at(i, j)).sum::<f64>() / cols as f64;
                    variance[f.row_state(b) + i] = lerp(variance[f.row_state(b) + i], mean);
                }
                for j in 0..cols {
                    let mean = (0..rows).map(|i| at(i, j) * at(i, j)).sum::<f64>() / rows as f64;
                    variance[f.col_state(b) + j] = lerp(variance[f.col_state(b) + j], mean);
                }
                let row_mean = variance[f.row_state(b)..f.row_state(b) + rows]
                    .iter()
                    .sum::<f64>()
                    / rows as f64;
                for i in 0..rows {
                    for j in 0..cols {
                        let (row, col) = (variance[f.row_state(b) + i], variance[f.col_state(b) + j]);
                        v_hat.push(row * col / row_mean.max(eps1));
                    }
                }
            }
            v_hat
        } else {
            let v = &mut variance[f.state..f.state + f.rows];
            for (v, g) in v.iter_mut().zip(&g) {
                *v = lerp(*v, g * g);
            }
            v.to_vec()
        };
        let u: Vec<f64> = g
            .iter()
            .zip(&v_hat)
            .map(|(g, v)| g / v.max(eps1 * eps1).sqrt())
            .collect();
        let denom = (rms(&mut u.iter().copied()) / o.d).max(1.0);
        for (p, u) in params[r].iter_mut().zip(u) {
            *p = *p * (1.0 - lr * o.weight_decay) - alpha / denom * u;
        }
    }
}
