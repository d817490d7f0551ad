//! Hyperparameters of each optimizer family, with PyTorch's defaults, their validation, the
//! state each variant needs, and the per-step scalars (computed in f64) that the kernels read.
//!
//! One file per family; [`Optimizer`] is the closed set the GPU and CPU paths accept.

mod adadelta;
mod adafactor;
mod adagrad;
mod adam;
mod adamax;
mod asgd;
mod lamb;
mod lion;
pub(crate) mod muon;
mod nadam;
mod radam;
mod rmsprop;
mod rprop;
mod sgd;
pub mod spec;

pub use adadelta::Adadelta;
pub use adafactor::Adafactor;
pub(crate) use adafactor::{Factor, Line, factors, tensor_state};
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use asgd::Asgd;
pub use lamb::Lamb;
pub use lion::Lion;
pub use muon::{AdjustLr, Muon};
pub use nadam::NAdam;
pub use radam::RAdam;
pub use rmsprop::RmsProp;
pub use rprop::Rprop;
pub use sgd::Sgd;

use crate::error::{Error, Result};
pub(crate) use crate::precision::precision_setters;
pub use crate::precision::{
    GradDType, ParamDType, Precision, Rounding, StateDType, StatePrecision,
};
use crate::uniform::{StepScalars, StepUniform};

/// The kernel families, one WGSL file each in `shaders/`. Variants of a family (Nesterov,
/// centered, AMSGrad, decoupled decay…) are override constants or uniform values of its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// `shaders/sgd.wgsl`
    Sgd,
    /// `shaders/rmsprop.wgsl`
    RmsProp,
    /// `shaders/adam.wgsl` (Adam, AdamW, RAdam and NAdam)
    Adam,
    /// `shaders/adagrad.wgsl`
    Adagrad,
    /// `shaders/adamax.wgsl`
    Adamax,
    /// `shaders/adadelta.wgsl`
    Adadelta,
    /// `shaders/rprop.wgsl`
    Rprop,
    /// `shaders/asgd.wgsl`
    Asgd,
    /// `shaders/lion.wgsl`
    Lion,
    /// `shaders/lamb.wgsl`, on the per-tensor driver `shaders/pieces.wgsl`
    Lamb,
    /// `shaders/adafactor.wgsl`, on the per-tensor driver `shaders/pieces.wgsl`
    Adafactor,
    /// `shaders/muon.wgsl` and `shaders/gemm.wgsl`, on the per-tensor driver
    Muon,
}

impl Kernel {
    /// Every kernel family.
    pub const ALL: [Kernel; 12] = [
        Kernel::Sgd,
        Kernel::RmsProp,
        Kernel::Adam,
        Kernel::Adagrad,
        Kernel::Adamax,
        Kernel::Adadelta,
        Kernel::Rprop,
        Kernel::Asgd,
        Kernel::Lion,
        Kernel::Lamb,
        Kernel::Adafactor,
        Kernel::Muon,
    ];

