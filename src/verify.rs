//! Checking a backend against the CPU reference: ULP distance to the f32 twin, relative error
//! to the f64 oracle, the bounds both must meet, the variant matrix, and seeded test data.
//! The tests and `wgoptim verify` share everything here.
//!
//! ## Bounds and why
//! - **Twin** (same f32 operations in the same order): a device that rounds `+ − × ÷ √` as
//!   IEEE 754 does (lavapipe/LLVM does) matches it bit for bit. Vulkan allows `÷` 2.5 ULP and
//!   `√` (through inversesqrt) a few ULP, and drivers may fuse `a·b + c`; such a difference
//!   changes a step's update by a few ULP of the *update*, which moves θ by at most about one
//!   ULP of θ per step. The bound is therefore [`TWIN_ULP_PER_STEP`] ULP per step taken,
//!   capped at [`TWIN_ULP_MAX`].
//! - **Oracle** (f64): f32 storage rounds θ by ≤ ½ ULP each step, so after `t` steps θ may be
//!   off by about `t/2` ULP ≈ `t · 6e-8` relative, plus the update's own f32 error. The test is
//!   `|x − ref| ≤ atol·scale + rtol·|ref|` per buffer, with `scale` the buffer's largest |ref|
//!   (so entries near zero are judged against the buffer's magnitude), `atol = 1e-6` and
//!   `rtol = 1e-7 · max(t, 10)`.
//! - **Lion**, whose step is ±γ: where β₁m + (1−β₁)g lies within f32 rounding of 0 (a running
//!   bound the oracle keeps, [`crate::cpu::lion::oracle`]), f32 may take the other sign, and
//!   that parameter may then be 2γ from the oracle for good. Each such step adds 2γ to the
//!   parameter's slack, which is subtracted from its error before the test above
//!   ([`Diff::with_slack`]); with the tests' data 4 element-steps in 10⁶ count as ties (the
//!   bound is conservative), against 1 in 10⁵ allowed by `tests/cpu.rs`.

use crate::backend::Backend;
use crate::cpu::{CpuOptimizer, Oracle};
use crate::error::Result;
use crate::optim::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, Asgd, Lamb, Lion, NAdam, Optimizer, RAdam, RmsProp,
    Rprop, Sgd,
};
use crate::precision::{GradDType, ParamDType, StateDType, StatePrecision};

/// ULP allowed per step between a kernel and its f32 twin.
pub const TWIN_ULP_PER_STEP: u64 = 2;
/// Cap of the twin bound.
pub const TWIN_ULP_MAX: u64 = 64;
/// Absolute tolerance against the f64 oracle, as a fraction of the buffer's largest |ref|.
pub const ORACLE_ATOL: f64 = 1e-6;

/// The twin bound after `steps` steps.
pub fn twin_ulp_bound(steps: u64) -> u64 {
    (TWIN_ULP_PER_STEP * steps).min(TWIN_ULP_MAX)
}

/// The relative oracle tolerance after `steps` steps.
pub fn oracle_rtol(steps: u64) -> f64 {
    1e-7 * steps.max(10) as f64
}

/// Distance in units in the last place between two f32 (0 for +0 and −0; `u64::MAX` when
/// exactly one is NaN).
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    // Map the bit patterns onto a line where adjacent floats are adjacent integers.
    let ordered = |x: f32| {
        let bits = i64::from(x.to_bits() as i32);
        if bits < 0 {
            i64::from(i32::MIN) - bits
        } else {
            bits
        }
    };
    ordered(a).abs_diff(ordered(b))
}

/// How far one buffer is from its references.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Diff {
    /// Largest ULP distance to the f32 twin.
    pub max_ulp: u64,
    /// Largest |x − ref| / |ref| against the f64 oracle, over entries with |ref| ≥ 1e-3·scale.
    pub max_rel: f64,
    /// Largest |x − ref| / (atol·scale + rtol·|ref|): the share of the oracle tolerance used.
    pub tolerance_used: f64,
}

impl Diff {
    /// Compares `x` with the twin's `twin` and the oracle's `oracle` after `steps` steps.
    pub fn of(x: &[f32], twin: &[f32], oracle: &[f64], steps: u64) -> Self {
        Self::with_slack(x, twin, oracle, &[], steps)
    }

