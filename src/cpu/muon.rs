//! CPU twin of `shaders/muon.wgsl` and `shaders/gemm.wgsl` on the per-tensor driver (its
//! pieces and their order from [`super::lamb`]), and the f64 oracle of `torch.optim.Muon`.

use rayon::prelude::*;

use super::CpuContext;
use super::adafactor::{at_least, lerp};
use super::lamb::{piece_tree, pieces, split, squares, tensor_sums};
use crate::optim::Muon;
use crate::optim::muon::Matrix;
use crate::uniform::{DeviceStep, StepUniform};

/// One operand of [`gemm`]: element (i, k) at `base + i·row + k·col` of the scratch space.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operand {
    pub base: usize,
    pub row: usize,
    pub col: usize,
}

impl Operand {
    /// A row-major matrix of `cols` columns from `base`.
    pub fn rows(base: usize, cols: usize) -> Self {
        Self {
            base,
            row: cols,
            col: 1,
        }
    }

    /// The transpose of a row-major matrix of `cols` columns from `base`.
    pub fn transposed(base: usize, cols: usize) -> Self {
        Self {
            base,
            row: 1,
            col: cols,
        }
    }
}

/// One matrix's host scratch space, kept between steps by the CPU backend: the device's
/// 2mn + m² floats (`work`: X₀, X₁, P; S in the X a step overwrites), a product's result
/// before it lands in `work` (`result`, up to m·n), and a product's B packed into the panels its
/// register tiles read (`copy`, up to n·m, [`pack`]). Every element a step reads it writes first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    work: Vec<f32>,
    result: Vec<f32>,
    copy: Vec<f32>,
}

impl Scratch {
    /// The scratch space of `mat`, each vector from `alloc(len)`.
    fn with(mat: &Matrix, alloc: impl Fn(usize) -> crate::Result<Vec<f32>>) -> crate::Result<Self> {
        let (m, n) = mat.mn();
        Ok(Self {
            work: alloc(mat.work_len())?,
            result: alloc(m * n)?,
            copy: alloc(m * n)?,
        })
    }

    /// The scratch space of each of `mats`, [`crate::Error::HostAllocation`] where the host
    /// cannot hold it.
    pub fn for_matrices(mats: &[Matrix]) -> crate::Result<Vec<Self>> {
        let alloc = |len| super::host_vec("muon scratch", len, 0.0);
        mats.iter().map(|mat| Self::with(mat, alloc)).collect()
    }

    /// The scratch space of `mat` from the global allocator (the twin over plain slices).
    pub fn new(mat: &Matrix) -> Self {
        match Self::with(mat, |len| Ok(vec![0.0; len])) {
            Ok(s) => s,
            Err(_) => unreachable!("vec! does not fail"),
        }
    }
}

/// `gemm`: out (rows × cols, row-major from `out` in `s.work`) = β·C + α·(A B) where `c` gives
/// C (the output's own layout), else α·(A B); each sum Σₖ A[i][k]·B[k][j] with k from 0 up,
/// starting from 0, as `gemm_sums` in `shaders/gemm.wgsl` (B packed by [`pack`], the sums in
/// [`Tile`]'s register tiles); groups of [`TASK_ROWS`] output rows on the current rayon pool.
/// `out` must not overlap the operands.
///
/// `symmetric`: the caller knows the result is symmetric bit for bit (S = X Xᵀ, and
/// P = b·S + c·S² with S symmetric: the sums for (i, j) and (j, i) multiply the same pairs in
/// the same k order). Tiles wholly below the diagonal are then skipped and that triangle copied
/// from the one above: the same bits, and for a square matrix a third fewer multiply-adds per
/// Newton–Schulz step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    s: &mut Scratch,
    [rows, cols, depth]: [usize; 3],
    a: Operand,
    b: Operand,
    c: Option<(usize, f32)>,
    alpha: f32,
    out: usize,
    symmetric: bool,
) {
    let Scratch { work, result, copy } = s;
    let src = &*work;
    let tile = Tile::detect();
    let packed = &mut copy[..depth * cols];
    pack(packed, src, b, [cols, depth], tile.cols());
    let packed = &*packed;
    result[..rows * cols]
        .par_chunks_mut(cols * TASK_ROWS)
        .enumerate()
        .for_each(|(t, out)| {
            let first = t * TASK_ROWS;
            // A from out's first row; that row's index where tiles below the diagonal skip.
            let a_rows = Operand {
                base: a.base + first * a.row,
                ..a
            };
            let diagonal = symmetric.then_some(first);
            tile.sums(out, [cols, depth], src, a_rows, diagonal, packed);
            for (i, row_out) in (first..).zip(out.chunks_mut(cols)) {
                for (j, s) in row_out.iter_mut().enumerate() {
                    *s = match c {
                        Some((base, beta)) => beta * src[base + i * cols + j] + alpha * *s,
                        None => alpha * *s,
                    };
                }
            }
        });
    // A tile is skipped only past the first `tile.cols()` rows. Every (j, i) with j < i was
    // computed: a skipped tile lies wholly below the diagonal.
    if symmetric && rows > tile.cols() {
        for i in 0..rows {
            for j in 0..i {
                result[i * cols + j] = result[j * cols + i];
            }
        }
    }
    work[out..out + rows * cols].copy_from_slice(&result[..rows * cols]);
}

