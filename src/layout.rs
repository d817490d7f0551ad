//! Many tensors, one flat buffer: a model's named tensors packed at aligned offsets, so that one
//! fused dispatch per binding-sized chunk steps all of them (not one dispatch per tensor).

use crate::error::{Error, Result};
use crate::optim::{Optimizer, StateDType, StatePrecision};

/// Where one named tensor lives in the flat parameter space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorView {
    /// The tensor's name (`fc1.weight`, …).
    pub name: String,
    /// Its shape (row-major); the product is `len`.
    pub shape: Vec<usize>,
    /// First element in the flat buffers (parameters, gradients, every state tensor).
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
}

impl TensorView {
    /// The byte offset of the view in every flat buffer.
    pub fn byte_offset(&self) -> u64 {
        self.offset as u64 * 4
    }

    /// The element range `offset..offset + len`.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Named tensors packed into one flat f32 vector. Each starts at a multiple of `align`
/// elements; the gaps between tensors hold zeros in parameters and gradients, so the fused
/// kernels leave them at zero (every rule maps θ = g = 0 to θ = 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    tensors: Vec<TensorView>,
    len: usize,
    align: usize,
}

impl ParamLayout {
    /// An empty layout whose tensors start at multiples of `align` elements (at least 4, one
    /// vec4 block). Use 64 (256 bytes, wgpu's default `min_storage_buffer_offset_alignment`)
    /// so that every view can also be bound as a storage buffer range on its own.
    pub fn new(align: usize) -> Self {
        Self {
            tensors: Vec::new(),
            len: 0,
            align: align.max(4).next_power_of_two(),
        }
    }

    /// An empty layout aligned for binding views on `limits`' device.
    pub fn for_limits(limits: &wgpu::Limits) -> Self {
        Self::new(limits.min_storage_buffer_offset_alignment as usize / 4)
    }

    /// The alignment of tensor offsets, in elements.
    pub fn align(&self) -> usize {
        self.align
    }

    /// Registers a tensor of `shape` (all dimensions ≥ 1; `[]` is a scalar of one element, as
    /// in PyTorch) and returns its view.
    pub fn add(&mut self, name: &str, shape: &[usize]) -> Result<&TensorView> {
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(Error::DuplicateTensor(name.to_string()));
        }
        let Some(len) = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
            return Err(Error::TensorTooLarge {
                name: name.to_string(),
                shape: shape.to_vec(),
            });
        };
        if len == 0 {
            return Err(Error::EmptyTensor {
                name: name.to_string(),
                shape: shape.to_vec(),
            });
        }
        let offset = self.len.next_multiple_of(self.align);
        self.len = offset + len;
        self.tensors.push(TensorView {
            name: name.to_string(),
            shape: shape.to_vec(),
            offset,
            len,
        });
        Ok(&self.tensors[self.tensors.len() - 1])
    }

    /// The flat length: the end of the last tensor.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no tensor is registered.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Every tensor, in registration order.
    pub fn tensors(&self) -> &[TensorView] {
        &self.tensors
    }

    /// The view of tensor `name`.
    pub fn get(&self, name: &str) -> Result<&TensorView> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::UnknownTensor(name.to_string()))
    }

    /// Scatters per-tensor data into one flat vector (gaps zero); `data` in registration order.
    pub fn pack(&self, data: &[&[f32]]) -> Result<Vec<f32>> {
        if data.len() != self.tensors.len() {
            return Err(Error::LengthMismatch {
                what: "tensors",
                expected: self.tensors.len(),
                got: data.len(),
            });
        }
        let mut flat = vec![0.0; self.len];
        for (t, d) in self.tensors.iter().zip(data) {
            if d.len() != t.len {
                return Err(Error::LengthMismatch {
                    what: "tensor data",
                    expected: t.len,
                    got: d.len(),
                });
            }
            flat[t.range()].copy_from_slice(d);
        }
        Ok(flat)
    }
}

