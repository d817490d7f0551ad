//! One parameter group's share of a step: a contiguous range of the flat parameter and
//! gradient buffers, its own hyperparameters, state buffers, uniform, pipeline and one bind
//! group per binding-sized chunk.

use std::num::NonZeroU64;

use wgpu::util::DeviceExt;

use super::buffers::{Allocation, BufferRole, DATA_USAGE};
use super::chunk::{Chunk, plan_chunks};
use super::context::GpuContext;
use super::kernel::{
    CODE_TABLES_BINDING, KernelKey, KernelShape, MODEL_BINDING, PIECE_SUMS_BINDING,
    PIECE_TABLES_BINDING, SCRATCH_BINDING, absmax_binding,
};
use crate::backend::Progress;
use crate::error::{Error, Result};
use crate::optim::{Dispatch, Factor, Optimizer, StateDType, StateSlot};
use crate::precision::{BLOCK, StoredState};
use crate::uniform::{ChunkUniform, StepScalars, StepUniform};

/// One state tensor on the device: its values (f32, bf16 pairs, or int8 codes four to a u32)
/// and, for int8, one f32 absmax per block.
pub(crate) struct StateBuffer {
    pub slot: StateSlot,
    pub data: wgpu::Buffer,
    pub absmax: Option<wgpu::Buffer>,
}

impl StateBuffer {
    /// Writes `stored` (of this slot's type) from element 0. `fresh`: the buffers are new
    /// (zeroed), so all-zero bytes need no write.
    pub fn upload(&self, queue: &wgpu::Queue, stored: &StoredState, fresh: bool) {
        let (data, absmax) = stored.to_bytes();
        let write = |buffer: &wgpu::Buffer, mut bytes: Vec<u8>| {
            let skip = bytes.is_empty() || (fresh && bytes.iter().all(|&b| b == 0));
            if !skip {
                bytes.resize(bytes.len().next_multiple_of(4), 0);
                queue.write_buffer(buffer, 0, &bytes);
            }
        };
        write(&self.data, data);
        if let Some(buffer) = &self.absmax {
            write(buffer, absmax);
        }
    }
}

/// Bytes of a state buffer of `len` elements of `dtype`, padded to whole vec4 blocks (and for
/// int8 codes, whole blocks), and of its absmax buffer.
pub(crate) fn state_bytes(dtype: StateDType, len: usize) -> (u64, u64) {
    let vecs = (len as u64).div_ceil(4);
    match dtype {
        StateDType::F32 => (vecs * 16, 0),
        StateDType::Bf16 => (vecs * 8, 0),
        StateDType::Int8 => (vecs * 4, 4 * (len as u64).div_ceil(BLOCK as u64)),
    }
}

struct Launch {
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 2],
}

/// What the per-tensor driver (`shaders/pieces.wgsl`) adds to a segment: its tables and sums,
/// each chunk's pieces and lines, and its passes' pipelines.
struct PerTensor {
    tables: wgpu::Buffer,
    sums: wgpu::Buffer,
    /// Per chunk: its pieces' workgroups (x, y).
    workgroups: Vec<[u32; 2]>,
    /// Per chunk: its lines' workgroups (x, y) (Adafactor).
    line_workgroups: Vec<[u32; 2]>,
    tensors: u32,
    matrices: u32,
    /// Muon: the workgroups (x, y) over the tiles of every X, and of every S.
    tile_workgroups: [[u32; 2]; 2],
    /// Muon's scratch space, bound whole.
    scratch: Option<wgpu::Buffer>,
    /// The optimizer's passes ([`Optimizer::passes`]), each with its pipeline.
    passes: Vec<(Dispatch, wgpu::ComputePipeline)>,
}

/// What a family adds to the per-tensor driver's tables: nothing (LAMB), Adafactor's lines
/// and matrices, or Muon's matrices and tiles.
enum Extra<'a> {
    None,
    Lines,
    Muon(&'a crate::Muon, &'a [crate::optim::muon::Matrix]),
}

/// The per-tensor driver's tables (as `shaders/pieces.wgsl` documents them) and, per chunk, its
/// first piece, its pieces and its lines.
struct PieceTables {
    rows: Vec<[u32; 4]>,
    per_chunk: Vec<(u32, u32, u32)>,
    /// Muon: the tiles of every X, and of every S.
    tiles: [u32; 2],
}