/// Output rows one task of [`gemm`] computes: whole register tiles of [`sums`] on AVX-512 (8
/// rows) and AVX2 (4).
const TASK_ROWS: usize = 8;

/// The register tile [`sums`] runs with on this CPU: 8 × 32 sums in sixteen AVX-512 registers,
/// else 4 × 16 in eight AVX2 (or SSE) registers. No FMA either way, so the same bits (as
/// [`super::twin_slices_wide`]).
#[derive(Clone, Copy, Debug)]
enum Tile {
    Avx512,
    Avx2,
    Plain,
}

impl Tile {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Plain
    }

    /// Columns of one tile: the width of [`pack`]'s panels.
    fn cols(self) -> usize {
        match self {
            Self::Avx512 => 32,
            Self::Avx2 | Self::Plain => 16,
        }
    }

    /// [`sums`] with this tile, compiled for its instructions.
    fn sums(
        self,
        out: &mut [f32],
        shape: [usize; 2],
        src: &[f32],
        a: Operand,
        diagonal: Option<usize>,
        b: &[f32],
    ) {
        /// `sums::<$r, $w>` compiled with `$feature` enabled, run.
        #[cfg(target_arch = "x86_64")]
        macro_rules! with {
            ($feature:literal, $r:literal, $w:literal) => {{
                #[target_feature(enable = $feature)]
                fn wide(
                    o: &mut [f32],
                    d: [usize; 2],
                    s: &[f32],
                    a: Operand,
                    g: Option<usize>,
                    b: &[f32],
                ) {
                    sums::<$r, $w>(o, d, s, a, g, b)
                }
                // SAFETY: `detect` found the feature on this CPU.
                unsafe { wide(out, shape, src, a, diagonal, b) }
            }};
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => with!("avx512f", 8, 32),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => with!("avx2", 4, 16),
            _ => sums::<4, 16>(out, shape, src, a, diagonal, b),
        }
    }
}

/// Writes B (`depth` × `cols`, element (k, j) at `b.base + k·b.row + j·b.col` of `src`) into
/// `packed` as [`sums`] reads it: each whole panel of `w` columns as its `depth` rows of `w`
/// floats one after another, then the `cols % w` remaining columns row by row. The tiles then
/// read B in order, whether it is a matrix or a transpose.
fn pack(packed: &mut [f32], src: &[f32], b: Operand, [cols, depth]: [usize; 2], w: usize) {
    let tiled = cols - cols % w;
    let (body, rest) = packed.split_at_mut(tiled * depth);
    let at = |k: usize, j: usize| src[b.base + k * b.row + j * b.col];
    body.par_chunks_mut(w * depth)
        .enumerate()
        .for_each(|(p, panel)| {
            for (k, row) in panel.chunks_exact_mut(w).enumerate() {
                for (jj, y) in row.iter_mut().enumerate() {
                    *y = at(k, p * w + jj);
                }
            }
        });
    for (k, row) in rest.chunks_exact_mut((cols - tiled).max(1)).enumerate() {
        for (jj, y) in row.iter_mut().enumerate() {
            *y = at(k, tiled + jj);
        }
    }
}