/// One parameter group, as in `torch.optim`'s `param_groups`: named tensors and the optimizer
/// hyperparameters they are stepped with.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// The group's optimizer and hyperparameters.
    pub optimizer: Optimizer,
    /// (name, shape) of each tensor.
    pub tensors: Vec<(String, Vec<usize>)>,
}

impl ParamGroup {
    /// An empty group stepped with `optimizer`.
    pub fn new(optimizer: impl Into<Optimizer>) -> Self {
        Self {
            optimizer: optimizer.into(),
            tensors: Vec::new(),
        }
    }

    /// Adds a tensor.
    #[must_use]
    pub fn tensor(mut self, name: &str, shape: &[usize]) -> Self {
        self.tensors.push((name.to_string(), shape.to_vec()));
        self
    }

    /// The usual weight-decay mask: tensors for which `no_decay(name)` holds (biases, norms)
    /// go to a second group with weight decay 0, the rest keep `optimizer`'s. A group that
    /// would be empty is left out.
    pub fn split_weight_decay(
        optimizer: impl Into<Optimizer>,
        tensors: &[(&str, &[usize])],
        no_decay: impl Fn(&str) -> bool,
    ) -> Vec<ParamGroup> {
        let optimizer = optimizer.into();
        let mut decay = ParamGroup::new(optimizer);
        let mut plain = ParamGroup::new(optimizer.with_weight_decay(0.0));
        for (name, shape) in tensors {
            let group = if no_decay(name) {
                &mut plain
            } else {
                &mut decay
            };
            group.tensors.push((name.to_string(), shape.to_vec()));
        }
        [decay, plain]
            .into_iter()
            .filter(|g| !g.tensors.is_empty())
            .collect()
    }

    /// Keeps small and chosen tensors in f32 state, as bitsandbytes does (`min_8bit_size`,
    /// and `GlobalOptimManager.override_config(p, "optim_bits", 32)` for embeddings): in each
    /// group with low-precision state, every tensor smaller than the group's threshold
    /// ([`crate::StatePrecision::min_len`]), or for which `keep_f32(name)` holds, moves to a
    /// companion group with the same hyperparameters and f32 state; the others keep the
    /// group's state type whatever their total (threshold 0). Groups come out in order, each
    /// followed by its companion; an empty one is left out; f32 groups pass unchanged.
    pub fn split_state_precision(
        groups: Vec<ParamGroup>,
        keep_f32: impl Fn(&str) -> bool,
    ) -> Vec<ParamGroup> {
        let mut out = Vec::new();
        for group in groups {
            let precision = group.optimizer.state_precision();
            if precision.dtype == StateDType::F32 {
                out.push(group);
                continue;
            }
            let mut low = ParamGroup::new(group.optimizer.with_state_precision(StatePrecision {
                min_len: 0,
                ..precision
            }));
            let mut full =
                ParamGroup::new(group.optimizer.with_state_precision(StatePrecision::f32()));
            for (name, shape) in group.tensors {
                let len = shape.iter().product::<usize>();
                let target = if len < precision.min_len || keep_f32(&name) {
                    &mut full
                } else {
                    &mut low
                };
                target.tensors.push((name, shape));
            }
            out.extend([low, full].into_iter().filter(|g| !g.tensors.is_empty()));
        }
        out
    }
}

/// Each group's optimizer, first element in the flat vectors, and length.
pub(crate) type GroupRanges = Vec<(Optimizer, usize, usize)>;

