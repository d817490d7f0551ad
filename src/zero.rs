//! Optimizer state sharded across data-parallel MPI ranks: ZeRO stage 1, as DeepSpeed's
//! `zero_optimization.stage = 1` and `torch.distributed.optim.ZeroRedundancyOptimizer` do it.
//!
//! Every rank holds the whole model and computes a gradient over its own slice of each batch.
//! Rank r of N keeps the optimizer state of one contiguous shard of the flat parameter space,
//! `[r·S, (r+1)·S)` with S = ⌈len / N⌉ rounded up to the layout's group alignment (the last
//! shard padded), on a backend of its own (a [`crate::GpuOptimizer`] or a
//! [`crate::CpuOptimizer`]). One [`ZeroOptimizer::step`]:
//!
//! ```text
//! ḡ_shard = (1/N) Σ_r g_r  over the shard          reduce-scatter (sum), then ÷ N
//! (Σ ĝ², #non-finite) summed over all ranks         all-reduce of two f32; every rank then
//!                                                   clips or skips alike (control::decide)
//! θ_shard ← update(θ_shard, ḡ_shard, state_shard)   the local backend's fused step
//! θ = concat_r θ_shard(r)                           all-gather
//! ```
//!
//! The reduce-scatter is N `MPI_Reduce`s (one to each shard's rank) and the all-gather N
//! `MPI_Bcast`s, in pieces of 256 KiB ([`CHUNK`]'s note says why): each rank sends
//! (N−1)/N · (gradient + parameter bytes) and receives as much, on average, as a ring
//! reduce-scatter + all-gather does ([`ZeroOptimizer::bytes_sent_per_step`]). Where the gradients' sums are
//! exact in f32 (small multiples of 2⁻¹², say) the parameters after any number of steps equal
//! the single-process optimizer's given the mean gradient bit for bit, for every world size
//! (`tests/zero.rs`, run under `mpirun`).
//!
//! Every call that communicates first agrees across ranks: a bad argument, a different layout
//! or optimizer on some rank, or a failure on one rank makes every rank return an error
//! ([`Error::Ranks`] on the others) instead of leaving them waiting in a collective.
//!
//! Checkpoints: [`ZeroOptimizer::save_shard`] writes each rank's shard (an ordinary checkpoint
//! of its local optimizer plus the shard's place in the whole); [`consolidate`] turns the N
//! shard files into the ordinary single-process checkpoint, which
//! [`ZeroOptimizer::load_consolidated`] loads onto any number of ranks and
//! [`Backend::load`] onto one process built from the same groups.
//!
//! Parameters and gradients are exchanged as f32: the optimizers' parameter and gradient types
//! must be f32 (state may be f32, bf16 or int8).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::checkpoint::{GroupHeader, Parts, TensorRecord, layout_records, mismatch};
use crate::control::{self, GradientControl};
use crate::cpu::check_len;
use crate::error::{Error, Result};
use crate::layout::{GroupRanges, ParamGroup, ParamLayout, group_alignment, pack_groups};
use crate::optim::{GradDType, Optimizer, ParamDType};
use crate::schedule::Schedule;

/// The format of a shard file's `wgoptim-zero` header.
pub const SHARD_FORMAT: &str = "wgoptim-zero-shard/1";

/// Elements per collective call (2^16, 256 KiB of f32). The reduce-scatter is N reduces (one to each rank's shard)
/// and the all-gather N broadcasts, each cut into pieces of 256 KiB: OpenMPI moves such
/// pieces through its preallocated shared-memory fragments, where one `MPI_Reduce_scatter_block`
/// or `MPI_Allgather` of the whole vector allocates and page-faults temporary buffers of its
/// size every step. At 2^24 parameters on this project's 2-core machine a step took
/// 186 → 128 ms on 2 ranks and 314 → 187–215 ms on 4 (`examples/zero_step.rs`; pieces of
/// 2^12 to 2^22 elements tried, 2^14–2^16 best).
pub const CHUNK: usize = 1 << 16;

/// One local group of a rank: the part of global group `group` that falls in its shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Piece {
    /// The global group.
    group: usize,
    /// First element in the flat parameter space.
    start: usize,
    /// Elements.
    len: usize,
}