/// The products of as many output rows of A B as `out` holds (`cols` each; A's rows from its
/// first), B as [`pack`] wrote it with panels `W` wide: every sum from 0, its products added in
/// k order. Rows go `R` at a time, panel by panel (`R` × `W` sums held in registers and
/// advanced k by k, each row of a panel read once for `R` rows); the columns past the last
/// panel, and the rows past the last whole group of `R`, go row by row, each row's sums
/// advanced k by k. The same additions in the same order either way, so the bits do not depend
/// on the tiling. `diagonal`: the index of `out`'s first row in a symmetric product, whose
/// panels wholly left of a group's first row (below the diagonal) are skipped.
#[inline(always)]
fn sums<const R: usize, const W: usize>(
    out: &mut [f32],
    [cols, depth]: [usize; 2],
    src: &[f32],
    a: Operand,
    diagonal: Option<usize>,
    packed: &[f32],
) {
    let rows = out.len() / cols;
    let x = |r: usize, k: usize| src[a.base + r * a.row + k * a.col];
    let (grouped, tiled) = (rows - rows % R, cols - cols % W);
    let (panels, rest) = packed.split_at(tiled * depth);
    let panels = || panels.chunks_exact(W * depth).enumerate();
    for r0 in (0..grouped).step_by(R) {
        // A symmetric product's tiles wholly left of the group's first row: below the diagonal.
        let below = diagonal.map_or(0, |first| (first + r0) / W);
        for (p, panel) in panels().skip(below) {
            let mut tile = [[0.0f32; W]; R];
            for (k, y) in panel.chunks_exact(W).enumerate() {
                for (r, sums) in tile.iter_mut().enumerate() {
                    let x = x(r0 + r, k);
                    for (s, &y) in sums.iter_mut().zip(y) {
                        *s += x * y;
                    }
                }
            }
            for (r, sums) in tile.iter().enumerate() {
                out[(r0 + r) * cols + p * W..][..W].copy_from_slice(sums);
            }
        }
    }
    for r in 0..rows {
        let (head, tail) = out[r * cols..(r + 1) * cols].split_at_mut(tiled);
        if r >= grouped {
            head.fill(0.0);
            for (p, panel) in panels() {
                let sums = &mut head[p * W..][..W];
                for (k, y) in panel.chunks_exact(W).enumerate() {
                    let x = x(r, k);
                    for (s, &y) in sums.iter_mut().zip(y) {
                        *s += x * y;
                    }
                }
            }
        }
        tail.fill(0.0);
        for (k, y) in rest.chunks_exact(tail.len().max(1)).enumerate() {
            let x = x(r, k);
            for (s, &y) in tail.iter_mut().zip(y) {
                *s += x * y;
            }
        }
    }
}

/// The Newton–Schulz iteration of one matrix on its scratch space (X₀ scaled in place): per
/// step `gram_pass` S = X Xᵀ (in X''s space), `poly_pass` P = b·S + c·(S S), `combine_pass`
/// X' = a·X + P X, X and X' swapping between X₀ and X₁. Returns where the result starts.
fn newton_schulz(step: &StepUniform, ns_steps: u32, mat: &Matrix, s: &mut Scratch) -> usize {
    let (m, n) = mat.mn();
    let (a, b, c) = (step.eta_minus, step.eta_plus, step.step_size_min);
    let p = 2 * m * n;
    let mut x = 0;
    for _ in 0..ns_steps {
        // S goes where the step's X' will: its last reader is P's product.
        let y = m * n - x;
        let sq = y;
        gemm(
            s,
            [m, m, n],
            Operand::rows(x, n),
            Operand::transposed(x, n),
            None,
            1.0,
            sq,
            true,
        );
        gemm(
            s,
            [m, m, m],
            Operand::rows(sq, m),
            Operand::rows(sq, m),
            Some((sq, b)),
            c,
            p,
            true,
        );
        gemm(
            s,
            [m, n, m],
            Operand::rows(p, m),
            Operand::rows(x, n),
            Some((x, a)),
            1.0,
            y,
            false,
        );
        x = y;
    }
    x
}

