use std::ops::Range;

use super::{Precision, ensure, ensure_f32_per_tensor, ensure_lr, ensure_non_negative};
use super::{precision_setters, setters};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory
/// Cost") as `torch.optim.Adafactor` computes it: second moments factored into a row and a
/// column average for every matrix, a full average for vectors; a relative step size.
///
/// ```text
/// g ← −g if maximize
/// w = t^τ  (τ = beta2_decay ≤ 0: 1 − β̂₂ₜ, the new mean's weight)
/// ρ = min(γ, 1/√t) ;  α = max(ε₂, RMS(θ)) · ρ        (θ before the decay, per tensor)
/// θ ← θ(1 − γλ)
/// matrix (n×m, the last two dims; leading dims are a batch of matrices):
///   R ← R + w(mean_row(g²) − R) ;  C ← C + w(mean_col(g²) − C)     (torch's lerp)
///   V̂ = R Cᵀ / max(mean(R), ε₁)
/// vector: V ← V + w(g² − V) ;  V̂ = V
/// u = g / √max(V̂, ε₁²)
/// θ ← θ − α/max(1, RMS(u)/d) · u                        (RMS(u) per tensor)
/// ```
///
/// ε₁ = None is f32's machine epsilon, as in PyTorch. The rows, columns and means are per tensor
/// of the layout (`with_layout`, `with_groups`; the whole group, a vector, for `with_params`),
/// shaped as the layout says. State: one slot `variance` holding, tensor by tensor, a matrix's
/// row averages then its column averages (B·(n + m) values) or a vector's full average: about
/// 0 B/parameter for matrices, 4 for vectors.
///
/// On the device a step runs `shaders/adafactor.wgsl` on the per-tensor driver
/// (`shaders/pieces.wgsl`): the row and column sums (one invocation per line of a matrix, its
/// elements in order), the means of the row averages, then the pieces' Σθ² and Σu², each
/// tensor's step, and the update: a fixed number of dispatches however many tensors there are.
/// The CPU twin computes the same sums in the same order, so the two agree bit for bit.
///
/// Defaults are PyTorch's: lr 1e-2, beta2_decay −0.8, eps (None, 1e-3), d 1.0, λ 0. f32
/// state, gradients and parameters only ([`crate::Error::UnsupportedPrecision`] otherwise); a
/// matrix must lie inside one storage binding of the device.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adafactor {
    /// Learning rate γ: the cap of the relative step size ρ and the weight decay's factor.
    pub lr: f64,
    /// τ ≤ 0: the new mean's weight in the second-moment averages is t^τ.
    pub beta2_decay: f64,
    /// (ε₁, ε₂): ε₁ bounds V̂ and mean(R) from below (None: f32's epsilon); ε₂ bounds RMS(θ).
    pub eps: (Option<f64>, f64),
    /// The clipping threshold d ≥ 1 of RMS(u).
    pub d: f64,
    /// Decoupled weight decay λ (θ ← θ(1 − γλ)).
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); all must be f32.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Adafactor {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            beta2_decay: -0.8,
            eps: (None, 1e-3),
            d: 1.0,
            weight_decay: 0.0,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Adafactor {
    lr: f64,
    beta2_decay: f64,
    eps: (Option<f64>, f64),
    d: f64,
    weight_decay: f64,
    maximize: bool,
});
precision_setters!(Adafactor);

