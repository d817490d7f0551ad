use super::{Precision, ensure, ensure_f32_per_tensor, ensure_lr, ensure_non_negative};
use super::{precision_setters, setters};
use crate::error::Result;
use crate::uniform::StepUniform;

/// How Muon scales the learning rate of an A×B matrix (`adjust_lr_fn` of `torch.optim.Muon`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustLr {
    /// √max(1, A/B) (PyTorch's default, `None` or `"original"`).
    #[default]
    Original,
    /// 0.2·√max(A, B): the update's RMS matches AdamW's (`"match_rms_adamw"`).
    MatchRmsAdamw,
    /// √(A/B) (`"spectral_unclamped"`).
    SpectralUnclamped,
}

impl AdjustLr {
    /// Every rule, in PyTorch's order.
    pub const ALL: [AdjustLr; 3] = [
        AdjustLr::Original,
        AdjustLr::MatchRmsAdamw,
        AdjustLr::SpectralUnclamped,
    ];

    /// PyTorch's name: `original`, `match_rms_adamw` or `spectral_unclamped`.
    pub fn name(self) -> &'static str {
        match self {
            AdjustLr::Original => "original",
            AdjustLr::MatchRmsAdamw => "match_rms_adamw",
            AdjustLr::SpectralUnclamped => "spectral_unclamped",
        }
    }

    /// The rule named `name` (PyTorch's names; `none` is `original`).
    pub fn parse(name: &str) -> Result<Self> {
        if name.eq_ignore_ascii_case("none") {
            return Ok(AdjustLr::Original);
        }
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                crate::Error::Argument(format!(
                    "adjust_lr_fn `{name}`: expected none, original, match_rms_adamw or \
                     spectral_unclamped"
                ))
            })
    }
}

/// Muon (Jordan et al., 2024, "Muon: An optimizer for hidden layers in neural networks"), as
/// `torch.optim.Muon` computes it: the momentum of each matrix, orthogonalized by a quintic
/// Newton–Schulz iteration.
///
/// ```text
/// B ← lerp(B, G, 1−μ)                       (torch's lerp; B the momentum buffer)
/// U = lerp(G, B, μ) if nesterov, else B
/// X₀ = U / max(‖U‖_F, ε), taken as Uᵀ where A > B (so that X is m×n, m ≤ n)
/// k = 1…ns_steps:  S = X Xᵀ ;  P = b·S + c·(S S) ;  X ← a·X + P X
/// θ ← θ(1 − γλ) − γ·r·X                     (Xᵀ back where A > B)
/// r = √max(1, A/B) (original), 0.2·√max(A, B) (match_rms_adamw) or √(A/B)
/// ```
///
/// Every tensor must be a matrix (PyTorch refuses other shapes; here
/// [`crate::Error::InvalidShape`]): give a layout (`with_layout`, `with_groups`) whose tensors are
/// 2-D. PyTorch runs the iteration in bf16; here it runs in f32, so the result is PyTorch's
/// rule computed more accurately (the goldens in `tests/golden/muon_reference.py` compare with
/// both).
///
/// On the device a step runs `shaders/muon.wgsl` on the per-tensor driver
/// (`shaders/pieces.wgsl`): the momentum and ‖U‖ over pieces, the scaling, then
/// 3·ns_steps matrix products over 64×64 tiles of every matrix of the group at once
/// (`shaders/gemm.wgsl`, each sum over k in order, no fused multiply-add), then the update:
/// a fixed number of dispatches however many matrices there are. The CPU twin computes the same
/// sums in the same order, so the two agree bit for bit. The products need scratch space of
/// 2mn + m² floats per matrix on the device.
///
/// Defaults are PyTorch's: lr 1e-3, λ 0.1, μ 0.95, Nesterov, (a, b, c) = (3.4445, −4.7750,
/// 2.0315), ε 1e-7, 5 steps, `original`. State: `momentum_buffer` (4 B/parameter). f32
/// state, gradients and parameters only ([`crate::Error::UnsupportedPrecision`] otherwise).
///
/// ```
/// use wgoptim::{Backend, CpuContext, CpuOptimizer, Error, Muon, ParamLayout};
/// let mut layout = ParamLayout::new(64);
/// layout.add("w", &[32, 64])?;
/// let muon = Muon::default().lr(0.02);
/// let mut opt = CpuOptimizer::with_layout(&CpuContext::new(), muon, layout)?;
/// opt.write_tensor("w", &vec![0.5; 32 * 64])?;
/// opt.write_tensor_grads("w", &(0..2048).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<_>>())?;
/// opt.step()?;
/// assert!(opt.read_tensor("w")?.iter().all(|&x| x != 0.5));
/// // A vector is not a matrix, as in PyTorch: give biases another optimizer.
/// let mut biases = ParamLayout::new(64);
/// biases.add("b", &[64])?;
/// let refused = CpuOptimizer::with_layout(&CpuContext::new(), muon, biases);
/// assert!(matches!(refused, Err(Error::InvalidShape(_))));
/// # Ok::<(), wgoptim::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Muon {
    /// Learning rate γ (scaled per matrix by `adjust_lr_fn`).
    pub lr: f64,
    /// Decoupled weight decay λ (θ ← θ(1 − γλ)).
    pub weight_decay: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Orthogonalize the Nesterov look-ahead lerp(G, B, μ) instead of B.
    pub nesterov: bool,
    /// (a, b, c): the Newton–Schulz polynomial X ← aX + (bS + cS²)X.
    pub ns_coefficients: (f64, f64, f64),
    /// ε, the floor of ‖U‖_F.
    pub eps: f64,
    /// Newton–Schulz iterations (below 100, as PyTorch requires).
    pub ns_steps: u32,
    /// How the learning rate is scaled by the matrix's shape.
    pub adjust_lr_fn: AdjustLr,
    /// How state, gradients and parameters are stored ([`Precision`]); all must be f32.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Muon {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            weight_decay: 0.1,
            momentum: 0.95,
            nesterov: true,
            ns_coefficients: (3.4445, -4.7750, 2.0315),
            eps: 1e-7,
            ns_steps: 5,
            adjust_lr_fn: AdjustLr::Original,
            precision: Precision::default(),
        }
    }
}