    /// [`Diff::of`], with each entry's oracle error first reduced by its `slack` (the
    /// oracle's [`crate::cpu::Oracle::param_slack`]; empty for none).
    pub fn with_slack(x: &[f32], twin: &[f32], oracle: &[f64], slack: &[f64], steps: u64) -> Self {
        let scale = oracle
            .iter()
            .fold(0.0f64, |m, r| m.max(r.abs()))
            .max(f64::MIN_POSITIVE);
        let rtol = oracle_rtol(steps);
        let mut d = Diff::default();
        let slack = slack.iter().copied().chain(std::iter::repeat(0.0));
        for (((&x, &t), &r), slack) in x.iter().zip(twin).zip(oracle).zip(slack) {
            d.max_ulp = d.max_ulp.max(ulp_distance(x, t));
            let err = (f64::from(x) - r).abs();
            let err = if err.is_nan() {
                err
            } else {
                (err - slack).max(0.0)
            };
            let used = if err.is_nan() {
                f64::INFINITY
            } else {
                err / (ORACLE_ATOL * scale + rtol * r.abs())
            };
            d.tolerance_used = d.tolerance_used.max(used);
            if r.abs() >= 1e-3 * scale {
                d.max_rel = d.max_rel.max(err / r.abs());
            }
        }
        d
    }

    /// The worse of two diffs, field by field.
    pub fn max(self, o: Diff) -> Diff {
        Diff {
            max_ulp: self.max_ulp.max(o.max_ulp),
            max_rel: self.max_rel.max(o.max_rel),
            tolerance_used: self.tolerance_used.max(o.tolerance_used),
        }
    }

    /// Whether both bounds hold after `steps` steps.
    pub fn passes(&self, steps: u64) -> bool {
        self.max_ulp <= twin_ulp_bound(steps) && self.tolerance_used <= 1.0
    }
}

/// The variants whose state type is one of `dtypes`: [`variants`] for f32, and those of
/// [`lowp_variants`] (half-precision gradients count with their state's type).
pub fn variants_with_state(dtypes: &[StateDType]) -> Vec<(String, Optimizer)> {
    let mut out = Vec::new();
    if dtypes.contains(&StateDType::F32) {
        out.extend(variants().into_iter().map(|(n, o)| (n.to_string(), o)));
    }
    out.extend(
        lowp_variants()
            .into_iter()
            .filter(|(_, o)| dtypes.contains(&o.state_layout().dtype())),
    );
    out
}

/// The low-precision variants: every variant of [`variants`] that can keep low-precision state,
/// with bf16 and with int8 state for groups of any size (`min_len` 0), named `NAME@bf16` and
/// `NAME@int8`; then one variant of each family reading f16 and bf16 gradients
/// (`NAME@grad-f16`), alone and with int8 state (`NAME@int8@grad-bf16`), and keeping bf16
/// parameters with f32 masters or alone (`NAME@param-bf16-master`, `NAME@param-bf16`, alone
/// and with int8 state and bf16 gradients). Centered RMSprop is
/// left out of the state types: it refuses them ([`crate::Error::UnsupportedPrecision`]).
pub fn lowp_variants() -> Vec<(String, Optimizer)> {
    let mut out = Vec::new();
    for dtype in [StateDType::Bf16, StateDType::Int8] {
        for (name, optimizer) in variants() {
            let precision = StatePrecision { dtype, min_len: 0 };
            let optimizer = optimizer.with_state_precision(precision);
            if optimizer.validate().is_ok() && !optimizer.state_layout().slots.is_empty() {
                out.push((format!("{name}@{}", dtype.name()), optimizer));
            }
        }
    }
    let int8 = StatePrecision::int8().min_len(0);
    for (name, optimizer) in variants() {
        if ![
            "sgd-momentum",
            "rmsprop-momentum",
            "adamw",
            "adagrad",
            "adamax",
            "radam",
            "adadelta",
            "nadam",
            "rprop",
            "asgd",
            "lion",
        ]
        .contains(&name)
        {
            continue;
        }
        for grads in [GradDType::F16, GradDType::Bf16] {
            let g = grads.name();
            let with_grads = optimizer.with_grad_dtype(grads);
            out.push((format!("{name}@grad-{g}"), with_grads));
            out.push((
                format!("{name}@int8@grad-{g}"),
                with_grads.with_state_precision(int8),
            ));
        }
        for params in [ParamDType::Bf16Master, ParamDType::Bf16] {
            let p = params.name();
            let with_params = optimizer.with_param_dtype(params);
            out.push((format!("{name}@param-{p}"), with_params));
            out.push((
                format!("{name}@int8@grad-bf16@param-{p}"),
                with_params
                    .with_state_precision(int8)
                    .with_grad_dtype(GradDType::Bf16),
            ));
        }
    }
    out
}

