//! CPU twin of `shaders/adafactor.wgsl` on the per-tensor driver (its pieces and their order
//! from [`super::lamb`]), and the f64 oracle of `torch.optim.Adafactor`.

use rayon::prelude::*;

use super::CpuContext;
use super::lamb::{PIECE_ELEMENTS, Piece, piece_tree, pieces, split, squares, tensor_sums};
use crate::optim::{Adafactor, Factor};
use crate::uniform::{DeviceStep, StepUniform};

/// `at_least`: max(x, lo) as torch's `clamp_(min=lo)`, a NaN x stays NaN.
#[inline]
pub(crate) fn at_least(x: f32, lo: f32) -> f32 {
    if x < lo { lo } else { x }
}

/// `lerp`: torch's a + w(b − a) for w < 0.5, else b − (b − a)(1 − w).
#[inline]
pub(crate) fn lerp(a: f32, b: f32, w: f32) -> f32 {
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
    /// `directions`: u = g / √max(V̂, ε₁²) for the consecutive elements of tensor `f` from
    /// `first`, whose gradients (scaled) are `g` (averages updated; `means` the tensor's
    /// matrices' mean row averages). As the shader: the first element's (matrix, row, column)
    /// by division, the others' by stepping.
    fn directions(
        &self,
        f: &Factor,
        variance: &[f32],
        means: &[f32],
        first: usize,
        g: &[f32],
        u: &mut [f32],
    ) {
        let eps = self.step.eps;
        let floor = eps * eps;
        if !f.factored() {
            for (k, (u, &g)) in u.iter_mut().zip(g).enumerate() {
                let v_hat = variance[f.state + first + k];
                *u = (1.0 / at_least(v_hat, floor).sqrt()) * g;
            }
            return;
        }
        let size = f.rows * f.cols;
        let (mut b, within) = (first / size, first % size);
        let (mut r, mut c) = (within / f.cols, within % f.cols);
        for (u, &g) in u.iter_mut().zip(g) {
            let row = variance[f.row_state(b) + r];
            let col = variance[f.col_state(b) + c];
            let v_hat = (row * col) / at_least(means[b], eps);
            *u = (1.0 / at_least(v_hat, floor).sqrt()) * g;
            c += 1;
            if c == f.cols {
                c = 0;
                r += 1;
                if r == f.rows {
                    r = 0;
                    b += 1;
                }
            }
        }
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
    // lines_pass: each row's and column's mean of g², lerped into its average. Every line
    // (a row, a column, or four columns of a line of width 4) adds its squares in order along
    // it; here runs of up to 64 lines of one matrix with the same stride go to one task, which
    // walks them row by row (the same order for each line, in cache order for columns).
    let lines: Vec<_> = factors.iter().flat_map(Factor::lines).collect();
    let mut runs: Vec<&[crate::optim::Line]> = Vec::new();
    let mut rest = lines.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take(64)
            .take_while(|l| l.stride == first.stride && l.count == first.count)
            .count();
        let (run, tail) = rest.split_at(same);
        runs.push(run);
        rest = tail;
    }
    let fresh: Vec<Vec<f32>> = ctx.install(|| {
        runs.par_iter()
            .map(|run| {
                let widths: usize = run.iter().map(|l| l.width).sum();
                let mut s = vec![0.0f32; widths];
                let (count, stride) = (run[0].count, run[0].stride);
                if stride == 1 {
                    // Rows: each one's elements in order, one row after another.
                    for (s, line) in s.iter_mut().zip(*run) {
                        for &g in &grads[line.first..line.first + count] {
                            let g = g * gf;
                            *s += g * g;
                        }
                    }
                } else {
                    // Columns: row by row, each column's running sum in order.
                    for k in 0..count {
                        let mut at = 0;
                        for line in *run {
                            for j in 0..line.width {
                                let g = grads[line.first + j + k * stride] * gf;
                                s[at] += g * g;
                                at += 1;
                            }
                        }
                    }
                }
                let mut at = 0;
                let mut out = Vec::with_capacity(widths);
                for line in *run {
                    for j in 0..line.width {
                        let mean = s[at] / count as f32;
                        out.push(lerp(variance[line.state + j], mean, pass.weight));
                        at += 1;
                    }
                }
                out
            })
            .collect()
    });
    for (run, x) in runs.iter().zip(fresh) {
        let mut x = x.into_iter();
        for line in *run {
            for j in 0..line.width {
                variance[line.state + j] = x.next().unwrap_or_default();
            }
        }
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
    let element =
        |piece: &Piece, k: usize| piece.range.start + k - factors[piece.tensor].range.start;
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
                        let (mut q, mut u, mut gs) = ([0.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
                        let n = lanes.len();
                        for (l, k) in lanes.clone().enumerate() {
                            q[l] = p[k];
                            gs[l] = g[k] * gf;
                        }
                        let means = &means[piece.tensor];
                        let first = element(piece, lanes.start);
                        pass.directions(f, variance, means, first, &gs[..n], &mut u[..n]);
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
            // A piece is at most PIECE_ELEMENTS long: its g and u on the stack, not the heap.
            let n = piece.range.len();
            let (mut g, mut u) = ([0.0f32; PIECE_ELEMENTS], [0.0f32; PIECE_ELEMENTS]);
            for (g, &x) in g.iter_mut().zip(&grads[piece.range.clone()]) {
                *g = x * gf;
            }
            let means = &means[piece.tensor];
            pass.directions(f, variance, means, element(piece, 0), &g[..n], &mut u[..n]);
            for (p, &u) in params.iter_mut().zip(&u[..n]) {
                *p = *p * step.decay - at * u;
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
        let g: Vec<f64> = grads[r.clone()]
            .iter()
            .map(|&g| sign * f64::from(g))
            .collect();
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
                        let (row, col) =
                            (variance[f.row_state(b) + i], variance[f.col_state(b) + j]);
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