setters!(Muon {
    lr: f64,
    weight_decay: f64,
    momentum: f64,
    nesterov: bool,
    ns_coefficients: (f64, f64, f64),
    eps: f64,
    ns_steps: u32,
    adjust_lr_fn: AdjustLr,
});
precision_setters!(Muon);

impl Muon {
    /// Values of the kernel's variant constant `[NESTEROV]`.
    pub fn variant(&self) -> [bool; 1] {
        [self.nesterov]
    }

    /// Checks the hyperparameters as PyTorch does (lr, λ, μ ≥ 0; fewer than 100 steps) and
    /// what f32 needs (all finite, ε ≥ 0; μ ≤ 1, so that the buffer's lerp weight 1 − μ is a
    /// weight); f32 state, gradients and parameters.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure(
            self.momentum.is_finite() && (0.0..=1.0).contains(&self.momentum),
            "momentum",
            self.momentum,
            "must be in [0, 1]",
        )?;
        let (a, b, c) = self.ns_coefficients;
        for (name, v) in [
            ("ns_coefficients.0", a),
            ("ns_coefficients.1", b),
            ("ns_coefficients.2", c),
        ] {
            ensure(v.is_finite(), name, v, "must be finite")?;
        }
        ensure_non_negative("eps", self.eps)?;
        ensure(
            self.ns_steps < 100,
            "ns_steps",
            f64::from(self.ns_steps),
            "must be less than 100",
        )?;
        ensure_f32_per_tensor("muon", self.precision)
    }

    /// r, the learning rate's factor for an A×B matrix (PyTorch's `_adjust_lr`), in f64.
    pub fn lr_ratio(&self, rows: usize, cols: usize) -> f64 {
        let (a, b) = (rows as f64, cols as f64);
        match self.adjust_lr_fn {
            AdjustLr::Original => (a / b).max(1.0).sqrt(),
            AdjustLr::MatchRmsAdamw => 0.2 * a.max(b).sqrt(),
            AdjustLr::SpectralUnclamped => (a / b).sqrt(),
        }
    }

    /// Per-step scalars: γ, 1 − γλ, μ, 1 − μ (`one_minus_beta1`), ε and the coefficients
    /// (a, b, c) in `eta_minus`, `eta_plus` and `step_size_min`, each in f64 rounded once.
    pub fn uniform(&self, lr: f64, _t: u64) -> StepUniform {
        let (a, b, c) = self.ns_coefficients;
        StepUniform {
            decay: (1.0 - lr * self.weight_decay) as f32,
            momentum: self.momentum as f32,
            one_minus_beta1: (1.0 - self.momentum) as f32,
            eps: self.eps as f32,
            eta_minus: a as f32,
            eta_plus: b as f32,
            step_size_min: c as f32,
            ..StepUniform::neutral(lr, false)
        }
    }
}

/// The side of the square output tiles of `shaders/gemm.wgsl` (a workgroup of 16 × 16
/// invocations, 4 × 4 outputs each), written into the shader as `OUT_TILE`.
pub(crate) const GEMM_TILE: usize = 64;

/// How Muon sees one tensor of a group: an A×B matrix whose iteration runs on X (m×n, m ≤ n:
/// the matrix, or its transpose where A > B) in scratch space from element `work`: X₀, X₁
/// (m·n each, the iteration's two buffers) and P (m·m); S (m·m) in the X a step overwrites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Matrix {
    /// Elements, relative to the group's first.
    pub range: std::ops::Range<usize>,
    /// A, the rows.
    pub rows: usize,
    /// B, the columns.
    pub cols: usize,
    /// First scratch element of X₀.
    pub work: usize,
}