/// Muon's tables: per matrix (first scratch element, r as f32 bits, first element of the
/// final X, 0), then the output tiles (matrix, tile row, tile column, 0) of every X and of
/// every S, S's (and P's) on and above the diagonal only: they are symmetric, and a tile above
/// the diagonal also writes its mirror image (`shaders/muon.wgsl`).
fn muon_tables(o: &crate::Muon, mats: &[crate::optim::muon::Matrix]) -> [Vec<[u32; 4]>; 3] {
    use crate::optim::muon::GEMM_TILE;
    let tiles = |t: usize, rows: usize, cols: usize, upper: bool| {
        (0..rows.div_ceil(GEMM_TILE)).flat_map(move |i| {
            let first = if upper { i } else { 0 };
            (first..cols.div_ceil(GEMM_TILE)).map(move |j| [t as u32, i as u32, j as u32, 0])
        })
    };
    let mut matrix_rows = Vec::new();
    let (mut wide, mut square) = (Vec::new(), Vec::new());
    for (t, mat) in mats.iter().enumerate() {
        let (m, n) = mat.mn();
        let ratio = o.lr_ratio(mat.rows, mat.cols) as f32;
        let last = mat.work + (o.ns_steps as usize % 2) * m * n;
        matrix_rows.push([mat.work as u32, ratio.to_bits(), last as u32, 0]);
        wide.extend(tiles(t, m, n, false));
        square.extend(tiles(t, m, m, true));
    }
    [matrix_rows, wide, square]
}

/// Workgroups (x, y) of `count` work items, `per_group` to a workgroup, within `max_dim` per
/// dimension.
fn grid(count: u32, per_group: u32, max_dim: u32) -> [u32; 2] {
    let groups = u64::from(count.div_ceil(per_group));
    let x = groups.min(u64::from(max_dim.max(1))).max(1);
    [x as u32, groups.div_ceil(x) as u32]
}