    /// The family's file name in `shaders/`, without extension.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Sgd => "sgd",
            Kernel::RmsProp => "rmsprop",
            Kernel::Adam => "adam",
            Kernel::Adagrad => "adagrad",
            Kernel::Adamax => "adamax",
            Kernel::Adadelta => "adadelta",
            Kernel::Rprop => "rprop",
            Kernel::Asgd => "asgd",
            Kernel::Lion => "lion",
            Kernel::Lamb => "lamb",
            Kernel::Adafactor => "adafactor",
            Kernel::Muon => "muon",
        }
    }

    /// PyTorch's names of the family's state slots, in binding order (bindings 4, 5, …).
    pub fn state_names(self) -> &'static [&'static str] {
        match self {
            Kernel::Sgd => &["momentum_buffer"],
            Kernel::RmsProp => &["square_avg", "grad_avg", "momentum_buffer"],
            Kernel::Adam => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            Kernel::Adagrad => &["sum"],
            Kernel::Adamax => &["exp_avg", "exp_inf"],
            Kernel::Adadelta => &["square_avg", "acc_delta"],
            Kernel::Rprop => &["prev", "step_size"],
            Kernel::Asgd => &["ax"],
            Kernel::Lion => &["exp_avg"],
            Kernel::Lamb => &["exp_avg", "exp_avg_sq"],
            Kernel::Adafactor => &["variance"],
            Kernel::Muon => &["momentum_buffer"],
        }
    }

    /// Whether the family needs per-tensor sums inside a step (LAMB's trust ratio, Adafactor's
    /// rows, columns and RMS, Muon's norms and products): its kernel runs on the per-tensor
    /// driver, passes over pieces of one tensor each.
    pub fn per_tensor(self) -> bool {
        matches!(self, Kernel::Lamb | Kernel::Adafactor | Kernel::Muon)
    }

    /// Whether the family needs scratch space on the device (Muon's Newton–Schulz matrices).
    pub fn scratch(self) -> bool {
        self == Kernel::Muon
    }

    /// The kernel's entry points, in the order a step runs them, each with what its dispatch
    /// covers: `main` over elements for the element-wise and block-wise drivers; the
    /// per-tensor driver's passes (`shaders/pieces.wgsl`), after Adafactor's own row/column and
    /// mean passes. Muon's are [`Optimizer::passes`]: their number depends on `ns_steps`.
    pub fn passes(self) -> &'static [(&'static str, Dispatch)] {
        const PIECES: [(&str, Dispatch); 3] = [
            ("moments_pass", Dispatch::Pieces),
            ("finish_pass", Dispatch::Tensors),
            ("apply_pass", Dispatch::Pieces),
        ];
        match self {
            Kernel::Lamb => &PIECES,
            Kernel::Adafactor => &[
                ("lines_pass", Dispatch::Lines),
                ("means_pass", Dispatch::Matrices),
                PIECES[0],
                PIECES[1],
                PIECES[2],
            ],
            Kernel::Muon => &[
                PIECES[0],
                PIECES[1],
                ("scale_pass", Dispatch::WideTiles),
                ("gram_pass_0", Dispatch::SquareTiles),
                ("gram_pass_1", Dispatch::SquareTiles),
                ("poly_pass_0", Dispatch::SquareTiles),
                ("poly_pass_1", Dispatch::SquareTiles),
                ("combine_pass_0", Dispatch::WideTiles),
                ("combine_pass_1", Dispatch::WideTiles),
                PIECES[2],
            ],
            _ => &[("main", Dispatch::Elements)],
        }
    }

    /// Whether the family's state is shaped by the tensors rather than one value per parameter
    /// (Adafactor's factored averages): its length comes from the layout's shapes.
    pub fn shaped_state(self) -> bool {
        self == Kernel::Adafactor
    }

    /// Whether the family sees the tensors' shapes, so that benchmarks and checks run it over
    /// matrices: Adafactor (its factored state) and Muon (matrices only).
    pub fn sees_shapes(self) -> bool {
        self.shaped_state() || self == Kernel::Muon
    }

    /// Number of state bindings the family's kernel declares (bindings 4, 5, …).
    pub fn state_bindings(self) -> usize {
        self.state_names().len()
    }

    /// The override constants that select the family's variants, all `bool`.
    pub fn variant_constants(self) -> &'static [&'static str] {
        match self {
            Kernel::Sgd => &["MOMENTUM", "NESTEROV"],
            Kernel::RmsProp => &["CENTERED", "MOMENTUM"],
            Kernel::Adam => &["AMSGRAD", "RECTIFIED", "NESTEROV"],
            Kernel::Lamb => &["ADAPT"],
            Kernel::Muon => &["NESTEROV"],
            Kernel::Adagrad
            | Kernel::Adamax
            | Kernel::Adadelta
            | Kernel::Rprop
            | Kernel::Asgd
            | Kernel::Lion
            | Kernel::Adafactor => &[],
        }
    }
}

/// One state tensor of an optimizer (PyTorch's state-dict name).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateSlot {
    /// PyTorch's name: `momentum_buffer`, `square_avg`, `exp_avg`, `sum`, …
    pub name: &'static str,
    /// Position among the family's state bindings (binding `4 + slot`).
    pub slot: usize,
    /// Initial value of every element.
    pub init: f32,
    /// Element type.
    pub dtype: StateDType,
    /// Never negative (second moments, square averages, sums): int8 codes it with the unsigned
    /// map, bf16 rounds it stochastically (see [`Rounding`]).
    pub non_negative: bool,
}

impl StateSlot {
    /// How a bf16 copy of this state is rounded: stochastically for the non-negative
    /// accumulators, whose per-step change is often under half a bf16 ulp; to nearest-even for
    /// the others.
    pub fn rounding(&self) -> Rounding {
        if self.non_negative {
            Rounding::Stochastic
        } else {
            Rounding::NearestEven
        }
    }
}

/// The state tensors one optimizer variant allocates: only those it uses.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StateLayout {
    /// The slots, in binding order.
    pub slots: Vec<StateSlot>,
}

impl StateLayout {
    fn push(&mut self, dtype: StateDType, name: &'static str, slot: usize, init: f32) {
        let non_negative = matches!(
            name,
            "square_avg"
                | "variance"
                | "exp_avg_sq"
                | "max_exp_avg_sq"
                | "sum"
                | "exp_inf"
                | "acc_delta"
                | "step_size"
        );
        self.slots.push(StateSlot {
            name,
            slot,
            init,
            dtype,
            non_negative,
        });
    }

    /// State bytes of `len` parameters as allocated (before padding to whole vec4 blocks).
    pub fn bytes(&self, len: usize) -> u64 {
        self.slots.iter().map(|s| s.dtype.bytes(len)).sum()
    }

    /// State bytes per parameter over a large tensor (SGD 0, momentum 4, Adam 8, AMSGrad 12;
    /// bf16 half of that; int8 1 + 4/256 per state tensor).
    pub fn bytes_per_param(&self) -> f64 {
        let n = 1 << 20;
        self.bytes(n) as f64 / n as f64
    }