/// Where a shard file's state sits in the whole: written beside the local checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ShardHeader {
    format: String,
    world: usize,
    rank: usize,
    shard_len: usize,
    len: usize,
    tensors: Vec<TensorRecord>,
    /// Every global group's (first element, length).
    groups: Vec<(usize, usize)>,
    pieces: Vec<Piece>,
}

/// Time spent in one step, per phase.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTimes {
    /// Reduce-scatter of the gradients and the ÷ N.
    pub reduce_scatter: Duration,
    /// This shard's Σ ĝ² and non-finite count (zero without gradient control).
    pub norm_sums: Duration,
    /// The all-reduce of the norm sums (zero without gradient control).
    pub norm_all_reduce: Duration,
    /// Writing the shard's gradients, the local fused step and reading its parameters back.
    pub update: Duration,
    /// All-gather of the updated parameters.
    pub all_gather: Duration,
}

impl StepTimes {
    /// Time in communication: reduce-scatter, norm all-reduce and all-gather.
    pub fn communication(&self) -> Duration {
        self.reduce_scatter + self.norm_all_reduce + self.all_gather
    }

    /// Time in this rank's own arithmetic: the norm sums and the update.
    pub fn computation(&self) -> Duration {
        self.norm_sums + self.update
    }
}

/// An optimizer whose state is sharded over the ranks of an MPI communicator (ZeRO stage 1);
/// see the [module documentation](self).
pub struct ZeroOptimizer {
    comm: SimpleCommunicator,
    rank: usize,
    world: usize,
    layout: ParamLayout,
    ranges: GroupRanges,
    shard_len: usize,
    pieces: Vec<Piece>,
    local: Box<dyn Backend>,
    /// The whole model's parameters, as of the last step, padded to N·S (where the all-gather
    /// broadcasts each shard).
    params: Vec<f32>,
    /// The reduce-scatter's send buffer, the gradients padded to N·S (empty when the layout is
    /// N·S long: the gradients are sent as they are).
    padded: Vec<f32>,
    /// This rank's shard of the mean gradient: the reduce-scatter's receive buffer.
    shard: Vec<f32>,
    times: StepTimes,
}

/// FNV-1a of `bytes`: a fingerprint that is the same on every rank for the same input.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn mpi_len(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Mpi(format!("{n} elements exceed MPI's i32 counts")))
}