/// The alignment (elements) of the layout `with_groups` packs on both backends, so that a GPU
/// optimizer and a CPU one built from the same groups have the same layout (the same int8
/// blocks and the same element numbers for stochastic rounding): 256 bytes or the device's
/// storage offset alignment if larger, in elements of the smaller of the parameters' and
/// gradients' types; and whole int8 blocks (256 elements) when a group keeps int8 state, so
/// that no block spans two tensors.
pub(crate) fn group_alignment(groups: &[ParamGroup], device_align_bytes: u64) -> usize {
    let bytes = device_align_bytes.max(256) as usize;
    let element = groups.first().map_or(4, |g| {
        let o = &g.optimizer;
        o.grad_dtype().bytes().min(o.param_dtype().bytes()) as usize
    });
    let int8 = groups
        .iter()
        .any(|g| g.optimizer.state_precision().dtype == StateDType::Int8);
    let align = bytes / element;
    if int8 {
        align.max(crate::precision::BLOCK)
    } else {
        align
    }
}

/// Groups share one gradient buffer and one parameter buffer: `other` must read gradients and
/// keep parameters of `first`'s types.
pub(crate) fn check_same_dtypes(first: &Optimizer, other: &Optimizer) -> Result<()> {
    if other.grad_dtype() != first.grad_dtype() {
        return Err(Error::GradDTypeMismatch {
            expected: first.grad_dtype().name(),
            got: other.grad_dtype().name(),
        });
    }
    if other.param_dtype() != first.param_dtype() {
        return Err(Error::ParamDTypeMismatch {
            expected: first.param_dtype().name(),
            got: other.param_dtype().name(),
        });
    }
    Ok(())
}

/// Packs parameter groups into one layout: each group's tensors contiguous, each group starting
/// at a multiple of `layout`'s alignment, all groups of one family (as both backends require).
/// Returns the layout and each group's (optimizer, first element, length).
pub(crate) fn pack_groups(
    groups: &[ParamGroup],
    mut layout: ParamLayout,
) -> Result<(ParamLayout, GroupRanges)> {
    let Some(first) = groups.first() else {
        return Err(Error::Empty);
    };
    let family = first.optimizer.kernel();
    let mut ranges = Vec::with_capacity(groups.len());
    for group in groups {
        group.optimizer.validate()?;
        if group.optimizer.kernel() != family {
            return Err(Error::MixedFamilies {
                first: first.optimizer.name(),
                other: group.optimizer.name(),
            });
        }
        check_same_dtypes(&first.optimizer, &group.optimizer)?;
        if group.tensors.is_empty() {
            return Err(Error::Empty);
        }
        let start = layout.len().next_multiple_of(layout.align());
        for (name, shape) in &group.tensors {
            layout.add(name, shape)?;
        }
        ranges.push((group.optimizer, start, layout.len() - start));
    }
    Ok((layout, ranges))
}

/// The tensors of `layout` that lie in `range` (a parameter group's): each one's element range,
/// relative to `range.start`, and shape. What per-tensor rules (LAMB's norms, Adafactor's rows
/// and columns) reduce over. Without a layout, or with none inside, the whole range is one
/// vector.
pub(crate) fn group_tensors(
    layout: Option<&ParamLayout>,
    range: std::ops::Range<usize>,
) -> Vec<(std::ops::Range<usize>, Vec<usize>)> {
    let views = layout.map(|l| l.tensors().iter().map(|t| (t.offset, t.shape.as_slice())));
    tensors_in(views.into_iter().flatten(), range)
}

/// [`group_tensors`] over tensors given as (offset, shape).
pub(crate) fn tensors_in<'a>(
    tensors: impl Iterator<Item = (usize, &'a [usize])>,
    range: std::ops::Range<usize>,
) -> Vec<(std::ops::Range<usize>, Vec<usize>)> {
    let inside: Vec<_> = tensors
        .map(|(offset, shape)| (offset, shape.iter().product::<usize>(), shape))
        .filter(|&(offset, len, _)| offset >= range.start && offset + len <= range.end && len > 0)
        .map(|(offset, len, shape)| {
            (
                offset - range.start..offset + len - range.start,
                shape.to_vec(),
            )
        })
        .collect();
    if inside.is_empty() {
        vec![(0..range.len(), vec![range.len()])]
    } else {
        inside
    }
}