impl Matrix {
    /// Whether X is the transpose (A > B).
    pub fn transposed(&self) -> bool {
        self.rows > self.cols
    }

    /// (m, n): X's rows and columns, m ≤ n.
    pub fn mn(&self) -> (usize, usize) {
        (self.rows.min(self.cols), self.rows.max(self.cols))
    }

    /// Scratch elements: 2mn + m² (X₀, X₁, P; S lives in the X a step overwrites).
    pub fn work_len(&self) -> usize {
        let (m, n) = self.mn();
        2 * m * n + m * m
    }

    /// Where X holds element `e` of the matrix (row-major, relative to its first): e itself,
    /// or (e mod B)·A + e div B for the transpose.
    pub fn wide(&self, e: usize) -> usize {
        if self.transposed() {
            (e % self.cols) * self.rows + e / self.cols
        } else {
            e
        }
    }
}

/// The matrices of a group's tensors (element ranges and shapes, in order) and the scratch
/// length they need; [`crate::Error::InvalidShape`] for a tensor that is not 2-D, as PyTorch
/// refuses it.
pub(crate) fn matrices(
    tensors: &[(std::ops::Range<usize>, Vec<usize>)],
) -> Result<(Vec<Matrix>, usize)> {
    let mut work = 0;
    let mut out = Vec::with_capacity(tensors.len());
    for (k, (range, shape)) in tensors.iter().enumerate() {
        let &[rows, cols] = shape.as_slice() else {
            return Err(crate::Error::InvalidShape(format!(
                "Muon only supports 2-D parameters, as PyTorch: tensor {k} has shape {shape:?}; \
                 give a layout whose tensors are matrices (and another optimizer for the rest)"
            )));
        };
        let m = Matrix {
            range: range.clone(),
            rows,
            cols,
            work,
        };
        work += m.work_len();
        out.push(m);
    }
    Ok((out, work))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Dispatch, Optimizer};

    /// A step is the same passes whatever the number of matrices: the momentum and norm, the
    /// scaling, three products per Newton–Schulz step with the iterate alternating between its
    /// two buffers, the update; only `ns_steps` changes their number.
    #[test]
    fn passes_follow_ns_steps_not_the_matrices() {
        for ns in [0u32, 1, 4, 5] {
            let passes = Optimizer::from(Muon::default().ns_steps(ns)).passes();
            let names: Vec<&str> = passes.iter().map(|p| p.0).collect();
            let mut want = vec!["moments_pass", "finish_pass", "scale_pass"];
            for k in 0..ns {
                let p = k % 2;
                want.extend([
                    ["gram_pass_0", "gram_pass_1"][p as usize],
                    ["poly_pass_0", "poly_pass_1"][p as usize],
                    ["combine_pass_0", "combine_pass_1"][p as usize],
                ]);
            }
            want.push("apply_pass");
            assert_eq!(names, want, "ns_steps {ns}");
            let once = passes
                .iter()
                .filter(|p| !matches!(p.1, Dispatch::Pieces))
                .count();
            assert_eq!(once as u32, 2 + 3 * ns, "dispatched once per group");
        }
    }

    /// PyTorch's `_adjust_lr` for a tall, a wide and a square matrix.
    #[test]
    fn lr_ratios_are_pytorchs() {
        let ratio = |a, rows, cols| Muon::default().adjust_lr_fn(a).lr_ratio(rows, cols);
        assert_eq!(ratio(AdjustLr::Original, 8, 2), 2.0);
        assert_eq!(ratio(AdjustLr::Original, 2, 8), 1.0);
        assert_eq!(ratio(AdjustLr::MatchRmsAdamw, 2, 100), 2.0);
        assert_eq!(ratio(AdjustLr::SpectralUnclamped, 2, 8), 0.5);
        assert_eq!(ratio(AdjustLr::SpectralUnclamped, 8, 8), 1.0);
        assert_eq!(AdjustLr::parse("None").unwrap(), AdjustLr::Original);
        assert!(AdjustLr::parse("sqrt").is_err());
    }

    /// What Muon sees of a tall matrix: X is its transpose, element e of the matrix at
    /// (e mod B)·A + e div B.
    #[test]
    fn a_tall_matrix_is_iterated_transposed() {
        let (mats, work) = matrices(&[(0..6, vec![3, 2]), (8..14, vec![2, 3])]).unwrap();
        assert!(mats[0].transposed() && !mats[1].transposed());
        assert_eq!(mats[0].mn(), (2, 3));
        let wide: Vec<usize> = (0..6).map(|e| mats[0].wide(e)).collect();
        assert_eq!(wide, [0, 3, 1, 4, 2, 5]);
        assert_eq!(mats[1].work, 2 * 6 + 4);
        assert_eq!(work, 2 * (2 * 6 + 4));
        assert!(matrices(&[(0..4, vec![4])]).is_err());
    }
}