    /// The element type of the state (every slot has the same; f32 without state).
    pub fn dtype(&self) -> StateDType {
        self.slots.first().map_or(StateDType::F32, |s| s.dtype)
    }

    /// The slot with PyTorch's state name `name`.
    pub fn find(&self, name: &str) -> Option<&StateSlot> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// The names of all slots, comma-separated (for messages).
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.slots.iter().map(|s| s.name).collect();
        names.join(", ")
    }
}

/// What one dispatch of a kernel's pass covers ([`Kernel::passes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// The elements of each binding chunk (the element-wise and block-wise drivers).
    Elements,
    /// The per-tensor driver's pieces of each binding chunk, a workgroup each.
    Pieces,
    /// The rows and columns of the matrices in each binding chunk (Adafactor).
    Lines,
    /// The group's tensors, once per group.
    Tensors,
    /// The group's matrices, once per group (Adafactor).
    Matrices,
    /// The output tiles of every m×n matrix X of the group, once per group (Muon).
    WideTiles,
    /// The output tiles of every m×m matrix S and P of the group, once per group (Muon).
    SquareTiles,
}

/// An optimizer: one of the families with its hyperparameters.
///
/// ```
/// use wgoptim::{Adam, Optimizer};
/// let opt = Optimizer::from(Adam::adamw().lr(3e-4));
/// assert_eq!(opt.name(), "adamw");
/// assert_eq!(opt.state_layout().bytes_per_param(), 8.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Optimizer {
    /// [`Sgd`]
    Sgd(Sgd),
    /// [`RmsProp`]
    RmsProp(RmsProp),
    /// [`Adam`], also AdamW (decoupled weight decay)
    Adam(Adam),
    /// [`Adagrad`]
    Adagrad(Adagrad),
    /// [`Adamax`]
    Adamax(Adamax),
    /// [`RAdam`]
    RAdam(RAdam),
    /// [`Adadelta`]
    Adadelta(Adadelta),
    /// [`NAdam`]
    NAdam(NAdam),
    /// [`Rprop`]
    Rprop(Rprop),
    /// [`Asgd`]
    Asgd(Asgd),
    /// [`Lion`]
    Lion(Lion),
    /// [`Lamb`]
    Lamb(Lamb),
    /// [`Adafactor`]
    Adafactor(Adafactor),
    /// [`Muon`]
    Muon(Muon),
}

impl From<Sgd> for Optimizer {
    fn from(o: Sgd) -> Self {
        Optimizer::Sgd(o)
    }
}
impl From<RmsProp> for Optimizer {
    fn from(o: RmsProp) -> Self {
        Optimizer::RmsProp(o)
    }
}
impl From<Adam> for Optimizer {
    fn from(o: Adam) -> Self {
        Optimizer::Adam(o)
    }
}
impl From<Adagrad> for Optimizer {
    fn from(o: Adagrad) -> Self {
        Optimizer::Adagrad(o)
    }
}

impl From<Adamax> for Optimizer {
    fn from(o: Adamax) -> Self {
        Optimizer::Adamax(o)
    }
}

impl From<RAdam> for Optimizer {
    fn from(o: RAdam) -> Self {
        Optimizer::RAdam(o)
    }
}

impl From<Adadelta> for Optimizer {
    fn from(o: Adadelta) -> Self {
        Optimizer::Adadelta(o)
    }
}

impl From<NAdam> for Optimizer {
    fn from(o: NAdam) -> Self {
        Optimizer::NAdam(o)
    }
}

impl From<Rprop> for Optimizer {
    fn from(o: Rprop) -> Self {
        Optimizer::Rprop(o)
    }
}

impl From<Asgd> for Optimizer {
    fn from(o: Asgd) -> Self {
        Optimizer::Asgd(o)
    }
}

impl From<Lion> for Optimizer {
    fn from(o: Lion) -> Self {
        Optimizer::Lion(o)
    }
}

impl From<Lamb> for Optimizer {
    fn from(o: Lamb) -> Self {
        Optimizer::Lamb(o)
    }
}

impl From<Adafactor> for Optimizer {
    fn from(o: Adafactor) -> Self {
        Optimizer::Adafactor(o)
    }
}

impl From<Muon> for Optimizer {
    fn from(o: Muon) -> Self {
        Optimizer::Muon(o)
    }
}

