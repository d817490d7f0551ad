//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in `wgoptim`, as a value. No public function panics on bad
/// input; each failure leaves parameters and state as they were.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is out of its domain (the message names it and its value).
    #[error("invalid hyperparameter `{name}` = {value}: {expected}")]
    InvalidHyperparameter {
        /// PyTorch's name of the argument.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the value must be.
        expected: &'static str,
    },
    /// Two things that must have the same length do not.
    #[error("length mismatch for {what}: expected {expected} elements, got {got}")]
    LengthMismatch {
        /// What was being written or compared.
        what: &'static str,
        /// The optimizer's number of parameters.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An optimizer over zero parameters.
    #[error("an optimizer needs at least one parameter")]
    Empty,
    /// A buffer larger than the device allows.
    #[error("{what} needs {bytes} bytes but the device allows at most {max} bytes per buffer")]
    BufferTooLarge {
        /// Which buffer.
        what: &'static str,
        /// Bytes needed.
        bytes: u64,
        /// The device's `max_buffer_size`.
        max: u64,
    },
    /// Host memory (the CPU backend's vectors) that could not be reserved.
    #[error("{what} needs {bytes} bytes of host memory, which could not be reserved")]
    HostAllocation {
        /// Which vector.
        what: &'static str,
        /// Bytes needed (saturated at `u64::MAX`).
        bytes: u64,
    },
    /// An adopted buffer smaller than the parameters it must hold.
    #[error(
        "{what} has {bytes} bytes but {needed} are needed (length rounded up to whole vec4 blocks)"
    )]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Its size.
        bytes: u64,
        /// The size needed.
        needed: u64,
    },
    /// A buffer lacks a usage the operation needs.
    #[error("{what} lacks buffer usage {needed:?} (it has {has:?})")]
    MissingUsage {
        /// Which buffer.
        what: &'static str,
        /// The usages required.
        needed: wgpu::BufferUsages,
        /// The usages it was created with.
        has: wgpu::BufferUsages,
    },
    /// An adopted buffer belongs to a different device than the optimizer's.
    #[error("{what} was created on another device")]
    ForeignBuffer {
        /// Which buffer.
        what: &'static str,
    },
    /// No state buffer of that name for this optimizer.
    #[error("optimizer `{optimizer}` has no state `{name}` (it has: {available})")]
    UnknownState {
        /// The optimizer's name.
        optimizer: &'static str,
        /// The name asked for.
        name: String,
        /// The names it has.
        available: String,
    },
    /// No tensor of that name in the parameter layout.
    #[error("no tensor `{0}` in the parameter layout")]
    UnknownTensor(String),
    /// A tensor name registered twice.
    #[error("tensor `{0}` is already in the parameter layout")]
    DuplicateTensor(String),
    /// A range outside a tensor's view.
    #[error("range {start}..{end} is outside tensor `{name}` of {len} elements")]
    ViewOutOfRange {
        /// The tensor.
        name: String,
        /// Start of the range asked for.
        start: usize,
        /// End of the range asked for.
        end: usize,
        /// The tensor's length.
        len: usize,
    },
    /// Parameter groups of different optimizer families.
    #[error("parameter groups must share one optimizer family: `{first}` and `{other}` do not")]
    MixedFamilies {
        /// The first group's optimizer.
        first: &'static str,
        /// The group that differs.
        other: &'static str,
    },
    /// A parameter group index out of range.
    #[error("no parameter group {group}: there are {groups}")]
    UnknownGroup {
        /// The index asked for.
        group: usize,
        /// How many groups there are.
        groups: usize,
    },
    /// The device's limits are below what the kernels need (see `gpu::required_limits`).
    #[error(
        "the device's `{limit}` is {available}, but wgoptim's kernels need at least {required}"
    )]
    DeviceLimit {
        /// wgpu's name of the limit.
        limit: &'static str,
        /// What the kernels need.
        required: u64,
        /// What the device has.
        available: u64,
    },
    /// A step past the largest step count the per-step scalars are exact for.
    #[error("the optimizer has taken {max} steps, the most it counts exactly")]
    StepLimit {
        /// `wgoptim::MAX_STEPS`.
        max: u64,
    },
    /// More steps recorded into one command encoder than the uniform ring holds.
    #[error(
        "{max} steps of this optimizer were already recorded into this encoder: submit it before recording more"
    )]
    TooManyRecordedSteps {
        /// How many steps one encoder may hold.
        max: u64,
    },
    /// A tensor with no elements (an empty shape, or a zero dimension).
    #[error("tensor `{name}` has shape {shape:?}: every tensor needs at least one element")]
    EmptyTensor {
        /// The tensor's name.
        name: String,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A tensor whose element count overflows `usize`.
    #[error("tensor `{name}` has shape {shape:?}: its element count overflows")]
    TensorTooLarge {
        /// The tensor's name.
        name: String,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// Gradients of one type where another is expected (groups of one optimizer share one
    /// gradient buffer, so they share its type; half bits for an optimizer that reads f32).
    #[error("gradients of type {got} where the optimizer reads {expected}")]
    GradDTypeMismatch {
        /// The type expected.
        expected: &'static str,
        /// The type found.
        got: &'static str,
    },
    /// Parameter groups of one optimizer with different parameter types (one buffer).
    #[error("parameters of type {got} where the optimizer keeps {expected}")]
    ParamDTypeMismatch {
        /// The type expected.
        expected: &'static str,
        /// The type found.
        got: &'static str,
    },
    /// A precision this optimizer variant does not support.
    #[error("{optimizer} cannot keep {dtype} state: {why}")]
    UnsupportedPrecision {
        /// The optimizer variant.
        optimizer: &'static str,
        /// The precision asked for.
        dtype: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// A kernel shape the device cannot run.
    #[error("invalid kernel shape {0}")]
    InvalidShape(String),
    /// No adapter matched the request.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter refused the device request.
    #[error("device request failed: {0}")]
    RequestDevice(String),
    /// A launch would need more workgroups than the device allows.
    #[error(
        "dispatch of {workgroups} workgroups exceeds the device limit of {max} per dimension squared"
    )]
    DispatchTooLarge {
        /// Workgroups needed by one chunk.
        workgroups: u64,
        /// `max_compute_workgroups_per_dimension`.
        max: u32,
    },
    /// A schedule was stepped past its end (OneCycleLR past `total_steps`).
    #[error("schedule stepped to {step}, past its total_steps = {total_steps}")]
    ScheduleFinished {
        /// The step asked for.
        step: u64,
        /// The schedule's last step.
        total_steps: u64,
    },
    /// A schedule cycles momentum but the optimizer has none to cycle.
    #[error("the schedule cycles momentum, but `{optimizer}` was built without momentum (or β₁)")]
    NoMomentumToCycle {
        /// The optimizer's name.
        optimizer: &'static str,
    },
    /// A command-line style argument could not be understood.
    #[error("{0}")]
    Argument(String),
    /// Drawing or writing a picture failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The file being written.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint that cannot be read (truncated, corrupt, or not a wgoptim checkpoint).
    #[error("checkpoint unreadable: {0}")]
    Checkpoint(String),
    /// A checkpoint of another optimizer, shape or dtype than the one loading it.
    #[error(
        "checkpoint does not fit this optimizer: {what} is {found} in the checkpoint but {expected} here"
    )]
    CheckpointMismatch {
        /// What differs.
        what: String,
        /// This optimizer's.
        expected: String,
        /// The checkpoint's.
        found: String,
    },
    /// A wgpu validation or out-of-memory error caught by an error scope.
    #[error("wgpu error: {0}")]
    Wgpu(String),
    /// Mapping a buffer for reading failed.
    #[error("buffer map failed: {0}")]
    Map(String),
    /// A step with a decision made elsewhere ([`crate::Backend::step_decided`]) on an
    /// optimizer without gradient control.
    #[error("step_decided needs gradient control on (set_gradient_control)")]
    NoGradientControl,
    /// The ranks of a sharded optimizer disagree (a different layout, optimizer, world size or
    /// checkpoint on some rank), or one of them failed; every rank gets this error.
    #[error("ranks disagree: {0}")]
    Ranks(String),
    /// An MPI call failed.
    #[error("MPI: {0}")]
    Mpi(String),
    /// The optimizer cannot be sharded over ranks.
    #[error("{optimizer} cannot be sharded: {why}")]
    NotShardable {
        /// The optimizer.
        optimizer: &'static str,
        /// Why not.
        why: &'static str,
    },
}

/// `Result` with [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;