impl ZeroOptimizer {
    /// Shards `groups` (packed as [`crate::CpuOptimizer::with_groups`] packs them: the
    /// [`Self::layout`] every rank's gradient vector follows) over the ranks of `comm`; `build`
    /// makes this rank's optimizer over its shard from the shard's groups (one tensor
    /// `group{g}` per global group g the shard meets), for example
    /// `|g| CpuOptimizer::with_groups(&cpu, g)` or `|g| GpuOptimizer::with_groups(&gpu, g)`.
    ///
    /// Collective: every rank of `comm` calls it with the same groups. A rank whose groups or
    /// optimizers differ, whose `build` fails, or a shard that holds no parameter (too many
    /// ranks for the model) makes every rank return an error.
    pub fn with_groups<C: Communicator, B: Backend + 'static>(
        comm: &C,
        groups: Vec<ParamGroup>,
        build: impl FnOnce(Vec<ParamGroup>) -> Result<B>,
    ) -> Result<Self> {
        let comm = comm.duplicate();
        let (rank, world) = (comm.rank() as usize, comm.size() as usize);
        let packed = Self::pack(&groups);
        let packed = agree(&comm, "build the layout", packed)?;
        let (layout, ranges) = packed;
        // The same layout and the same optimizers on every rank.
        let layout_print = fingerprint(
            serde_json::to_string(&layout_records(&layout))
                .unwrap_or_default()
                .as_bytes(),
        );
        let optimizers: Vec<&Optimizer> = ranges.iter().map(|r| &r.0).collect();
        let opt_print = fingerprint(
            serde_json::to_string(&optimizers)
                .unwrap_or_default()
                .as_bytes(),
        );
        let mut prints = vec![[0u64; 2]; world];
        let mine = [layout_print, opt_print];
        comm.all_gather_into(&mine[..], flat_mut(&mut prints));
        for (k, p) in prints.iter().enumerate() {
            for (i, what) in ["tensor layout", "optimizer"].iter().enumerate() {
                if p[i] != prints[0][i] {
                    return Err(Error::Ranks(format!(
                        "rank {k}'s {what} differs from rank 0's: every rank must build the \
                         sharded optimizer from the same groups"
                    )));
                }
            }
        }
        let align = layout.align();
        let shard_len = layout.len().div_ceil(world).next_multiple_of(align);
        mpi_len(shard_len * world)?;
        let shard = rank * shard_len..(rank + 1) * shard_len;
        let pieces: Vec<Piece> = ranges
            .iter()
            .enumerate()
            .filter_map(|(g, &(_, start, len))| {
                let (lo, hi) = (start.max(shard.start), (start + len).min(shard.end));
                (lo < hi).then_some(Piece {
                    group: g,
                    start: lo,
                    len: hi - lo,
                })
            })
            .collect();
        let local = if pieces.is_empty() {
            Err(Error::Ranks(format!(
                "rank {rank}'s shard {shard:?} holds no parameter of the {} in the layout: use \
                 fewer than {world} ranks",
                layout.len()
            )))
        } else {
            let local_groups = pieces
                .iter()
                .map(|p| {
                    ParamGroup::new(ranges[p.group].0)
                        .tensor(&format!("group{}", p.group), &[p.len])
                })
                .collect();
            build(local_groups).and_then(|local| {
                // The local optimizer must hold the pieces, packed at their offsets in the
                // shard.
                if local.groups() != pieces.len() || local.len() > shard_len {
                    return Err(Error::Ranks(format!(
                        "rank {rank}'s optimizer has {} groups over {} parameters, not the {} \
                         pieces of its shard of {shard_len}: build it from the groups given",
                        local.groups(),
                        local.len(),
                        pieces.len()
                    )));
                }
                for (i, p) in pieces.iter().enumerate() {
                    if local.group_range(i).map(|r| r.start) != Some(p.start - shard.start) {
                        return Err(Error::Ranks(format!(
                            "rank {rank}'s optimizer packs group {} at {:?}, not at {} of its shard",
                            p.group,
                            local.group_range(i),
                            p.start - shard.start
                        )));
                    }
                }
                Ok(local)
            })
        };
        let local = agree(&comm, "build its shard's optimizer", local)?;
        let len = layout.len();
        Ok(Self {
            comm,
            rank,
            world,
            layout,
            ranges,
            shard_len,
            pieces,
            local: Box::new(local),
            params: vec![0.0; shard_len * world],
            padded: if len == shard_len * world {
                Vec::new()
            } else {
                vec![0.0; shard_len * world]
            },
            shard: vec![0.0; shard_len],
            times: StepTimes::default(),
        })
    }

    /// One group over `len` parameters (one tensor `params`), sharded.
    pub fn new<C: Communicator, B: Backend + 'static>(
        comm: &C,
        optimizer: impl Into<Optimizer>,
        len: usize,
        build: impl FnOnce(Vec<ParamGroup>) -> Result<B>,
    ) -> Result<Self> {
        Self::with_groups(
            comm,
            vec![ParamGroup::new(optimizer).tensor("params", &[len])],
            build,
        )
    }

    fn pack(groups: &[ParamGroup]) -> Result<(ParamLayout, GroupRanges)> {
        for g in groups {
            let o = &g.optimizer;
            if o.kernel().per_tensor() {
                return Err(Error::NotShardable {
                    optimizer: o.name(),
                    why: "its per-tensor sums (LAMB's norms, Adafactor's rows, columns and \
                          RMS, Muon's norms and matrix products) need whole tensors, and \
                          shards split tensors",
                });
            }
            if o.grad_dtype() != GradDType::F32 || o.param_dtype() != ParamDType::F32 {
                return Err(Error::UnsupportedPrecision {
                    optimizer: o.name(),
                    dtype: "half-precision parameters or gradients",
                    why: "the sharded optimizer exchanges f32 parameters and gradients",
                });
            }
        }
        let align = group_alignment(groups, 256);
        pack_groups(groups, ParamLayout::new(align))
    }

    /// This rank's number in the communicator.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.world
    }

    /// The whole model's layout: every rank's parameter and gradient vectors follow it.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// Parameters in the whole model (the layout's length).
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// Whether the model is empty (never: construction refuses empty groups).
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// This rank's shard of the flat parameter space (padded past [`Self::len`] on the last).
    pub fn shard(&self) -> Range<usize> {
        self.rank * self.shard_len..(self.rank + 1) * self.shard_len
    }

    /// The optimizer over this rank's shard.
    pub fn local(&self) -> &dyn Backend {
        self.local.as_ref()
    }

    /// The whole model's parameters as of the last step (or write).
    pub fn params(&self) -> &[f32] {
        &self.params[..self.layout.len()]
    }

    /// Bytes of optimizer state this rank holds (its local optimizer's allocations).
    pub fn state_bytes(&self) -> u64 {
        self.local.state_bytes()
    }

    /// The phases of the last step.
    pub fn last_times(&self) -> StepTimes {
        self.times
    }

    /// Bytes a rank sends per step, on average over the ranks. Each of the N reduces moves
    /// (N−1)·S·4 bytes (every rank but its root sends its partial sum once, whatever the tree)
    /// and so does each of the N broadcasts (every rank but the root receives the shard once):
    /// (N−1)/N · (gradient + parameter bytes) sent per rank, as many received, so
    /// 2·(N−1)/N · (gradient + parameter bytes) through each rank, as in a ring
    /// reduce-scatter + all-gather, the least any algorithm moves.
    pub fn bytes_sent_per_step(&self) -> u64 {
        let total = (self.world * self.shard_len * 4) as u64;
        2 * (self.world as u64 - 1) * total / self.world as u64
    }

    /// Steps taken (host count, skipped steps included).
    pub fn steps(&self) -> u64 {
        self.local.steps()
    }

    /// Steps skipped for non-finite gradients.
    pub fn skipped_steps(&self) -> Result<u64> {
        self.local.skipped_steps()
    }

    /// The global gradient norm of the last step, with gradient control on.
    pub fn last_grad_norm(&self) -> Result<Option<f32>> {
        self.local.last_grad_norm()
    }

    /// The local range of this rank's shard that its optimizer holds.
    fn local_len(&self) -> usize {
        self.local.len()
    }

    /// Writes the whole model's parameters (the same on every rank); collective.
    pub fn write_params(&mut self, params: &[f32]) -> Result<()> {
        let checked = check_len("parameters", self.len(), params.len());
        agree(&self.comm, "write parameters", checked)?;
        let start = self.shard().start;
        let local_len = self.local_len();
        let written = self.local.write_params(&params[start..start + local_len]);
        agree(&self.comm, "write parameters", written)?;
        self.params[..params.len()].copy_from_slice(params);
        Ok(())
    }

    /// Sets the learning rate of every group; collective.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        let r = self.local.set_lr(lr);
        agree(&self.comm, "set the learning rate", r)
    }

    /// Sets the base learning rate of global group `g` (on the ranks whose shard holds part of
    /// it); collective.
    pub fn set_group_lr(&mut self, g: usize, lr: f64) -> Result<()> {
        let r = if g < self.ranges.len() {
            let local = self.pieces.iter().position(|p| p.group == g);
            match local {
                Some(i) => self.local.set_group_lr(i, lr),
                None => crate::optim::ensure_lr(lr),
            }
        } else {
            Err(Error::UnknownGroup {
                group: g,
                groups: self.ranges.len(),
            })
        };
        agree(&self.comm, "set a group's learning rate", r)
    }

    /// Sets the loss scale S of gradient control (dynamic loss scaling); collective.
    pub fn set_loss_scale(&mut self, scale: f64) -> Result<()> {
        let r = self.local.set_loss_scale(scale);
        agree(&self.comm, "set the loss scale", r)
    }

    /// Sets (or clears) every group's schedule; collective.
    pub fn set_schedule(&mut self, schedule: Option<Schedule>) -> Result<()> {
        let r = self.local.set_schedule(schedule);
        agree(&self.comm, "set the schedule", r)
    }

    /// Turns loss-scale unscaling, global-norm clipping and non-finite skipping on or off; the
    /// norm is over the whole model (summed over the ranks). Collective.
    pub fn set_gradient_control(&mut self, control: Option<GradientControl>) -> Result<()> {
        let r = self.local.set_gradient_control(control);
        agree(&self.comm, "set gradient control", r)
    }

    /// One data-parallel step from this rank's gradient `grads` (the whole model's, in
    /// [`Self::layout`]): the mean over ranks of the gradients updates the parameters, which
    /// every rank then holds in [`Self::params`]. Collective.
    pub fn step(&mut self, grads: &[f32]) -> Result<()> {
        let ready = check_len("gradients", self.len(), grads.len())
            .and_then(|()| self.local.next_uniform().map(|_| ()));
        agree(&self.comm, "step", ready)?;
        let t0 = Instant::now();
        let n = self.len();
        let send = if self.padded.is_empty() {
            grads
        } else {
            self.padded[..n].copy_from_slice(grads);
            &self.padded[..]
        };
        Self::reduce_scatter(&self.comm, self.world, self.rank, send, &mut self.shard);
        let world = self.world as f32;
        self.shard.iter_mut().for_each(|g| *g /= world);
        let t1 = Instant::now();
        let control = self.local.gradient_control();
        let mine = control.map(|c| control::sums(&self.shard, &c));
        let ts = Instant::now();
        let outcome = control.zip(mine).map(|(c, mine)| {
            let mut all = [0.0f32; 2];
            self.comm
                .all_reduce_into(&mine[..], &mut all[..], SystemOperation::sum());
            control::decide(all, &c)
        });
        let t2 = Instant::now();
        let local_len = self.local_len();
        let mut updated = self
            .local
            .write_grads(&self.shard[..local_len])
            .and_then(|()| match outcome {
                Some(o) => self.local.step_decided(o),
                None => self.local.step(),
            });
        if updated.is_ok() {
            updated = self.local_params();
        }
        agree(&self.comm, "update its shard", updated)?;
        let t3 = Instant::now();
        self.all_gather();
        let t4 = Instant::now();
        self.times = StepTimes {
            reduce_scatter: t1 - t0,
            norm_sums: ts - t1,
            norm_all_reduce: t2 - ts,
            update: t3 - t2,
            all_gather: t4 - t3,
        };
        Ok(())
    }

    fn shard_header(&self) -> ShardHeader {
        ShardHeader {
            format: SHARD_FORMAT.into(),
            world: self.world,
            rank: self.rank,
            shard_len: self.shard_len,
            len: self.len(),
            tensors: layout_records(&self.layout),
            groups: self.ranges.iter().map(|&(_, s, l)| (s, l)).collect(),
            pieces: self.pieces.clone(),
        }
    }

    /// Writes this rank's shard to `dir/shard-{rank}-of-{world}.safetensors` (through a
    /// temporary file, renamed when complete) and returns its path. Collective.
    pub fn save_shard(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let path = shard_path(dir.as_ref(), self.rank, self.world);
        let written = self.local.checkpoint().and_then(|bytes| {
            let parts = Parts::parse(&bytes)?;
            let meta = serde_json::to_string(&self.shard_header())
                .map_err(|e| Error::Checkpoint(e.to_string()))?;
            let bytes = parts.serialize_with(&[("wgoptim-zero", meta)])?;
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))
        });
        agree(&self.comm, "save its shard", written)?;
        Ok(path)
    }

    /// Loads this rank's shard written by [`Self::save_shard`] from `dir` on the same number
    /// of ranks; a shard of another world size is refused (consolidate it and use
    /// [`Self::load_consolidated`]). Collective; nothing changes on any rank unless every
    /// rank's shard fits.
    pub fn load_shard(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let path = shard_path(dir.as_ref(), self.rank, self.world);
        let other_world = |found: usize| {
            mismatch(
                "world size of the shards (consolidate them to load them onto another number \
                 of ranks)",
                self.world,
                found,
            )
        };
        let checked = std::fs::read(&path)
            .map_err(|e| match shard_world(dir.as_ref(), self.world) {
                Some(world) => other_world(world),
                None => Error::Checkpoint(format!("{}: {e}", path.display())),
            })
            .and_then(|bytes| {
                let header = read_shard_header(&bytes)?;
                if header.world != self.world {
                    return Err(other_world(header.world));
                }
                if header != self.shard_header() {
                    return Err(mismatch(
                        "shard",
                        format!("rank {} of this layout", self.rank),
                        format!("rank {} of another layout or sharding", header.rank),
                    ));
                }
                Ok(bytes)
            });
        let bytes = agree(&self.comm, "read its shard", checked)?;
        self.restore_local(&bytes)
    }

    /// Loads an ordinary single-process checkpoint (from [`consolidate`], or saved by one
    /// process from the same groups) onto this rank's shard. Collective; nothing changes on
    /// any rank unless it fits every rank.
    pub fn load_consolidated(&mut self, bytes: &[u8]) -> Result<()> {
        let local = self.slice_checkpoint(bytes);
        let local = agree(&self.comm, "fit the checkpoint to its shard", local)?;
        self.restore_local(&local)
    }

    /// Restores the local optimizer from its own checkpoint bytes, then gathers the
    /// parameters.
    fn restore_local(&mut self, bytes: &[u8]) -> Result<()> {
        let restored = self.local.restore(bytes);
        agree(&self.comm, "restore its shard", restored)?;
        let read = self.local_params();
        agree(&self.comm, "read its parameters", read)?;
        self.all_gather();
        Ok(())
    }

    /// The sums over ranks of their `send` vectors' block `rank` into `shard`.
    fn reduce_scatter(
        comm: &SimpleCommunicator,
        world: usize,
        rank: usize,
        send: &[f32],
        shard: &mut [f32],
    ) {
        let s = shard.len();
        for r in 0..world {
            let root = comm.process_at_rank(r as i32);
            for (k, piece) in send[r * s..(r + 1) * s].chunks(CHUNK).enumerate() {
                if r == rank {
                    let out = &mut shard[k * CHUNK..k * CHUNK + piece.len()];
                    root.reduce_into_root(piece, out, SystemOperation::sum());
                } else {
                    root.reduce_into(piece, SystemOperation::sum());
                }
            }
        }
    }

    /// Every rank's shard of [`Self::params`] to every rank.
    fn all_gather(&mut self) {
        let s = self.shard_len;
        for r in 0..self.world {
            let root = self.comm.process_at_rank(r as i32);
            for piece in self.params[r * s..(r + 1) * s].chunks_mut(CHUNK) {
                root.broadcast_into(piece);
            }
        }
    }

    /// The local optimizer's parameters into this rank's shard of [`Self::params`] (zero past
    /// them).
    fn local_params(&mut self) -> Result<()> {
        let (start, local_len) = (self.shard().start, self.local_len());
        let mine = &mut self.params[start..start + self.shard_len];
        self.local.read_params_into(&mut mine[..local_len])?;
        mine[local_len..].fill(0.0);
        Ok(())
    }

    /// The local optimizer's checkpoint cut from a whole-model one.
    fn slice_checkpoint(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        let whole = Parts::parse(bytes)?;
        let h = &whole.header;
        if h.len != self.len() {
            return Err(mismatch("parameter count", self.len(), h.len));
        }
        if h.tensors != layout_records(&self.layout) {
            return Err(mismatch(
                "tensor layout",
                format!("{} tensors of this layout", self.layout.tensors().len()),
                format!("{} other tensors", h.tensors.len()),
            ));
        }
        let ranges: Vec<(usize, usize)> = self.ranges.iter().map(|&(_, s, l)| (s, l)).collect();
        let theirs: Vec<(usize, usize)> = h.groups.iter().map(|g| (g.offset, g.len)).collect();
        if theirs != ranges {
            return Err(mismatch(
                "groups",
                format!("{ranges:?}"),
                format!("{theirs:?}"),
            ));
        }
        let mut local = Parts::parse(&self.local.checkpoint()?)?;
        let start = self.shard().start;
        local.header.steps = h.steps;
        local.header.device_steps = h.device_steps;
        local.header.skipped = h.skipped;
        local.header.gradient_control = h.gradient_control;
        local.params = whole.params[start..start + self.local_len()].to_vec();
        for (i, p) in self.pieces.iter().enumerate() {
            let g = &h.groups[p.group];
            let lh = &mut local.header.groups[i];
            (lh.optimizer, lh.lr, lh.schedule) = (g.optimizer, g.lr, g.schedule.clone());
            let within = p.start - g.offset..p.start - g.offset + p.len;
            local.states[i] = whole.states[p.group]
                .iter()
                .map(|s| s.slice(within.clone()))
                .collect();
        }
        local.serialize()
    }
}