impl Optimizer {
    /// Short name: `sgd`, `rmsprop`, `adam`, `adamw`, `adagrad`, `adamax`, `radam`, `adadelta`,
    /// `nadam`, `rprop`, `asgd`, `lion`, `lamb`, `adafactor` or `muon`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::RmsProp(_) => "rmsprop",
            Optimizer::Adam(a) if a.decoupled_weight_decay => "adamw",
            Optimizer::Adam(_) => "adam",
            Optimizer::Adagrad(_) => "adagrad",
            Optimizer::Adamax(_) => "adamax",
            Optimizer::RAdam(_) => "radam",
            Optimizer::Adadelta(_) => "adadelta",
            Optimizer::NAdam(_) => "nadam",
            Optimizer::Rprop(_) => "rprop",
            Optimizer::Asgd(_) => "asgd",
            Optimizer::Lion(_) => "lion",
            Optimizer::Lamb(_) => "lamb",
            Optimizer::Adafactor(_) => "adafactor",
            Optimizer::Muon(_) => "muon",
        }
    }

    /// Checks every hyperparameter; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(o) => o.validate(),
            Optimizer::RmsProp(o) => o.validate(),
            Optimizer::Adam(o) => o.validate(),
            Optimizer::Adagrad(o) => o.validate(),
            Optimizer::Adamax(o) => o.validate(),
            Optimizer::RAdam(o) => o.validate(),
            Optimizer::Adadelta(o) => o.validate(),
            Optimizer::NAdam(o) => o.validate(),
            Optimizer::Rprop(o) => o.validate(),
            Optimizer::Asgd(o) => o.validate(),
            Optimizer::Lion(o) => o.validate(),
            Optimizer::Lamb(o) => o.validate(),
            Optimizer::Adafactor(o) => o.validate(),
            Optimizer::Muon(o) => o.validate(),
        }
    }

    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Sgd(o) => o.lr,
            Optimizer::RmsProp(o) => o.lr,
            Optimizer::Adam(o) => o.lr,
            Optimizer::Adagrad(o) => o.lr,
            Optimizer::Adamax(o) => o.lr,
            Optimizer::RAdam(o) => o.lr,
            Optimizer::Adadelta(o) => o.lr,
            Optimizer::NAdam(o) => o.lr,
            Optimizer::Rprop(o) => o.lr,
            Optimizer::Asgd(o) => o.lr,
            Optimizer::Lion(o) => o.lr,
            Optimizer::Lamb(o) => o.lr,
            Optimizer::Adafactor(o) => o.lr,
            Optimizer::Muon(o) => o.lr,
        }
    }

    /// The kernel family that runs this optimizer.
    pub fn kernel(&self) -> Kernel {
        match self {
            Optimizer::Sgd(_) => Kernel::Sgd,
            Optimizer::RmsProp(_) => Kernel::RmsProp,
            Optimizer::Adam(_) => Kernel::Adam,
            Optimizer::Adagrad(_) => Kernel::Adagrad,
            Optimizer::Adamax(_) => Kernel::Adamax,
            Optimizer::RAdam(_) => Kernel::Adam,
            Optimizer::Adadelta(_) => Kernel::Adadelta,
            Optimizer::NAdam(_) => Kernel::Adam,
            Optimizer::Rprop(_) => Kernel::Rprop,
            Optimizer::Asgd(_) => Kernel::Asgd,
            Optimizer::Lion(_) => Kernel::Lion,
            Optimizer::Lamb(_) => Kernel::Lamb,
            Optimizer::Adafactor(_) => Kernel::Adafactor,
            Optimizer::Muon(_) => Kernel::Muon,
        }
    }

    /// Values of the kernel's variant constants, in the order of
    /// [`Kernel::variant_constants`].
    pub fn variant(&self) -> Vec<bool> {
        match self {
            Optimizer::Sgd(o) => o.variant().to_vec(),
            Optimizer::RmsProp(o) => o.variant().to_vec(),
            Optimizer::Adam(o) => o.variant().to_vec(),
            Optimizer::RAdam(o) => o.variant().to_vec(),
            Optimizer::NAdam(o) => o.variant().to_vec(),
            Optimizer::Lamb(o) => o.variant().to_vec(),
            Optimizer::Muon(o) => o.variant().to_vec(),
            Optimizer::Adagrad(_)
            | Optimizer::Adamax(_)
            | Optimizer::Adadelta(_)
            | Optimizer::Rprop(_)
            | Optimizer::Asgd(_)
            | Optimizer::Lion(_)
            | Optimizer::Adafactor(_) => vec![],
        }
    }

    /// How this optimizer stores its state, gradients and parameters.
    pub fn precision(&self) -> Precision {
        match self {
            Optimizer::Sgd(o) => o.precision,
            Optimizer::RmsProp(o) => o.precision,
            Optimizer::Adam(o) => o.precision,
            Optimizer::Adagrad(o) => o.precision,
            Optimizer::Adamax(o) => o.precision,
            Optimizer::RAdam(o) => o.precision,
            Optimizer::Adadelta(o) => o.precision,
            Optimizer::NAdam(o) => o.precision,
            Optimizer::Rprop(o) => o.precision,
            Optimizer::Asgd(o) => o.precision,
            Optimizer::Lion(o) => o.precision,
            Optimizer::Lamb(o) => o.precision,
            Optimizer::Adafactor(o) => o.precision,
            Optimizer::Muon(o) => o.precision,
        }
    }

    /// The same optimizer storing its state, gradients and parameters as `precision` says.
    pub fn with_precision(self, precision: Precision) -> Self {
        match self {
            Optimizer::Sgd(o) => Optimizer::Sgd(Sgd { precision, ..o }),
            Optimizer::RmsProp(o) => Optimizer::RmsProp(RmsProp { precision, ..o }),
            Optimizer::Adam(o) => Optimizer::Adam(Adam { precision, ..o }),
            Optimizer::Adagrad(o) => Optimizer::Adagrad(Adagrad { precision, ..o }),
            Optimizer::Adamax(o) => Optimizer::Adamax(Adamax { precision, ..o }),
            Optimizer::RAdam(o) => Optimizer::RAdam(RAdam { precision, ..o }),
            Optimizer::Adadelta(o) => Optimizer::Adadelta(Adadelta { precision, ..o }),
            Optimizer::NAdam(o) => Optimizer::NAdam(NAdam { precision, ..o }),
            Optimizer::Rprop(o) => Optimizer::Rprop(Rprop { precision, ..o }),
            Optimizer::Asgd(o) => Optimizer::Asgd(Asgd { precision, ..o }),
            Optimizer::Lion(o) => Optimizer::Lion(Lion { precision, ..o }),
            Optimizer::Lamb(o) => Optimizer::Lamb(Lamb { precision, ..o }),
            Optimizer::Adafactor(o) => Optimizer::Adafactor(Adafactor { precision, ..o }),
            Optimizer::Muon(o) => Optimizer::Muon(Muon { precision, ..o }),
        }
    }

    /// How this optimizer keeps its state.
    pub fn state_precision(&self) -> StatePrecision {
        self.precision().state
    }

    /// The same optimizer keeping its state as `state` says.
    pub fn with_state_precision(self, state: StatePrecision) -> Self {
        self.with_precision(Precision {
            state,
            ..self.precision()
        })
    }

    /// The type the gradients are stored in.
    pub fn grad_dtype(&self) -> GradDType {
        self.precision().grads
    }

    /// The same optimizer reading gradients of type `grads`.
    pub fn with_grad_dtype(self, grads: GradDType) -> Self {
        self.with_precision(Precision {
            grads,
            ..self.precision()
        })
    }

    /// How the parameters are stored.
    pub fn param_dtype(&self) -> ParamDType {
        self.precision().params
    }

    /// The same optimizer storing its parameters as `params`.
    pub fn with_param_dtype(self, params: ParamDType) -> Self {
        self.with_precision(Precision {
            params,
            ..self.precision()
        })
    }

    /// The optimizer a group of `len` elements runs: its state type resolved by the
    /// precision's threshold (smaller groups keep f32), the threshold then 0.
    pub fn resolved_for(&self, len: usize) -> Self {
        let dtype = self.state_precision().dtype_for(len);
        self.with_state_precision(StatePrecision { dtype, min_len: 0 })
    }

    /// The state tensors this variant allocates, in its configured state type (see
    /// [`Optimizer::resolved_for`] for a group below the threshold).
    pub fn state_layout(&self) -> StateLayout {
        let dtype = self.state_precision().dtype;
        let mut layout = StateLayout::default();
        let mut push = |name, slot, init| layout.push(dtype, name, slot, init);
        match self {
            Optimizer::Sgd(o) => {
                if o.has_momentum() {
                    push("momentum_buffer", 0, 0.0);
                }
            }
            Optimizer::RmsProp(o) => {
                push("square_avg", 0, 0.0);
                if o.centered {
                    push("grad_avg", 1, 0.0);
                }
                if o.has_momentum() {
                    push("momentum_buffer", 2, 0.0);
                }
            }
            Optimizer::Adam(o) => {
                push("exp_avg", 0, 0.0);
                push("exp_avg_sq", 1, 0.0);
                if o.amsgrad {
                    push("max_exp_avg_sq", 2, 0.0);
                }
            }
            Optimizer::Adagrad(o) => {
                push("sum", 0, o.initial_accumulator_value as f32);
            }
            Optimizer::Adamax(_) => {
                push("exp_avg", 0, 0.0);
                push("exp_inf", 1, 0.0);
            }
            Optimizer::RAdam(_) | Optimizer::NAdam(_) | Optimizer::Lamb(_) => {
                push("exp_avg", 0, 0.0);
                push("exp_avg_sq", 1, 0.0);
            }
            Optimizer::Rprop(o) => {
                push("prev", 0, 0.0);
                push("step_size", 1, o.lr as f32);
            }
            Optimizer::Asgd(_) => push("ax", 0, 0.0),
            Optimizer::Muon(_) => push("momentum_buffer", 0, 0.0),
            Optimizer::Lion(_) => push("exp_avg", 0, 0.0),
            Optimizer::Adafactor(_) => push("variance", 0, 0.0),
            Optimizer::Adadelta(_) => {
                push("square_avg", 0, 0.0);
                push("acc_delta", 1, 0.0);
            }
        }
        layout
    }

    /// State elements per slot for a group of `len` parameters whose tensors are `tensors`
    /// (element ranges and shapes): `len`, except where the state is shaped by the tensors
    /// (Adafactor: B·(rows + columns) per matrix, the length of each vector).
    pub fn state_len(&self, len: usize, tensors: &[(std::ops::Range<usize>, Vec<usize>)]) -> usize {
        if self.kernel().shaped_state() {
            factors(tensors).1
        } else {
            len
        }
    }

    /// The kernel's entry points in the order a step runs them, each with what its dispatch
    /// covers ([`Kernel::passes`]); Muon's Newton–Schulz products repeat `ns_steps` times, the
    /// iterate alternating between its two buffers (`gram_pass_0`, `poly_pass_0`,
    /// `combine_pass_0`, then the `_1` passes, …).
    pub fn passes(&self) -> Vec<(&'static str, Dispatch)> {
        let passes = self.kernel().passes();
        let Optimizer::Muon(o) = self else {
            return passes.to_vec();
        };
        let (scale, gram, poly, combine) = (passes[2], &passes[3..5], &passes[5..7], &passes[7..9]);
        let mut out = vec![passes[0], passes[1], scale];
        for k in 0..o.ns_steps as usize {
            out.extend([gram[k % 2], poly[k % 2], combine[k % 2]]);
        }
        out.push(passes[9]);
        out
    }

    /// Whether the optimizer has a momentum (or β₁) a schedule may cycle: SGD and RMSprop with
    /// μ ≠ 0 (their kernels are built with a momentum buffer), Adam, Adamax, RAdam, Lion and
    /// LAMB always (β₁), Muon always (μ); Adagrad, Adadelta, Rprop, ASGD and Adafactor never,
    /// nor NAdam, whose μ-product would have to remember every past β₁ ([`NAdam`]).
    pub fn has_momentum(&self) -> bool {
        match self {
            Optimizer::Sgd(o) => o.has_momentum(),
            Optimizer::RmsProp(o) => o.has_momentum(),
            Optimizer::Adam(_) => true,
            Optimizer::Adagrad(_)
            | Optimizer::Adadelta(_)
            | Optimizer::NAdam(_)
            | Optimizer::Rprop(_)
            | Optimizer::Asgd(_) => false,
            Optimizer::Adamax(_) | Optimizer::RAdam(_) | Optimizer::Lion(_) => true,
            Optimizer::Lamb(_) | Optimizer::Muon(_) => true,
            Optimizer::Adafactor(_) => false,
        }
    }

    /// The same optimizer with momentum (Adam: β₁) set to `m`, as cycled by a schedule.
    pub fn with_momentum(self, m: f64) -> Self {
        match self {
            Optimizer::Sgd(o) => Optimizer::Sgd(o.momentum(m)),
            Optimizer::RmsProp(o) => Optimizer::RmsProp(o.momentum(m)),
            Optimizer::Adam(o) => Optimizer::Adam(o.betas((m, o.betas.1))),
            Optimizer::Adagrad(o) => Optimizer::Adagrad(o),
            Optimizer::Adamax(o) => Optimizer::Adamax(o.betas((m, o.betas.1))),
            Optimizer::RAdam(o) => Optimizer::RAdam(o.betas((m, o.betas.1))),
            Optimizer::Lion(o) => Optimizer::Lion(o.betas((m, o.betas.1))),
            Optimizer::Lamb(o) => Optimizer::Lamb(o.betas((m, o.betas.1))),
            Optimizer::Muon(o) => Optimizer::Muon(o.momentum(m)),
            Optimizer::Adadelta(_)
            | Optimizer::NAdam(_)
            | Optimizer::Rprop(_)
            | Optimizer::Asgd(_)
            | Optimizer::Adafactor(_) => self,
        }
    }

    /// The same optimizer with base learning rate `lr`.
    pub fn with_lr(self, lr: f64) -> Self {
        match self {
            Optimizer::Sgd(o) => Optimizer::Sgd(o.lr(lr)),
            Optimizer::RmsProp(o) => Optimizer::RmsProp(o.lr(lr)),
            Optimizer::Adam(o) => Optimizer::Adam(o.lr(lr)),
            Optimizer::Adagrad(o) => Optimizer::Adagrad(o.lr(lr)),
            Optimizer::Adamax(o) => Optimizer::Adamax(o.lr(lr)),
            Optimizer::RAdam(o) => Optimizer::RAdam(o.lr(lr)),
            Optimizer::Adadelta(o) => Optimizer::Adadelta(o.lr(lr)),
            Optimizer::NAdam(o) => Optimizer::NAdam(o.lr(lr)),
            Optimizer::Rprop(o) => Optimizer::Rprop(o.lr(lr)),
            Optimizer::Asgd(o) => Optimizer::Asgd(o.lr(lr)),
            Optimizer::Lion(o) => Optimizer::Lion(o.lr(lr)),
            Optimizer::Lamb(o) => Optimizer::Lamb(o.lr(lr)),
            Optimizer::Adafactor(o) => Optimizer::Adafactor(o.lr(lr)),
            Optimizer::Muon(o) => Optimizer::Muon(o.lr(lr)),
        }
    }

    /// The same optimizer with weight decay λ set to `weight_decay` (Rprop, which has none, as
    /// it is).
    pub fn with_weight_decay(self, weight_decay: f64) -> Self {
        match self {
            Optimizer::Sgd(o) => Optimizer::Sgd(o.weight_decay(weight_decay)),
            Optimizer::RmsProp(o) => Optimizer::RmsProp(o.weight_decay(weight_decay)),
            Optimizer::Adam(o) => Optimizer::Adam(o.weight_decay(weight_decay)),
            Optimizer::Adagrad(o) => Optimizer::Adagrad(o.weight_decay(weight_decay)),
            Optimizer::Adamax(o) => Optimizer::Adamax(o.weight_decay(weight_decay)),
            Optimizer::RAdam(o) => Optimizer::RAdam(o.weight_decay(weight_decay)),
            Optimizer::Adadelta(o) => Optimizer::Adadelta(o.weight_decay(weight_decay)),
            Optimizer::NAdam(o) => Optimizer::NAdam(o.weight_decay(weight_decay)),
            Optimizer::Asgd(o) => Optimizer::Asgd(o.weight_decay(weight_decay)),
            Optimizer::Lion(o) => Optimizer::Lion(o.weight_decay(weight_decay)),
            Optimizer::Lamb(o) => Optimizer::Lamb(o.weight_decay(weight_decay)),
            Optimizer::Adafactor(o) => Optimizer::Adafactor(o.weight_decay(weight_decay)),
            Optimizer::Muon(o) => Optimizer::Muon(o.weight_decay(weight_decay)),
            Optimizer::Rprop(o) => Optimizer::Rprop(o),
        }
    }

    /// Bytes one fused step must move per parameter (SEMANTICS.md): θ read and written, g
    /// read, each state tensor read and written. SGD 12, momentum 20, Adam 28, AMSGrad 36
    /// with f32 state and gradients; Adam 20 with bf16 state, ≈ 16.06 with int8, ≈ 14.06 with
    /// int8 state and half gradients; bf16 parameters move 4 B, master weights 8 + 2.
    pub fn bytes_moved_per_param(&self) -> f64 {
        let params = self.param_dtype().bytes_moved() as f64;
        params + self.grad_dtype().bytes() as f64 + 2.0 * self.state_layout().bytes_per_param()
    }

    /// The uniform whose step-dependent factors are left to the device's [`StepScalars`]
    /// (skipping on: only the device knows its step count): `uniform` with every factor that
    /// depends on t neutral.
    pub fn deferred_uniform(&self, lr: f64) -> StepUniform {
        match self {
            Optimizer::Sgd(o) => o.uniform(lr, 2),
            Optimizer::RmsProp(o) => o.uniform(lr, 1),
            Optimizer::Adam(o) => o.uniform_with(lr, 1.0, 1.0),
            Optimizer::Adagrad(o) => o.uniform(lr, 1),
            Optimizer::Adamax(o) => o.uniform_with(lr, 1.0),
            Optimizer::RAdam(o) => o.uniform_with(lr, 1.0, 1.0),
            Optimizer::Adadelta(o) => o.uniform(lr, 1),
            Optimizer::NAdam(o) => o.uniform_with(lr, 1.0, 1.0, 1.0),
            Optimizer::Rprop(o) => o.uniform(lr, 1),
            Optimizer::Asgd(o) => o.deferred_uniform(lr),
            Optimizer::Lion(o) => o.uniform(lr, 1),
            Optimizer::Lamb(o) => o.uniform_with(lr, 1.0, 1.0),
            Optimizer::Adafactor(o) => o.uniform_with(lr, 1.0, 1.0),
            Optimizer::Muon(o) => o.uniform(lr, 1),
        }
    }

    /// The step-dependent factors of step `t` (from 1), in f64 rounded once to f32: Adam
    /// 1/(1−β₁ᵗ) and √(1−β₂ᵗ), Adamax 1/(1−β₁ᵗ), RAdam 1/(1−β₁ᵗ) and rₜ√(1−β₂ᵗ) (0 while
    /// unrectified), NAdam (1−μₜ)/(1−Πₜ), μₜ₊₁/(1−Πₜ₊₁) and √(1−β₂ᵗ), ASGD 1/(1+λγ(t−1))^α,
    /// 1−ληₜ and μₜ (γ the base learning rate), Adafactor 1/√t and t^τ, Adagrad 1/(1+(t−1)η), SGD whether t is the
    /// first step.
    pub fn step_scalars(&self, t: u64) -> StepScalars {
        let t = t.max(1);
        let scalars = match self {
            Optimizer::Sgd(_) => StepScalars {
                first: u32::from(t == 1),
                ..StepScalars::ONES
            },
            Optimizer::RmsProp(_)
            | Optimizer::Adadelta(_)
            | Optimizer::Rprop(_)
            | Optimizer::Lion(_)
            | Optimizer::Muon(_) => StepScalars::ONES,
            Optimizer::Adam(o) => StepScalars {
                lr_mul: (1.0 / o.bias_correction1(t)) as f32,
                bias_correction2_sqrt: o.bias_correction2(t).sqrt() as f32,
                ..StepScalars::ONES
            },
            Optimizer::Adagrad(o) => StepScalars {
                lr_mul: (1.0 / o.decay_divisor(t)) as f32,
                ..StepScalars::ONES
            },
            Optimizer::Adamax(o) => StepScalars {
                lr_mul: (1.0 / o.bias_correction(t)) as f32,
                ..StepScalars::ONES
            },
            Optimizer::RAdam(o) => StepScalars {
                lr_mul: (1.0 / o.bias_correction1(t)) as f32,
                bias_correction2_sqrt: o.rectification(t) as f32,
                ..StepScalars::ONES
            },
            Optimizer::NAdam(o) => {
                let (grad_factor, momentum_factor) = o.step_factors(t);
                StepScalars {
                    lr_mul: momentum_factor as f32,
                    lr2_mul: grad_factor as f32,
                    bias_correction2_sqrt: o.adam().bias_correction2(t).sqrt() as f32,
                    ..StepScalars::ONES
                }
            }
            Optimizer::Lamb(o) => {
                let adam = o.adam();
                StepScalars {
                    lr2_mul: (1.0 / adam.bias_correction1(t)) as f32,
                    bias_correction2_sqrt: adam.bias_correction2(t).sqrt() as f32,
                    ..StepScalars::ONES
                }
            }
            Optimizer::Adafactor(o) => StepScalars {
                lr2_mul: Adafactor::rho_bound(t) as f32,
                average_mul: o.weight(t) as f32,
                ..StepScalars::ONES
            },
            Optimizer::Asgd(o) => {
                let divisor = o.eta_divisor(o.lr, t);
                StepScalars {
                    lr_mul: (1.0 / divisor) as f32,
                    decay_mul: (1.0 - o.lambd * o.lr / divisor) as f32,
                    average_mul: o.average_weight(t) as f32,
                    ..StepScalars::ONES
                }
            }
        };
        StepScalars {
            t: t as u32,
            ..scalars
        }
    }

    /// The per-step scalars for step `t` (counted from 1) at learning rate `lr`, computed in
    /// f64 and rounded once to f32.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        let uniform = match self {
            Optimizer::Sgd(o) => o.uniform(lr, t),
            Optimizer::RmsProp(o) => o.uniform(lr, t),
            Optimizer::Adam(o) => o.uniform(lr, t),
            Optimizer::Adagrad(o) => o.uniform(lr, t),
            Optimizer::Adamax(o) => o.uniform(lr, t),
            Optimizer::RAdam(o) => o.uniform(lr, t),
            Optimizer::Adadelta(o) => o.uniform(lr, t),
            Optimizer::NAdam(o) => o.uniform(lr, t),
            Optimizer::Rprop(o) => o.uniform(lr, t),
            Optimizer::Asgd(o) => o.uniform(lr, t),
            Optimizer::Lion(o) => o.uniform(lr, t),
            Optimizer::Lamb(o) => o.uniform(lr, t),
            Optimizer::Adafactor(o) => o.uniform(lr, t),
            Optimizer::Muon(o) => o.uniform(lr, t),
        };
        StepUniform {
            t: t as u32,
            ..uniform
        }
    }
}