/// Every optimizer variant the tests and `wgoptim verify` run, by name.
pub fn variants() -> Vec<(&'static str, Optimizer)> {
    let sgd = Sgd::default().lr(1e-2);
    let rms = RmsProp::default().lr(1e-3);
    let adam = Adam::default().lr(1e-2);
    let adamw = Adam::adamw().lr(1e-2).weight_decay(0.1);
    let adagrad = Adagrad::default();
    let adamax = Adamax::default().lr(1e-2);
    let radam = RAdam::default().lr(1e-2);
    let adadelta = Adadelta::default();
    let nadam = NAdam::default().lr(1e-2);
    let rprop = Rprop::default();
    let asgd = Asgd::default();
    let lion = Lion::default().lr(1e-3);
    let lamb = Lamb::default().lr(1e-2);
    let adafactor = Adafactor::default();
    let muon = crate::Muon::default().lr(0.02);
    vec![
        ("sgd", sgd.into()),
        ("sgd-weight-decay", sgd.weight_decay(0.1).into()),
        ("sgd-momentum", sgd.momentum(0.9).into()),
        (
            "sgd-momentum-dampening",
            sgd.momentum(0.9).dampening(0.3).weight_decay(0.01).into(),
        ),
        (
            "sgd-nesterov",
            sgd.momentum(0.9).nesterov(true).weight_decay(0.01).into(),
        ),
        ("sgd-maximize", sgd.momentum(0.5).maximize(true).into()),
        ("rmsprop", rms.into()),
        ("rmsprop-centered", rms.centered(true).into()),
        (
            "rmsprop-momentum",
            rms.momentum(0.9).weight_decay(0.01).into(),
        ),
        (
            "rmsprop-centered-momentum",
            rms.centered(true).momentum(0.5).alpha(0.9).into(),
        ),
        ("rmsprop-maximize", rms.maximize(true).eps(1e-6).into()),
        ("adam", adam.into()),
        ("adam-l2", adam.weight_decay(0.1).into()),
        ("adam-amsgrad", adam.amsgrad(true).betas((0.8, 0.99)).into()),
        ("adam-maximize", adam.maximize(true).eps(1e-6).into()),
        ("adamw", adamw.into()),
        ("adamw-amsgrad", adamw.amsgrad(true).into()),
        ("adagrad", adagrad.into()),
        (
            "adagrad-decay",
            adagrad
                .lr_decay(0.01)
                .initial_accumulator_value(0.1)
                .weight_decay(0.01)
                .into(),
        ),
        ("adagrad-maximize", adagrad.maximize(true).into()),
        ("adamax", adamax.into()),
        (
            "adamax-l2",
            adamax.weight_decay(0.1).betas((0.8, 0.99)).into(),
        ),
        ("adamax-maximize", adamax.maximize(true).eps(1e-6).into()),
        ("radam", radam.into()),
        (
            "radam-l2",
            radam.weight_decay(0.1).betas((0.8, 0.99)).into(),
        ),
        (
            "radam-decoupled",
            radam
                .weight_decay(0.1)
                .decoupled_weight_decay(true)
                .maximize(true)
                .into(),
        ),
        ("adadelta", adadelta.into()),
        ("adadelta-l2", adadelta.weight_decay(0.1).rho(0.95).into()),
        (
            "adadelta-maximize",
            adadelta.maximize(true).eps(1e-4).into(),
        ),
        ("nadam", nadam.into()),
        (
            "nadam-l2",
            nadam.weight_decay(0.1).momentum_decay(0.01).into(),
        ),
        (
            "nadam-decoupled",
            nadam
                .weight_decay(0.1)
                .decoupled_weight_decay(true)
                .maximize(true)
                .into(),
        ),
        ("rprop", rprop.into()),
        (
            "rprop-bounds",
            rprop.etas((0.3, 1.5)).step_sizes((1e-3, 0.05)).into(),
        ),
        ("rprop-maximize", rprop.maximize(true).into()),
        ("asgd", asgd.into()),
        (
            "asgd-averaging",
            asgd.t0(10.0)
                .lambd(0.01)
                .alpha(0.5)
                .weight_decay(0.1)
                .into(),
        ),
        ("asgd-maximize", asgd.maximize(true).into()),
        ("lion", lion.into()),
        (
            "lion-decay",
            lion.weight_decay(0.1).betas((0.95, 0.98)).into(),
        ),
        ("lion-maximize", lion.maximize(true).into()),
        ("lamb", lamb.into()),
        (
            "lamb-no-decay",
            lamb.weight_decay(0.0).betas((0.8, 0.99)).into(),
        ),
        (
            "lamb-nvlamb",
            lamb.weight_decay(0.0)
                .use_nvlamb(true)
                .maximize(true)
                .into(),
        ),
        ("adafactor", adafactor.into()),
        (
            "adafactor-decay",
            adafactor
                .lr(0.05)
                .weight_decay(0.1)
                .beta2_decay(-0.5)
                .d(2.0)
                .into(),
        ),
        (
            "adafactor-maximize",
            adafactor.eps((Some(1e-20), 1e-2)).maximize(true).into(),
        ),
        ("muon", muon.into()),
        (
            "muon-plain-rms",
            muon.nesterov(false)
                .weight_decay(0.0)
                .ns_steps(4)
                .adjust_lr_fn(crate::AdjustLr::MatchRmsAdamw)
                .into(),
        ),
    ]
}