/// The world size of shard files in `dir` written by a run of another size than `world`.
fn shard_world(dir: &Path, world: usize) -> Option<usize> {
    std::fs::read_dir(dir).ok()?.find_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        let of = name.strip_prefix("shard-")?.strip_suffix(".safetensors")?;
        let n: usize = of.split_once("-of-")?.1.parse().ok()?;
        (n != world).then_some(n)
    })
}

/// `dir/shard-{rank}-of-{world}.safetensors`.
pub fn shard_path(dir: &Path, rank: usize, world: usize) -> PathBuf {
    dir.join(format!("shard-{rank}-of-{world}.safetensors"))
}

fn read_shard_header(bytes: &[u8]) -> Result<ShardHeader> {
    let json = Parts::metadata(bytes, "wgoptim-zero")?.ok_or_else(|| {
        Error::Checkpoint("no `wgoptim-zero` header: not a shard of a sharded optimizer".into())
    })?;
    let header: ShardHeader = serde_json::from_str(&json)
        .map_err(|e| Error::Checkpoint(format!("bad shard header ({e})")))?;
    if header.format != SHARD_FORMAT {
        return Err(mismatch("shard format", SHARD_FORMAT, header.format));
    }
    Ok(header)
}

/// The ordinary single-process checkpoint of the model whose shards are the files `shards`
/// (every rank's, in any order): loadable by [`ZeroOptimizer::load_consolidated`] on any
/// number of ranks, and by one process's optimizer built from the same groups. Needs no MPI.
pub fn consolidate(shards: &[impl AsRef<Path>]) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    for path in shards {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
        let header = read_shard_header(&bytes)?;
        files.push((header, Parts::parse(&bytes)?));
    }
    files.sort_by_key(|(h, _)| h.rank);
    let Some((first, _)) = files.first() else {
        return Err(Error::Checkpoint("no shard files to consolidate".into()));
    };
    let first = first.clone();
    let ranks: Vec<usize> = files.iter().map(|(h, _)| h.rank).collect();
    if ranks != (0..first.world).collect::<Vec<_>>() {
        return Err(Error::Checkpoint(format!(
            "shards of ranks {ranks:?} given, but the run had {} ranks: give each rank's shard once",
            first.world
        )));
    }
    for (h, _) in &files {
        let same = (h.world, h.shard_len, h.len, &h.tensors, &h.groups)
            == (
                first.world,
                first.shard_len,
                first.len,
                &first.tensors,
                &first.groups,
            );
        if !same || h.format != first.format {
            return Err(Error::Checkpoint(format!(
                "rank {}'s shard is of another run than rank 0's",
                h.rank
            )));
        }
    }
    let counters = &files[0].1.header;
    for (h, p) in &files {
        let c = &p.header;
        if (c.steps, c.device_steps, c.skipped)
            != (counters.steps, counters.device_steps, counters.skipped)
        {
            return Err(Error::Checkpoint(format!(
                "rank {}'s shard is at step {}, rank 0's at {}: shards of different steps",
                h.rank, c.steps, counters.steps
            )));
        }
    }
    let mut params = vec![0.0f32; first.len];
    let mut groups: Vec<Option<GroupHeader>> = vec![None; first.groups.len()];
    let mut states: Vec<Vec<crate::precision::StoredState>> = vec![Vec::new(); first.groups.len()];
    let mut filled = vec![0usize; first.groups.len()];
    for (h, p) in &files {
        let bad = |why: &str| Error::Checkpoint(format!("rank {}'s shard: {why}", h.rank));
        let start = h
            .rank
            .checked_mul(h.shard_len)
            .ok_or_else(|| bad("bad shard length"))?;
        let covered = h.shard_len.checked_mul(h.world).unwrap_or(0);
        if covered < first.len || p.params.len() > h.shard_len || start > first.len {
            return Err(bad("its shard length does not fit the model"));
        }
        let end = (start + p.params.len()).min(first.len);
        params[start..end].copy_from_slice(&p.params[..end - start]);
        if p.header.groups.len() != h.pieces.len() {
            return Err(bad("its header's groups are not its pieces"));
        }
        for (i, piece) in h.pieces.iter().enumerate() {
            let Some(&(gs, gl)) = first.groups.get(piece.group) else {
                return Err(bad("a piece of a group the model does not have"));
            };
            let lh = &p.header.groups[i];
            let same_kind = groups[piece.group].as_ref().is_none_or(|g| {
                (
                    g.optimizer.name(),
                    g.optimizer.variant(),
                    g.optimizer.state_layout().dtype(),
                ) == (
                    lh.optimizer.name(),
                    lh.optimizer.variant(),
                    lh.optimizer.state_layout().dtype(),
                )
            });
            if !same_kind {
                return Err(bad(
                    "another optimizer than the other shards' for the same group",
                ));
            }
            if piece.start != gs + filled[piece.group] || lh.len != piece.len {
                return Err(Error::Checkpoint(format!(
                    "rank {}'s piece of group {} does not continue the one before",
                    h.rank, piece.group
                )));
            }
            filled[piece.group] += piece.len;
            groups[piece.group].get_or_insert(GroupHeader {
                optimizer: lh.optimizer,
                lr: lh.lr,
                offset: gs,
                len: gl,
                schedule: lh.schedule.clone(),
            });
            let slots = &mut states[piece.group];
            if slots.is_empty() {
                slots.clone_from(&p.states[i]);
            } else {
                for (a, b) in slots.iter_mut().zip(&p.states[i]) {
                    a.extend(b);
                }
            }
        }
    }
    let groups = groups
        .into_iter()
        .zip(&first.groups)
        .zip(&filled)
        .map(|((g, &(_, len)), &have)| {
            g.filter(|_| have == len)
                .ok_or_else(|| Error::Checkpoint("the shards do not cover every group".into()))
        })
        .collect::<Result<Vec<_>>>()?;
    Parts {
        header: crate::checkpoint::Header {
            format: crate::checkpoint::FORMAT.into(),
            len: first.len,
            tensors: first.tensors.clone(),
            steps: counters.steps,
            device_steps: counters.device_steps,
            skipped: counters.skipped,
            gradient_control: counters.gradient_control,
            groups,
        },
        params,
        states,
    }
    .serialize()
}

/// Every rank learns whether every rank's `result` is Ok: a rank's own error comes back
/// as it is, and the ranks whose own result was fine get [`Error::Ranks`] naming the first
/// rank that failed. Call it before any collective that a failed rank would not reach.
fn agree<T>(comm: &SimpleCommunicator, what: &str, result: Result<T>) -> Result<T> {
    let ok = u8::from(result.is_ok());
    let mut all = vec![0u8; comm.size() as usize];
    comm.all_gather_into(&ok, &mut all[..]);
    let failed = all.iter().position(|&x| x == 0);
    match (result, failed) {
        (Err(e), _) => Err(e),
        (Ok(_), Some(k)) => Err(Error::Ranks(format!(
            "rank {k} could not {what} (its own error says why)"
        ))),
        (Ok(v), None) => Ok(v),
    }
}

/// `[[u64; 2]]` as one flat slice for MPI.
fn flat_mut(v: &mut [[u64; 2]]) -> &mut [u64] {
    v.as_flattened_mut()
}