/// Checks `ok`, else returns [`Error::InvalidHyperparameter`] for `name = value`.
pub(crate) fn ensure(
    ok: bool,
    name: &'static str,
    value: f64,
    expected: &'static str,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            expected,
        })
    }
}

/// A learning rate: finite and ≥ 0.
pub(crate) fn ensure_lr(lr: f64) -> Result<()> {
    ensure(
        lr.is_finite() && lr >= 0.0,
        "lr",
        lr,
        "must be finite and >= 0",
    )
}

/// A finite, non-negative value (weight decay, momentum, lr_decay, …).
pub(crate) fn ensure_non_negative(name: &'static str, value: f64) -> Result<()> {
    ensure(
        value.is_finite() && value >= 0.0,
        name,
        value,
        "must be finite and >= 0",
    )
}

/// ε: finite and > 0.
pub(crate) fn ensure_eps(eps: f64) -> Result<()> {
    ensure(
        eps.is_finite() && eps > 0.0,
        "eps",
        eps,
        "must be finite and > 0",
    )
}

/// The per-tensor driver's families (LAMB, Adafactor) run on f32 state, gradients and
/// parameters only: [`Error::UnsupportedPrecision`] for `optimizer` otherwise.
pub(crate) fn ensure_f32_per_tensor(optimizer: &'static str, p: Precision) -> Result<()> {
    if p.state.dtype == StateDType::F32 && p.grads == GradDType::F32 && p.params == ParamDType::F32
    {
        return Ok(());
    }
    Err(Error::UnsupportedPrecision {
        optimizer,
        dtype: "low-precision",
        why: "its per-tensor passes run on f32 state, gradients and parameters only",
    })
}

/// A decay rate β in [0, 1).
pub(crate) fn ensure_beta(name: &'static str, beta: f64) -> Result<()> {
    ensure((0.0..1.0).contains(&beta), name, beta, "must be in [0, 1)")
}

/// Builder-style setters shared by the families (`Adam::default().lr(1e-3).eps(1e-6)`).
macro_rules! setters {
    ($ty:ty { $($field:ident : $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $field(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;