/// The per-tensor driver's tables for the group's `factors` (its tensors, element ranges from
/// the group's start at flat element `offset`) over `chunks`. The pieces are the CPU twin's
/// (`cpu::lamb::pieces`); a chunk seam off their grid is refused. With `lines` (Adafactor),
/// each matrix's rows and columns go to the chunk that holds it: a matrix across a seam is
/// refused.
fn piece_tables(
    factors: &[Factor],
    extra: &Extra<'_>,
    offset: usize,
    chunks: &[Chunk],
) -> Result<PieceTables> {
    let lines = matches!(extra, Extra::Lines);
    use crate::cpu::lamb::{PIECE_ELEMENTS, pieces};
    let ranges: Vec<_> = factors.iter().map(|f| f.range.clone()).collect();
    let pieces = pieces(&ranges);
    let bounds: Vec<_> = chunks
        .iter()
        .map(|c| {
            let start = (c.offset_bytes / 4) as usize;
            start..start + c.elements as usize
        })
        .collect();
    let mut piece_rows = Vec::new();
    let mut chunk_lines = Vec::new();
    let mut line_rows = Vec::new();
    let mut per_chunk = Vec::new();
    for chunk in &bounds {
        if !chunk.start.is_multiple_of(PIECE_ELEMENTS) {
            return Err(Error::InvalidShape(format!(
                "a binding chunk starts at element {}, off the per-tensor pieces' grid of \
                 {PIECE_ELEMENTS}: the device's storage binding limit is too small for LAMB \
                 and Adafactor",
                chunk.start
            )));
        }
        let first = piece_rows.len() as u32;
        for p in pieces.iter().filter(|p| chunk.contains(&p.range.start)) {
            let len = p.range.len();
            let lanes = len - 4 * (len.div_ceil(4) - 1);
            piece_rows.push([
                p.tensor as u32,
                ((p.range.start - chunk.start) / 4) as u32,
                len.div_ceil(4) as u32,
                lanes as u32,
            ]);
        }
        let first_line = line_rows.len() as u32;
        if lines {
            for f in factors.iter().filter(|f| f.factored()) {
                if !chunk.contains(&f.range.start) {
                    continue;
                }
                if f.range.end > chunk.end {
                    return Err(Error::InvalidShape(format!(
                        "Adafactor: a matrix of {} elements (from element {} of its group) \
                         spans two storage bindings of this device; its rows and columns must \
                         lie inside one",
                        f.range.len(),
                        f.range.start
                    )));
                }
                for l in f.lines() {
                    // The shader tells four-column lines by their stride alone.
                    debug_assert_eq!(l.width == 4, l.stride.is_multiple_of(4));
                    line_rows.push([
                        (l.first - chunk.start) as u32,
                        l.count as u32,
                        l.stride as u32,
                        l.state as u32,
                    ]);
                }
            }
        }
        let count = line_rows.len() as u32 - first_line;
        chunk_lines.push([first_line, count, 0, 0]);
        per_chunk.push((first, piece_rows.len() as u32 - first, count));
    }
    // Pieces come tensor by tensor: one pass counts each tensor's run.
    let mut counts = vec![0u32; factors.len()];
    for p in &pieces {
        counts[p.tensor] += 1;
    }
    let (mut first_piece, mut first_matrix) = (0u32, 0u32);
    let mut runs = Vec::new();
    let mut shapes = Vec::new();
    let mut matrix_rows = Vec::new();
    for (f, count) in factors.iter().zip(counts) {
        let batch = if f.factored() { f.batch as u32 } else { 0 };
        runs.push([first_piece, count, first_matrix, batch]);
        shapes.push([
            ((offset + f.range.start) / 4) as u32,
            f.state as u32,
            f.cols as u32,
            f.rows as u32,
        ]);
        for b in 0..batch as usize {
            matrix_rows.push([f.row_state(b) as u32, f.rows as u32, 0, 0]);
        }
        first_piece += count;
        first_matrix += batch;
    }
    let mut tiles = [0, 0];
    if let Extra::Muon(o, mats) = extra {
        let [mats, wide, square] = muon_tables(o, mats);
        tiles = [wide.len() as u32, square.len() as u32];
        matrix_rows = mats;
        line_rows = wide.into_iter().chain(square).collect();
        chunk_lines = vec![[0, tiles[0], tiles[0], tiles[1]]; chunks.len()];
    }
    let header = [
        piece_rows.len() as u32,
        factors.len() as u32,
        line_rows.len() as u32,
        matrix_rows.len() as u32,
    ];
    let rows = std::iter::once(header)
        .chain(piece_rows)
        .chain(runs)
        .chain(shapes)
        .chain(line_rows)
        .chain(matrix_rows)
        .chain(chunk_lines)
        .collect();
    Ok(PieceTables {
        rows,
        per_chunk,
        tiles,
    })
}

pub(crate) struct Segment {
    /// First element of the range in the flat buffers (a bindable offset).
    pub offset: usize,
    /// Elements in the range.
    pub len: usize,
    pub progress: Progress,
    /// State tensors of this range only, indexed from its start.
    pub state: Vec<StateBuffer>,
    /// Elements of each state tensor ([`Optimizer::state_len`]).
    pub state_len: usize,
    /// Adafactor: how it sees each tensor (empty for the other families).
    pub factors: Vec<Factor>,
    /// The kernel this range runs (its state type resolved for its length).
    pub key: KernelKey,
    pub chunks: Vec<Chunk>,
    step_uniform: wgpu::Buffer,
    chunk_uniform: wgpu::Buffer,
    uniform_align: u64,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    launches: Vec<Launch>,
    /// The per-tensor driver's part (LAMB), `None` for the element-wise families.
    per_tensor: Option<PerTensor>,
    /// Skipping on: the step scalars of a window of device step counts, entry t at
    /// t mod SCALAR_RING (the device may lag the host by the steps it skipped).
    pub scalar_ring: Option<wgpu::Buffer>,
    /// The optimizer (cycled momentum applied) the ring's window was written with; `None`
    /// forces the whole window to be written again.
    pub scalars_written_with: Option<Optimizer>,
    /// `UNIFORM_RING` slots of 64 bytes: each recorded step writes its uniform into its own
    /// slot and copies it into `step_uniform` inside the encoder, so that several steps
    /// recorded before one submission each run with their own scalars.
    uniform_ring: wgpu::Buffer,
}

/// Entries of the step-scalar ring (a power of two, so that it divides 2^32 and the device's
/// low 32 bits of its step count index it). The window of device counts the host keeps
/// written spans at most this many; the host reads the device's count back to move the
/// window once every `SCALAR_RING - UNIFORM_RING - 1` steps (see `GpuOptimizer::record_step`).
pub(crate) const SCALAR_RING: u64 = 4096;