/// One step of Muon over a group's matrices, on their kept `scratch` space: the passes of
/// `shaders/muon.wgsl` in the driver's order: `moments_pass` (the momentum, the pieces' ΣU²),
/// `finish_pass` (‖U‖ clamped at ε per matrix), U into X₀ where X holds it and `scale_pass`,
/// the iteration, `apply_pass`. Pieces and matrices run on `ctx`'s threads (the arithmetic of
/// each is the same anywhere).
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    o: &Muon,
    step: &StepUniform,
    dev: &DeviceStep,
    mats: &[Matrix],
    params: &mut [f32],
    grads: &[f32],
    buf: &mut [f32],
    scratch: &mut [Scratch],
    ctx: &CpuContext,
) {
    let nesterov = o.variant()[0];
    let gf = step.grad_scale * dev.grad_mul;
    // U from the scaled gradient g and the updated buffer b.
    let update = |g: f32, b: f32| {
        if nesterov {
            lerp(g, b, step.momentum)
        } else {
            b
        }
    };
    let ranges: Vec<_> = mats.iter().map(|m| m.range.clone()).collect();
    let pieces = pieces(&ranges);
    // moments_pass: per piece, the momentum and Σ U² in the order of the pieces' tree.
    let sums: Vec<[f32; 2]> = {
        let work: Vec<_> = pieces.iter().zip(split(buf, &pieces)).collect();
        ctx.install(|| {
            work.into_par_iter()
                .map(|(piece, buf)| {
                    let g = &grads[piece.range.clone()];
                    piece_tree(g.len(), |lanes| {
                        let mut q = [0.0f32; 4];
                        for (k, e) in lanes.enumerate() {
                            let g = g[e] * gf;
                            let b = lerp(buf[e], g, step.one_minus_beta1);
                            buf[e] = b;
                            q[k] = update(g, b);
                        }
                        [0.0, squares(q)]
                    })
                })
                .collect()
        })
    };
    // finish_pass: ‖U‖ = √(Σ U²), at least ε.
    let norms: Vec<f32> = tensor_sums(mats.len(), &pieces, &sums)
        .iter()
        .map(|s| at_least(s[1].sqrt(), step.eps))
        .collect();
    // Each matrix's X₀ = U (as X holds it; the same U the pieces summed) / ‖U‖, then the
    // iteration.
    let buf = &*buf;
    let finals: Vec<usize> = ctx.install(|| {
        scratch
            .par_iter_mut()
            .zip(mats)
            .zip(&norms)
            .map(|((s, mat), &norm)| {
                for (e, i) in mat.range.clone().enumerate() {
                    s.work[mat.wide(e)] = update(grads[i] * gf, buf[i]);
                }
                let (m, n) = mat.mn();
                for x in &mut s.work[..m * n] {
                    *x /= norm;
                }
                newton_schulz(step, o.ns_steps, mat, s)
            })
            .collect()
    });
    // apply_pass: θ ← θ(1 − γλ) − (γ·r)·X.
    for ((mat, s), x) in mats.iter().zip(&*scratch).zip(finals) {
        let scale = step.lr * o.lr_ratio(mat.rows, mat.cols) as f32;
        for (e, p) in params[mat.range.clone()].iter_mut().enumerate() {
            *p = *p * step.decay - scale * s.work[x + mat.wide(e)];
        }
    }
}