/// The columns of the matrix a shape-aware rule is run over at `len` elements (`verify`,
/// `memory`, `bench`): the power of two nearest below √len.
pub fn matrix_cols(len: usize) -> usize {
    1 << len.max(1).isqrt().ilog2()
}

/// Parameters of the matrices Muon is verified, profiled and benchmarked over at most: its
/// Newton–Schulz products cost O(m) operations per parameter (m×n matrices, m ≤ n) on the
/// device, in the CPU twin and in the f64 oracle alike.
pub const MUON_MAX_SIZE: usize = 1 << 16;

/// The layout `wgoptim verify` runs `optimizer` over at `size` parameters: for the rules whose
/// state is shaped by the tensors (Adafactor), a matrix of `size/c` rows and c columns (c the
/// power of two nearest below √size) and a vector of the rest, so that both its factored and
/// its full averages are checked; for Muon, which runs on matrices only, a wide and a tall
/// matrix over at most [`MUON_MAX_SIZE`] parameters (r/2 × c and c × r/2, r·c of them, or
/// 1 × size below 8); `None` (one flat vector) for the others and below 4.
pub fn shaped_layout(optimizer: &Optimizer, size: usize) -> Option<crate::ParamLayout> {
    if optimizer.kernel() == crate::Kernel::Muon {
        let size = size.clamp(1, MUON_MAX_SIZE);
        let mut layout = crate::ParamLayout::new(64);
        let cols = matrix_cols(size);
        let rows = size / cols;
        if rows < 2 || size < 8 {
            layout.add("w", &[1, size]).ok()?;
        } else {
            layout.add("w", &[rows / 2, cols]).ok()?;
            layout.add("t", &[cols, rows - rows / 2]).ok()?;
        }
        return Some(layout);
    }
    if !optimizer.kernel().shaped_state() || size < 4 {
        return None;
    }
    let cols = matrix_cols(size);
    let rows = size / cols;
    let mut layout = crate::ParamLayout::new(64);
    layout.add("w", &[rows, cols]).ok()?;
    if size > rows * cols {
        layout.add("b", &[size - rows * cols]).ok()?;
    }
    Some(layout)
}

/// Seeded random test data.
///
/// Parameters are uniform in (−1, 1). Gradients have a random sign and a magnitude uniform in
/// [0.25, 1): with weight decay λ ≤ 0.1 and |θ| near 1, `g + λθ` then cannot cancel to almost
/// nothing. Such a cancellation's f32 rounding (≈ 1e-10) is amplified by the ε-normalized rules
/// (RMSprop's g/(√v + ε) with √v ≈ 0.1|g|) into errors of 1e-3 against the f64 oracle: that
/// measures the conditioning of the data, not the kernel (measured: the kernel still matched its
/// f32 twin bit for bit on such data).
pub struct Data {
    state: u64,
}