/// Steps of one optimizer that may be recorded before the queue is submitted.
pub(crate) const UNIFORM_RING: u64 = 64;

impl Segment {
    /// Allocates the state and uniforms of `optimizer` over `len` elements starting at
    /// `offset`, and fetches (or compiles) its pipeline of `shape`. Call inside an error scope, then
    /// [`Segment::bind`].
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        ctx: &GpuContext,
        optimizer: Optimizer,
        shape: KernelShape,
        offset: usize,
        len: usize,
        tensors: &[(std::ops::Range<usize>, Vec<usize>)],
        allocations: &mut Vec<Allocation>,
    ) -> Result<Self> {
        let optimizer = optimizer.resolved_for(len);
        let state_len = optimizer.state_len(len, tensors);
        let shaped = optimizer.kernel().shaped_state();
        let (factors, _) = crate::optim::factors(tensors);
        let progress = Progress::new(optimizer)?;
        let key = KernelKey::of(&optimizer);
        key.check_limits(&ctx.limits())?;
        let shape = if key.blockwise() {
            KernelShape::BLOCKWISE
        } else {
            shape
        };
        let limits = ctx.limits();
        let chunks = plan_chunks(&limits, len, shape)?;
        let device = ctx.device();
        let state = optimizer
            .state_layout()
            .slots
            .into_iter()
            .map(|slot| {
                let (bytes, absmax_bytes) = state_bytes(slot.dtype, state_len);
                let mut buffer = |label: &str, size: u64| {
                    allocations.push(Allocation {
                        label: label.into(),
                        role: BufferRole::State,
                        bytes: size,
                    });
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size,
                        usage: DATA_USAGE,
                        mapped_at_creation: false,
                    })
                };
                let data = buffer(slot.name, bytes);
                let absmax = (absmax_bytes > 0)
                    .then(|| buffer(&format!("{} absmax", slot.name), absmax_bytes));
                let state = StateBuffer { slot, data, absmax };
                // Fresh buffers are zero, which is 0 in every type but the signed int8 map (code
                // 127). Else fill, the padding of the last vec4 block too.
                let signed_int8 = slot.dtype == StateDType::Int8 && !slot.non_negative;
                if slot.init != 0.0 || signed_int8 {
                    let padded = state_len.next_multiple_of(4);
                    let init = StoredState::filled(&slot, padded, slot.init);
                    state.upload(ctx.queue(), &init, true);
                }
                state
            })
            .collect();
        let uniform_bytes = std::mem::size_of::<StepUniform>() as u64;
        let step_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step uniform"),
            size: uniform_bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let uniform_ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step uniform ring"),
            size: uniform_bytes * UNIFORM_RING,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let uniform_align = u64::from(limits.min_uniform_buffer_offset_alignment).max(16);
        if shaped {
            // Bound whole (every chunk's tensors find their averages through the tables).
            let bytes = state_bytes(StateDType::F32, state_len).0;
            if bytes > limits.max_storage_buffer_binding_size {
                return Err(Error::InvalidShape(format!(
                    "Adafactor: the group's state takes {bytes} bytes (its vectors' averages in \
                     full), more than one storage binding of this device holds ({}); split the \
                     group",
                    limits.max_storage_buffer_binding_size
                )));
            }
        }
        // Muon: its matrices (every tensor 2-D) and their scratch space, bound whole.
        let muon = match &optimizer {
            crate::Optimizer::Muon(o) => {
                let (mats, work) = crate::optim::muon::matrices(tensors)?;
                let bytes = 4 * work as u64;
                if bytes > limits.max_storage_buffer_binding_size {
                    return Err(Error::InvalidShape(format!(
                        "Muon: the group's matrices need {bytes} bytes of scratch space \
                         (2mn + m² floats each), more than one storage binding of this device \
                         holds ({}); split the group",
                        limits.max_storage_buffer_binding_size
                    )));
                }
                Some((*o, mats, bytes))
            }
            _ => None,
        };
        let tables = if key.per_tensor() {
            let extra = match &muon {
                Some((o, mats, _)) => Extra::Muon(o, mats),
                None if shaped => Extra::Lines,
                None => Extra::None,
            };
            Some(piece_tables(&factors, &extra, offset, &chunks)?)
        } else {
            None
        };
        let mut chunk_bytes = vec![0u8; chunks.len() * uniform_align as usize];
        for (i, c) in chunks.iter().enumerate() {
            let at = i * uniform_align as usize;
            let first_vec = ((offset as u64 * 4 + c.offset_bytes) / 16) as u32;
            let uniform = match &tables {
                // The per-tensor driver: this chunk's first piece, its number of pieces, and
                // its index.
                Some(t) => ChunkUniform {
                    full_vecs: t.per_chunk[i].1,
                    tail_lanes: i as u32,
                    first_partial: t.per_chunk[i].0,
                    first_vec,
                },
                None => ChunkUniform {
                    first_vec,
                    ..ChunkUniform::for_len(c.elements)
                },
            };
            chunk_bytes[at..at + 16].copy_from_slice(bytemuck::bytes_of(&uniform));
        }
        let chunk_uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("chunk uniforms"),
            contents: &chunk_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        for (label, size) in [
            ("step uniform", step_uniform.size()),
            ("step uniform ring", uniform_ring.size()),
            ("chunk uniforms", chunk_uniform.size()),
        ] {
            allocations.push(Allocation {
                label: label.into(),
                role: BufferRole::Uniform,
                bytes: size,
            });
        }
        // The per-tensor driver has no `main`: its first pass stands in (unused by `encode`).
        let passes = key.kernel.passes();
        let (layout, pipeline) =
            ctx.kernels()
                .get_entry(device, key, &optimizer.variant(), shape, passes[0].0);
        let per_tensor = match tables {
            Some(PieceTables {
                rows,
                per_chunk,
                tiles,
            }) => {
                let max_dim = limits.max_compute_workgroups_per_dimension;
                let workgroups = per_chunk
                    .iter()
                    .map(|&(_, count, _)| grid(count, 1, max_dim))
                    .collect();
                let line_workgroups = per_chunk
                    .iter()
                    .map(|&(_, _, count)| grid(count, 64, max_dim))
                    .collect();
                let tables = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("per-tensor tables"),
                    contents: bytemuck::cast_slice(&rows),
                    usage: wgpu::BufferUsages::STORAGE,
                });
                let header = rows[0];
                let sums = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("per-tensor sums"),
                    size: 8 * u64::from(header[0] + header[1] + header[3]).max(1),
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                });
                for (label, b) in [("per-tensor tables", &tables), ("per-tensor sums", &sums)] {
                    allocations.push(Allocation {
                        label: label.into(),
                        role: BufferRole::Tables,
                        bytes: b.size(),
                    });
                }
                let scratch = muon.as_ref().map(|(_, _, bytes)| {
                    allocations.push(Allocation {
                        label: "muon scratch".into(),
                        role: BufferRole::Scratch,
                        bytes: (*bytes).max(4),
                    });
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("muon scratch"),
                        size: (*bytes).max(4),
                        usage: wgpu::BufferUsages::STORAGE,
                        mapped_at_creation: false,
                    })
                });
                let passes = optimizer
                    .passes()
                    .into_iter()
                    .map(|(entry, dispatch)| {
                        let pipeline = ctx
                            .kernels()
                            .get_entry(device, key, &optimizer.variant(), shape, entry)
                            .1;
                        (dispatch, pipeline)
                    })
                    .collect();
                Some(PerTensor {
                    tables,
                    sums,
                    workgroups,
                    line_workgroups,
                    tensors: header[1],
                    matrices: header[3],
                    tile_workgroups: tiles.map(|count| grid(count, 1, max_dim)),
                    scratch,
                    passes,
                })
            }
            None => None,
        };
        Ok(Self {
            offset,
            len,
            progress,
            state,
            state_len,
            factors: if shaped { factors } else { Vec::new() },
            key,
            chunks,
            step_uniform,
            chunk_uniform,
            uniform_align,
            layout,
            pipeline,
            launches: Vec::new(),
            per_tensor,
            scalar_ring: None,
            scalars_written_with: None,
            uniform_ring,
        })
    }

    /// (Re)builds the bind groups over the shared buffers and the control block and step
    /// scalars in force. Call inside an error scope.
    pub fn bind(
        &mut self,
        ctx: &GpuContext,
        [params, grads]: [&wgpu::Buffer; 2],
        model: Option<&wgpu::Buffer>,
        control: &wgpu::Buffer,
        scalars: &wgpu::Buffer,
    ) {
        let device = ctx.device();
        let kernel = self.progress.optimizer.kernel();
        let shaped_state = kernel.shaped_state();
        let base = self.offset as u64 * 4;
        let param_bytes = self.key.params.bytes();
        let grad_bytes = self.key.grads.bytes();
        self.launches = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // This chunk's range of a flat buffer of `bytes` bytes per element (f32 4;
                // bf16 and f16 2).
                let flat = |buffer, bytes: u64| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: (base + c.offset_bytes) / 4 * bytes,
                        size: NonZeroU64::new(c.size_bytes / 4 * bytes),
                    })
                };
                let mut entries = vec![
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.step_uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &self.chunk_uniform,
                            offset: i as u64 * self.uniform_align,
                            size: NonZeroU64::new(16),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: flat(params, param_bytes),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: flat(grads, grad_bytes),
                    },
                    wgpu::BindGroupEntry {
                        binding: 8,
                        resource: control.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 9,
                        resource: scalars.as_entire_binding(),
                    },
                ];
                // A state buffer's range of this chunk: its bytes per element are the f32's
                // divided by `shrink` (int8 codes 4, bf16 2).
                // State shaped by the tensors (Adafactor's) is bound whole: every chunk's tensors
                // find theirs through the tables.
                let state_range = |buffer, shrink: u64| {
                    let (offset, size) = if shaped_state {
                        (0, None)
                    } else {
                        (
                            c.offset_bytes / shrink,
                            NonZeroU64::new(c.size_bytes / shrink),
                        )
                    };
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset,
                        size,
                    })
                };
                for k in 0..kernel.state_bindings() {
                    let resource = match self.state.iter().find(|s| s.slot.slot == k) {
                        Some(s) => match s.slot.dtype {
                            StateDType::F32 => state_range(&s.data, 1),
                            StateDType::Bf16 => state_range(&s.data, 2),
                            StateDType::Int8 => state_range(&s.data, 4),
                        },
                        None => ctx.placeholder(k).as_entire_binding(),
                    };
                    entries.push(wgpu::BindGroupEntry {
                        binding: 4 + k as u32,
                        resource,
                    });
                }
                if let Some(model) = model {
                    entries.push(wgpu::BindGroupEntry {
                        binding: MODEL_BINDING,
                        resource: flat(model, 2),
                    });
                }
                if self.key.blockwise() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: CODE_TABLES_BINDING,
                        resource: ctx.code_tables().as_entire_binding(),
                    });
                    for s in &self.state {
                        let absmax = s.absmax.as_ref().expect("int8 state has an absmax");
                        let first = c.offset_bytes / 4 / BLOCK as u64;
                        let blocks = (c.elements).div_ceil(BLOCK as u64);
                        entries.push(wgpu::BindGroupEntry {
                            binding: absmax_binding(s.slot.slot),
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: absmax,
                                offset: first * 4,
                                size: NonZeroU64::new(blocks * 4),
                            }),
                        });
                    }
                }
                if let Some(pt) = &self.per_tensor {
                    entries.push(wgpu::BindGroupEntry {
                        binding: PIECE_TABLES_BINDING,
                        resource: pt.tables.as_entire_binding(),
                    });
                    entries.push(wgpu::BindGroupEntry {
                        binding: PIECE_SUMS_BINDING,
                        resource: pt.sums.as_entire_binding(),
                    });
                    if let Some(scratch) = &pt.scratch {
                        entries.push(wgpu::BindGroupEntry {
                            binding: SCRATCH_BINDING,
                            resource: scratch.as_entire_binding(),
                        });
                    }
                }
                Launch {
                    bind_group: device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(kernel.name()),
                        layout: &self.layout,
                        entries: &entries,
                    }),
                    workgroups: c.workgroups,
                }
            })
            .collect();
    }

    /// Records this step's `uniform` into `encoder`: written into ring slot `slot` (lands at
    /// the next submission, before the encoder runs) and copied into the bound uniform there.
    pub fn record_uniform(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        uniform: &StepUniform,
        slot: u64,
    ) {
        let bytes = std::mem::size_of::<StepUniform>() as u64;
        let at = (slot % UNIFORM_RING) * bytes;
        queue.write_buffer(&self.uniform_ring, at, bytemuck::bytes_of(uniform));
        encoder.copy_buffer_to_buffer(&self.uniform_ring, at, &self.step_uniform, 0, bytes);
    }

    /// With a scalar ring, writes the step scalars of the device step counts `window` (at most
    /// `SCALAR_RING` of them): all of them when the optimizer the next step runs (cycled
    /// momentum) differs from the one they were written with, else only the newest.
    pub fn write_scalars(
        &mut self,
        queue: &wgpu::Queue,
        window: std::ops::RangeInclusive<u64>,
    ) -> Result<()> {
        let Some(ring) = &self.scalar_ring else {
            return Ok(());
        };
        let optimizer = self.progress.next_optimizer()?;
        let (first, last) = (*window.start(), *window.end());
        let first = if self.scalars_written_with == Some(optimizer) {
            last
        } else {
            first.max(last.saturating_sub(SCALAR_RING - 1))
        };
        // One write per contiguous run of ring entries (two where the window wraps).
        let mut t = first;
        while t <= last {
            let at = t % SCALAR_RING;
            let run_end = last.min(t + (SCALAR_RING - 1 - at));
            let entries: Vec<StepScalars> =
                (t..=run_end).map(|u| optimizer.step_scalars(u)).collect();
            let stride = std::mem::size_of::<StepScalars>() as u64;
            queue.write_buffer(ring, at * stride, bytemuck::cast_slice(&entries));
            t = run_end + 1;
        }
        self.scalars_written_with = Some(optimizer);
        Ok(())
    }

    /// Records this segment's dispatches.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(pt) = &self.per_tensor {
            // Passes over tensors, matrices or tiles once (any chunk's bind group holds the
            // tables, sums, scratch and whole shaped state), the others per chunk.
            for (dispatch, pipeline) in &pt.passes {
                pass.set_pipeline(pipeline);
                let workgroups = match dispatch {
                    Dispatch::WideTiles | Dispatch::SquareTiles => {
                        let [x, y] =
                            pt.tile_workgroups[usize::from(*dispatch == Dispatch::SquareTiles)];
                        if x * y > 0 {
                            pass.set_bind_group(0, &self.launches[0].bind_group, &[]);
                            pass.dispatch_workgroups(x, y, 1);
                        }
                        continue;
                    }
                    Dispatch::Tensors | Dispatch::Matrices => {
                        let items = match dispatch {
                            Dispatch::Matrices => pt.matrices,
                            _ => pt.tensors,
                        };
                        if items > 0 {
                            pass.set_bind_group(0, &self.launches[0].bind_group, &[]);
                            pass.dispatch_workgroups(items.div_ceil(64), 1, 1);
                        }
                        continue;
                    }
                    Dispatch::Lines => &pt.line_workgroups,
                    Dispatch::Pieces | Dispatch::Elements => &pt.workgroups,
                };
                for (launch, &[x, y]) in self.launches.iter().zip(workgroups) {
                    if x * y > 0 {
                        pass.set_bind_group(0, &launch.bind_group, &[]);
                        pass.dispatch_workgroups(x, y, 1);
                    }
                }
            }
            return;
        }
        pass.set_pipeline(&self.pipeline);
        for launch in &self.launches {
            pass.set_bind_group(0, &launch.bind_group, &[]);
            pass.dispatch_workgroups(launch.workgroups[0], launch.workgroups[1], 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::muon_tables;
    use crate::optim::muon::{GEMM_TILE, Matrix};

    /// Every X tile is listed, and the S (and P) tiles on and above the diagonal only: for a
    /// 130 × 200 matrix, 3 × 4 X tiles and 3 + 2 + 1 S tiles, each with column ≥ row.
    #[test]
    fn symmetric_results_list_the_tiles_on_and_above_the_diagonal() {
        assert_eq!(GEMM_TILE, 64);
        let mat = Matrix {
            range: 0..130 * 200,
            rows: 130,
            cols: 200,
            work: 0,
        };
        let [_, wide, square] = muon_tables(&crate::Muon::default(), &[mat]);
        assert_eq!(wide.len(), 3 * 4);
        let tiles: Vec<_> = square.iter().map(|t| (t[1], t[2])).collect();
        assert_eq!(tiles, [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]);
    }
}