/// The f64 oracle of Muon for one step at learning rate `lr` over `mats`: PyTorch's rule in
/// f64 (the iteration too).
pub(crate) fn oracle(
    o: &Muon,
    lr: f64,
    mats: &[Matrix],
    params: &mut [f64],
    grads: &[f32],
    buf: &mut [f64],
) {
    let mu = o.momentum;
    let lerp = |a: f64, b: f64, w: f64| a + w * (b - a);
    let (ca, cb, cc) = o.ns_coefficients;
    for mat in mats {
        let (m, n) = mat.mn();
        let mut x = vec![0.0f64; m * n];
        for (e, i) in mat.range.clone().enumerate() {
            let g = f64::from(grads[i]);
            buf[i] = lerp(buf[i], g, 1.0 - mu);
            x[mat.wide(e)] = if o.nesterov {
                lerp(g, buf[i], mu)
            } else {
                buf[i]
            };
        }
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(o.eps);
        x.iter_mut().for_each(|v| *v /= norm);
        for _ in 0..o.ns_steps {
            let s: Vec<f64> = (0..m * m)
                .map(|ij| (0..n).map(|k| x[ij / m * n + k] * x[ij % m * n + k]).sum())
                .collect();
            let p: Vec<f64> = (0..m * m)
                .map(|ij| {
                    let ss: f64 = (0..m).map(|k| s[ij / m * m + k] * s[k * m + ij % m]).sum();
                    cb * s[ij] + cc * ss
                })
                .collect();
            x = (0..m * n)
                .map(|ij| {
                    let px: f64 = (0..m).map(|k| p[ij / n * m + k] * x[k * n + ij % n]).sum();
                    ca * x[ij] + px
                })
                .collect();
        }
        let scale = lr * o.lr_ratio(mat.rows, mat.cols);
        let decay = 1.0 - lr * o.weight_decay;
        for (e, i) in mat.range.clone().enumerate() {
            params[i] = params[i] * decay - scale * x[mat.wide(e)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gemm` adds each output's products one by one in k order from 0, whatever the layout
    /// of B (rows, or a transpose it copies) and wherever an output falls (in a 4 × 16 tile,
    /// in the columns past the last tile, in a last group of fewer than four rows): the same
    /// bits as the plain loop.
    #[test]
    fn gemm_sums_each_output_in_k_order() {
        for shape in [[5, 7, 37], [9, 37, 23], [4, 32, 3], [16, 70, 5]] {
            gemm_matches_the_plain_loop(shape);
        }
    }

    fn gemm_matches_the_plain_loop([rows, cols, depth]: [usize; 3]) {
        let mut data = crate::verify::Data::new(3);
        let mut work = data.vector(rows * depth + depth * cols + rows * cols);
        let (a, b_at, c_at, out) = (0, rows * depth, rows * depth + depth * cols, work.len());
        work.resize(out + rows * cols, 0.0);
        let mut s = Scratch {
            work,
            result: vec![0.0; rows * cols],
            copy: vec![0.0; depth * cols],
        };
        for (b, transposed) in [
            (Operand::rows(b_at, cols), false),
            (Operand::transposed(b_at, depth), true),
        ] {
            let c = Some((c_at, 0.75f32));
            gemm(
                &mut s,
                [rows, cols, depth],
                Operand::rows(a, depth),
                b,
                c,
                -1.5,
                out,
                false,
            );
            let work = &s.work;
            for i in 0..rows {
                for j in 0..cols {
                    let mut s = 0.0f32;
                    for k in 0..depth {
                        let y = if transposed {
                            work[b_at + j * depth + k]
                        } else {
                            work[b_at + k * cols + j]
                        };
                        s += work[a + i * depth + k] * y;
                    }
                    let want = 0.75 * work[c_at + i * cols + j] + -1.5 * s;
                    assert_eq!(work[out + i * cols + j].to_bits(), want.to_bits());
                }
            }
        }
    }

    /// A symmetric product (S = X Xᵀ, then b·S + c·S S) skips the tiles below the diagonal and
    /// copies that triangle from above: the bits of the full product, which is symmetric bit for
    /// bit. 70 rows: whole tiles on and off the diagonal, and rows and columns past them.
    #[test]
    fn symmetric_products_equal_the_full_ones() {
        let (m, n) = (70, 90);
        let mut data = crate::verify::Data::new(5);
        let (x, sq, out) = (0, m * n, m * n + m * m);
        let mut work = data.vector(m * n);
        work.resize(out + m * m, 0.0);
        let scratch = Scratch {
            work,
            result: vec![0.0; m * n],
            copy: vec![0.0; m * n],
        };
        let run = |symmetric: bool| {
            let mut s = scratch.clone();
            let (a, b) = (Operand::rows(x, n), Operand::transposed(x, n));
            gemm(&mut s, [m, m, n], a, b, None, 1.0, sq, symmetric);
            let a = Operand::rows(sq, m);
            gemm(
                &mut s,
                [m, m, m],
                a,
                a,
                Some((sq, -4.775)),
                2.0315,
                out,
                symmetric,
            );
            s.work
        };
        let (fast, full) = (run(true), run(false));
        for at in [sq, out] {
            for i in 0..m {
                for j in 0..m {
                    let e = at + i * m + j;
                    assert_eq!(fast[e].to_bits(), full[e].to_bits(), "{at} ({i}, {j})");
                    assert_eq!(full[e].to_bits(), full[at + j * m + i].to_bits());
                }
            }
        }
    }
}