impl Adafactor {
    /// Checks the hyperparameters as PyTorch does: lr, ε₁, ε₂, λ ≥ 0; τ ≤ 0; d ≥ 1; all
    /// finite; f32 state, gradients and parameters.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        let tau = self.beta2_decay;
        ensure(
            tau.is_finite() && tau <= 0.0,
            "beta2_decay",
            tau,
            "must be finite and <= 0",
        )?;
        if let Some(eps1) = self.eps.0 {
            ensure_non_negative("eps.0", eps1)?;
        }
        ensure_non_negative("eps.1", self.eps.1)?;
        ensure(
            self.d.is_finite() && self.d >= 1.0,
            "d",
            self.d,
            "must be finite and >= 1",
        )?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure_f32_per_tensor("adafactor", self.precision)
    }

    /// ε₁ as used: f32's machine epsilon when None (PyTorch's `torch.finfo(param.dtype).eps`).
    pub fn eps1(&self) -> f64 {
        self.eps.0.unwrap_or(f64::from(f32::EPSILON))
    }

    /// The relative step size's bound 1/√t (ρ = min(γ, 1/√t) on the device, so that a
    /// scheduled γ and a step count only the device knows still meet).
    pub fn rho_bound(t: u64) -> f64 {
        1.0 / (t.max(1) as f64).sqrt()
    }

    /// w = t^τ, the weight of step t's mean in the second-moment averages.
    pub fn weight(&self, t: u64) -> f64 {
        (t.max(1) as f64).powf(self.beta2_decay)
    }

    /// Per-step scalars for step `t`: γ, 1 − γλ, the sign, ε₁, ε₂, d, 1/√t in `lr2` and t^τ in
    /// `average`, each in f64 rounded once.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        self.uniform_with(lr, Self::rho_bound(t), self.weight(t))
    }

    /// The uniform with given 1/√t and t^τ (1 and 1 leave them to the device's step scalars).
    pub(crate) fn uniform_with(&self, lr: f64, rho_bound: f64, weight: f64) -> StepUniform {
        StepUniform {
            decay: (1.0 - lr * self.weight_decay) as f32,
            eps: self.eps1() as f32,
            eps2: self.eps.1 as f32,
            clip_threshold: self.d as f32,
            lr2: rho_bound as f32,
            average: weight as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}

/// How Adafactor sees one tensor of a group: its elements, where its state starts, and its
/// shape as a batch of matrices (`cols` 0: a vector of `rows` elements, not factored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Factor {
    /// Elements, relative to the group's first.
    pub range: Range<usize>,
    /// First state element: `batch·rows` row averages then `batch·cols` column averages, or
    /// a vector's `rows` averages.
    pub state: usize,
    /// Matrices in the tensor (the product of the leading dims).
    pub batch: usize,
    /// Rows of each matrix (the second-to-last dim), or a vector's length.
    pub rows: usize,
    /// Columns of each matrix (the last dim); 0 for a vector.
    pub cols: usize,
}

impl Factor {
    /// Whether the tensor's second moment is factored (it has two or more dims, as in PyTorch).
    pub fn factored(&self) -> bool {
        self.cols > 0
    }

    /// State elements: B·(n + m) for a matrix, n for a vector.
    pub fn state_len(&self) -> usize {
        if self.factored() {
            self.batch * (self.rows + self.cols)
        } else {
            self.rows
        }
    }
}

/// The factors of a group's tensors (element ranges and shapes, in order) and the length of
/// the state they need.
pub(crate) fn factors(tensors: &[(Range<usize>, Vec<usize>)]) -> (Vec<Factor>, usize) {
    let mut state = 0;
    let out = tensors
        .iter()
        .map(|(range, shape)| {
            let (batch, rows, cols) = match shape.as_slice() {
                [lead @ .., rows, cols] => (lead.iter().product(), *rows, *cols),
                _ => (1, range.len(), 0),
            };
            let f = Factor {
                range: range.clone(),
                state,
                batch,
                rows,
                cols,
            };
            state += f.state_len();
            f
        })
        .collect();
    (out, state)
}

/// One row or column of a matrix: `count` elements from `first` (relative to the group),
/// `stride` apart; its average is state element `state`. A line of `width` 4 is four adjacent
/// columns (their averages at `state`…`state + 3`): a matrix whose column count is a multiple
/// of 4 has its columns four to a line, and then only those lines have a stride that is a
/// multiple of 4, which is how `shaders/adafactor.wgsl` tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub first: usize,
    pub count: usize,
    pub stride: usize,
    pub state: usize,
    pub width: usize,
}

impl Factor {
    /// Matrix b's row averages start at this state element (its column averages at
    /// `state + batch·rows + b·cols`).
    pub fn row_state(&self, b: usize) -> usize {
        self.state + b * self.rows
    }

    /// Matrix b's column averages start at this state element.
    pub fn col_state(&self, b: usize) -> usize {
        self.state + self.batch * self.rows + b * self.cols
    }

    /// A matrix's lines: each matrix's rows, then each one's columns; none for a vector.
    pub fn lines(&self) -> Vec<Line> {
        if !self.factored() {
            return Vec::new();
        }
        let (rows, cols) = (self.rows, self.cols);
        let start = |b: usize| self.range.start + b * rows * cols;
        let row_lines = (0..self.batch).flat_map(|b| {
            (0..rows).map(move |r| Line {
                first: start(b) + r * cols,
                count: cols,
                stride: 1,
                state: self.row_state(b) + r,
                width: 1,
            })
        });
        let width = if cols.is_multiple_of(4) { 4 } else { 1 };
        let col_lines = (0..self.batch).flat_map(move |b| {
            (0..cols).step_by(width).map(move |c| Line {
                first: start(b) + c,
                count: rows,
                stride: cols,
                state: self.col_state(b) + c,
                width,
            })
        });
        row_lines.chain(col_lines).collect()
    }
}

/// The state elements of the tensor whose elements are `range` (relative to the group): its
/// factor's, where the state is shaped by the tensors (`factors` not empty), else `range`.
pub(crate) fn tensor_state(factors: &[Factor], range: Range<usize>) -> Range<usize> {
    match factors.iter().find(|f| f.range == range) {
        Some(f) => f.state..f.state + f.state_len(),
        None => range,
    }
}