impl Data {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// SplitMix64 (Steele, Lea and Flood 2014): the next 64 random bits. Self-contained so
    /// that the reference check needs no random-number crate.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits (every value exactly representable in f32).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// `n` samples of N(0, σ²) (Box–Muller in f64, rounded once).
    pub fn normal(&mut self, n: usize, sigma: f64) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = (f64::from(self.unit()) + 0.5 / (1u64 << 24) as f64).min(1.0);
            let (sin, cos) = (std::f64::consts::TAU * f64::from(self.unit())).sin_cos();
            let r = sigma * (-2.0 * u1.ln()).sqrt();
            out.extend([(r * cos) as f32, (r * sin) as f32]);
        }
        out.truncate(n);
        out
    }

    /// `n` gradients: random sign, magnitude uniform in [0.25, 1).
    pub fn gradients(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let magnitude = 0.25 + 0.75 * self.unit();
                let magnitude = if magnitude < 1.0 { magnitude } else { 0.25 };
                if self.next_u64() >> 63 == 1 {
                    magnitude
                } else {
                    -magnitude
                }
            })
            .collect()
    }

    /// `n` values uniform in (−1, 1) \ {0}.
    pub fn vector(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                loop {
                    let x = 2.0 * self.unit() - 1.0;
                    if x != 0.0 {
                        break x;
                    }
                }
            })
            .collect()
    }
}

/// The result of running one backend against both references.
#[derive(Clone, Debug)]
pub struct Report {
    /// Steps taken when the diff was taken.
    pub steps: u64,
    /// Worst over parameters and every state buffer.
    pub diff: Diff,
}

/// Runs `backend` (already holding the parameters `params`) for `steps` steps with fresh
/// seeded gradients each step, beside the f32 twin and the f64 oracle, and compares
/// parameters and every state buffer after each step listed in `checkpoints`.
pub fn run_against_reference(
    backend: &mut dyn Backend,
    params: &[f32],
    steps: u64,
    checkpoints: &[u64],
    seed: u64,
) -> Result<Vec<Report>> {
    let optimizer = *backend.optimizer();
    let cpu = crate::CpuContext::new();
    // A backend over a layout (Adafactor's matrices): the twin and the oracle see its tensors.
    let (mut twin, mut oracle) = match backend.layout() {
        Some(layout) => {
            let mut twin = CpuOptimizer::with_layout(&cpu, optimizer, layout.clone())?;
            twin.write_params(params)?;
            let tensors = layout
                .tensors()
                .iter()
                .map(|t| (t.range(), t.shape.clone()));
            (
                twin,
                Oracle::with_shapes(optimizer, params, tensors.collect())?,
            )
        }
        None => (
            CpuOptimizer::with_params(&cpu, optimizer, params)?,
            Oracle::new(optimizer, params)?,
        ),
    };
    let mut data = Data::new(seed);
    let mut reports = Vec::new();
    for t in 1..=steps {
        let grads = data.gradients(params.len());
        backend.write_grads(&grads)?;
        backend.step()?;
        twin.write_grads(&grads)?;
        twin.step()?;
        // The oracle takes the gradients as the kernels read them: rounded to their type.
        let dtype = optimizer.grad_dtype();
        let rounded: Vec<f32> = grads.iter().map(|&g| dtype.round(g)).collect();
        oracle.step(&rounded)?;
        if checkpoints.contains(&t) {
            let mut diff = Diff::with_slack(
                &backend.read_params()?,
                twin.params(),
                oracle.params(),
                oracle.param_slack(),
                t,
            );
            for slot in optimizer.state_layout().slots {
                let reference = oracle.state(slot.name).unwrap_or_default();
                diff = diff.max(Diff::of(
                    &backend.read_state(slot.name)?,
                    &twin.read_state(slot.name)?,
                    reference,
                    t,
                ));
            }
            reports.push(Report { steps: t, diff });
        }
    }
    Ok(reports)
}
