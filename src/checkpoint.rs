//! Saving and loading an optimizer, on either backend, as safetensors: the parameters, every group's state tensors
//! (`group{g}.{name}`, PyTorch's state names) in their stored type (F32; BF16 bit patterns;
//! int8 as U8 codes with `group{g}.{name}.absmax`, one F32 per 256-element block), and a JSON
//! header in the file's metadata under
//! `wgoptim` with the format, hyperparameters, step counts, base learning rates, schedules and
//! the gradient-control configuration and counters. Loading checks everything before it writes
//! anything: a checkpoint that does not fit leaves the optimizer as it was.
//!
//! The two backends write the same file for the same optimizer, so a checkpoint of one loads
//! into the other and the next steps agree bit for bit (`tests/checkpoint.rs`).

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, MAX_STEPS, Progress};
use crate::control::GradientControl;
use crate::error::{Error, Result};
use crate::optim::{Optimizer, StateDType};
use crate::precision::{BLOCK, StoredState};
use crate::schedule::Schedule;
use crate::uniform::ControlBlock;

/// The format written into every checkpoint's header. Version 3 added low-precision state;
/// version 2 checkpoints (all f32) still load.
pub const FORMAT: &str = "wgoptim-checkpoint/3";

/// Formats `restore` reads.
const READABLE: [&str; 2] = ["wgoptim-checkpoint/2", FORMAT];

/// What a backend gives the checkpoint code: its groups, their state in stored form, and the
/// gradient control's configuration and counters.
pub(crate) trait Stored: Backend {
    fn group_progress(&self, g: usize) -> &Progress;
    fn write_group_state_stored(
        &mut self,
        g: usize,
        name: &str,
        stored: &StoredState,
    ) -> Result<()>;
    /// The control block (read back on the GPU), when gradient control is on.
    fn control_block(&self) -> Result<Option<ControlBlock>>;
    /// After a restore with gradient control on: the device's counters are `block`'s at host
    /// step count `host`.
    fn restore_counters(&mut self, block: &ControlBlock, host: u64) -> Result<()>;
    fn group_progress_mut(&mut self, g: usize) -> &mut Progress;
    /// Waits for the restore's writes to land.
    fn finish_restore(&self) -> Result<()>;
}

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct GroupHeader {
    pub(crate) optimizer: Optimizer,
    pub(crate) lr: f64,
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) schedule: Option<Schedule>,
}

/// One tensor of the layout, as recorded in the header.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
pub(crate) struct TensorRecord {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) offset: usize,
}

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Header {
    pub(crate) format: String,
    pub(crate) len: usize,
    /// The layout's tensors (empty for an optimizer over one flat vector).
    pub(crate) tensors: Vec<TensorRecord>,
    pub(crate) steps: u64,
    pub(crate) device_steps: u64,
    pub(crate) skipped: u64,
    pub(crate) gradient_control: Option<GradientControl>,
    pub(crate) groups: Vec<GroupHeader>,
}

/// A checkpoint's contents: checked on their own by [`Parts::parse`] (format, counts,
/// hyperparameters, every tensor present with its dtype and shape), not yet against an
/// optimizer.
pub(crate) struct Parts {
    pub(crate) header: Header,
    pub(crate) params: Vec<f32>,
    /// Per group, one stored state per slot of its optimizer's state layout, in slot order.
    pub(crate) states: Vec<Vec<StoredState>>,
}

pub(crate) fn mismatch(
    what: impl Into<String>,
    expected: impl ToString,
    found: impl ToString,
) -> Error {
    Error::CheckpointMismatch {
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn tensor_records(b: &impl Stored) -> Vec<TensorRecord> {
    b.layout().map_or_else(Vec::new, layout_records)
}

/// A layout's tensors as a checkpoint header records them.
pub(crate) fn layout_records(layout: &crate::layout::ParamLayout) -> Vec<TensorRecord> {
    layout
        .tensors()
        .iter()
        .map(|t| TensorRecord {
            name: t.name.clone(),
            shape: t.shape.clone(),
            offset: t.offset,
        })
        .collect()
}

pub(crate) fn checkpoint(b: &impl Stored) -> Result<Vec<u8>> {
    let control = b.control_block()?;
    let header = Header {
        format: FORMAT.into(),
        len: b.len(),
        steps: b.steps(),
        device_steps: control.map_or(b.steps(), |c| c.steps64()),
        skipped: control.map_or(0, |c| c.skipped64()),
        tensors: tensor_records(b),
        gradient_control: b.gradient_control(),
        groups: (0..b.groups())
            .map(|g| {
                let p = b.group_progress(g);
                let range = b.group_range(g).unwrap_or_default();
                GroupHeader {
                    optimizer: p.optimizer,
                    lr: p.lr,
                    offset: range.start,
                    len: range.len(),
                    schedule: p.schedule.clone(),
                }
            })
            .collect(),
    };
    let params = b.read_params()?;
    let states = (0..header.groups.len())
        .map(|g| {
            let slots = header.groups[g].optimizer.state_layout().slots;
            slots
                .iter()
                .map(|slot| b.read_group_state_stored(g, slot.name))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    Parts {
        header,
        params,
        states,
    }
    .serialize()
}

impl Parts {
    /// The safetensors file of these contents.
    pub(crate) fn serialize(&self) -> Result<Vec<u8>> {
        self.serialize_with(&[])
    }

    /// The metadata entry `key` of a checkpoint file, if it has one.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn metadata(bytes: &[u8], key: &str) -> Result<Option<String>> {
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::Checkpoint(format!("unreadable header ({e})")))?;
        Ok(metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(key).cloned()))
    }

    /// The safetensors file of these contents with more metadata entries beside `wgoptim`.
    pub(crate) fn serialize_with(&self, extra: &[(&str, String)]) -> Result<Vec<u8>> {
        let params = &self.params;
        let mut tensors: Vec<(String, Dtype, Vec<u8>, usize)> = vec![(
            "params".into(),
            Dtype::F32,
            bytemuck::cast_slice(params).to_vec(),
            params.len(),
        )];
        for (g, gh) in self.header.groups.iter().enumerate() {
            for (slot, stored) in gh
                .optimizer
                .state_layout()
                .slots
                .iter()
                .zip(&self.states[g])
            {
                let name = format!("group{g}.{}", slot.name);
                let n = stored.len();
                let (data, absmax) = stored.to_bytes();
                match stored {
                    StoredState::Int8 { absmax: a, .. } => {
                        tensors.push((name.clone(), Dtype::U8, data, n));
                        tensors.push((format!("{name}.absmax"), Dtype::F32, absmax, a.len()));
                    }
                    StoredState::Bf16(_) => tensors.push((name, Dtype::BF16, data, n)),
                    _ => tensors.push((name, Dtype::F32, data, n)),
                }
            }
        }
        let views = tensors
            .iter()
            .map(|(name, dtype, bytes, n)| {
                TensorView::new(*dtype, vec![*n], bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Checkpoint(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let json =
            serde_json::to_string(&self.header).map_err(|e| Error::Checkpoint(e.to_string()))?;
        let mut metadata = HashMap::from([("wgoptim".to_string(), json)]);
        metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Checkpoint(e.to_string()))
    }

    /// Reads and checks a checkpoint file on its own.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Checkpoint(format!("not a safetensors file ({e})")))?;
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::Checkpoint(format!("unreadable header ({e})")))?;
        let json = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("wgoptim"))
            .ok_or_else(|| {
                Error::Checkpoint("no `wgoptim` header: not a wgoptim checkpoint".into())
            })?;
        let header: Header = serde_json::from_str(json)
            .map_err(|e| Error::Checkpoint(format!("bad header ({e})")))?;
        if !READABLE.contains(&header.format.as_str()) {
            return Err(mismatch("format", READABLE.join(" or "), &header.format));
        }
        check_counts(&header)?;
        if let Some(c) = &header.gradient_control {
            c.validate()?;
        }
        for gh in &header.groups {
            gh.optimizer.validate()?;
            crate::optim::ensure_lr(gh.lr)?;
            if let Some(s) = &gh.schedule {
                s.validate()?;
            }
        }
        // The raw bytes of tensor `name`, checked to be `n` elements of `dtype`.
        let tensor = |name: &str, dtype: Dtype, n: usize| -> Result<&[u8]> {
            let t = file
                .tensor(name)
                .map_err(|_| mismatch(format!("tensor `{name}`"), "present", "missing"))?;
            if t.dtype() != dtype {
                return Err(mismatch(
                    format!("dtype of `{name}`"),
                    format!("{dtype:?}"),
                    format!("{:?}", t.dtype()),
                ));
            }
            if t.shape() != [n] {
                return Err(mismatch(
                    format!("shape of `{name}`"),
                    format!("[{n}]"),
                    format!("{:?}", t.shape()),
                ));
            }
            Ok(t.data())
        };
        let params = bytemuck::pod_collect_to_vec(tensor("params", Dtype::F32, header.len)?);
        let mut states = Vec::new();
        for (g, gh) in header.groups.iter().enumerate() {
            let records = header
                .tensors
                .iter()
                .map(|t| (t.offset, t.shape.as_slice()));
            let tensors = crate::layout::tensors_in(records, gh.offset..gh.offset + gh.len);
            let n = gh.optimizer.state_len(gh.len, &tensors);
            let mut group = Vec::new();
            for slot in gh.optimizer.state_layout().slots {
                let name = format!("group{g}.{}", slot.name);
                group.push(match slot.dtype {
                    StateDType::F32 => {
                        StoredState::from_bytes(slot.dtype, n, tensor(&name, Dtype::F32, n)?, &[])
                    }
                    StateDType::Bf16 => {
                        StoredState::from_bytes(slot.dtype, n, tensor(&name, Dtype::BF16, n)?, &[])
                    }
                    StateDType::Int8 => StoredState::from_bytes(
                        slot.dtype,
                        n,
                        tensor(&name, Dtype::U8, n)?,
                        tensor(&format!("{name}.absmax"), Dtype::F32, n.div_ceil(BLOCK))?,
                    ),
                });
            }
            states.push(group);
        }
        Ok(Parts {
            header,
            params,
            states,
        })
    }
}

pub(crate) fn restore(b: &mut impl Stored, bytes: &[u8]) -> Result<()> {
    let Parts {
        header,
        params,
        states,
    } = Parts::parse(bytes)?;
    if header.len != b.len() {
        return Err(mismatch("parameter count", b.len(), header.len));
    }
    let mine = tensor_records(b);
    if header.tensors != mine {
        let show = |t: &[TensorRecord]| {
            let names: Vec<String> = t
                .iter()
                .map(|t| format!("{}{:?}@{}", t.name, t.shape, t.offset))
                .collect();
            if names.is_empty() {
                "one flat vector (no layout)".to_string()
            } else {
                names.join(", ")
            }
        };
        return Err(mismatch(
            "tensor layout",
            show(&mine),
            show(&header.tensors),
        ));
    }
    if header.groups.len() != b.groups() {
        return Err(mismatch(
            "number of groups",
            b.groups(),
            header.groups.len(),
        ));
    }
    for (g, gh) in header.groups.iter().enumerate() {
        let mine = b.group_progress(g).optimizer;
        let range = b.group_range(g).unwrap_or_default();
        if (gh.offset, gh.len) != (range.start, range.len()) {
            return Err(mismatch(
                format!("group {g} range"),
                format!("{range:?}"),
                format!("{:?}", gh.offset..gh.offset + gh.len),
            ));
        }
        if gh.optimizer.name() != mine.name()
            || gh.optimizer.kernel() != mine.kernel()
            || gh.optimizer.variant() != mine.variant()
        {
            return Err(mismatch(
                format!("group {g} optimizer"),
                describe(&mine),
                describe(&gh.optimizer),
            ));
        }
        for (what, theirs, ours) in [
            (
                "gradient dtype",
                gh.optimizer.grad_dtype().name(),
                mine.grad_dtype().name(),
            ),
            (
                "parameter dtype",
                gh.optimizer.param_dtype().name(),
                mine.param_dtype().name(),
            ),
        ] {
            if theirs != ours {
                return Err(mismatch(format!("group {g} {what}"), ours, theirs));
            }
        }
        let (theirs, ours) = (gh.optimizer.state_layout(), mine.state_layout());
        if theirs.dtype() != ours.dtype() {
            return Err(mismatch(
                format!("group {g} state dtype"),
                ours.dtype().name(),
                theirs.dtype().name(),
            ));
        }
    }
    // Everything fits: write.
    b.set_gradient_control(header.gradient_control)?;
    b.write_params(&params)?;
    for (g, group) in states.iter().enumerate() {
        let slots = header.groups[g].optimizer.state_layout().slots;
        for (slot, stored) in slots.iter().zip(group) {
            b.write_group_state_stored(g, slot.name, stored)?;
        }
    }
    for (g, gh) in header.groups.into_iter().enumerate() {
        // The variant is the same (checked above): hyperparameters, base lr, schedule and step
        // count come from the checkpoint.
        let p = b.group_progress_mut(g);
        p.optimizer = gh.optimizer;
        p.lr = gh.lr;
        p.schedule = gh.schedule;
        p.steps = header.steps;
    }
    if header.gradient_control.is_some() {
        let block = ControlBlock::with_counts(header.device_steps, header.skipped);
        b.restore_counters(&block, header.steps)?;
    }
    b.finish_restore()
}

/// The step counters must be ones an optimizer can have reached: at most [`MAX_STEPS`], and
/// (with gradient control) the device's steps plus the skipped ones are the host's.
fn check_counts(h: &Header) -> Result<()> {
    if h.steps > MAX_STEPS {
        return Err(Error::Checkpoint(format!(
            "steps = {} is past the largest step count, {MAX_STEPS}",
            h.steps
        )));
    }
    let consistent = match h.gradient_control {
        Some(_) => h.device_steps.checked_add(h.skipped) == Some(h.steps),
        None => h.device_steps == h.steps && h.skipped == 0,
    };
    if !consistent {
        return Err(Error::Checkpoint(format!(
            "inconsistent step counts: steps = {}, device_steps = {}, skipped = {}",
            h.steps, h.device_steps, h.skipped
        )));
    }
    Ok(())
}

fn describe(o: &Optimizer) -> String {
    let layout = o.state_layout();
    format!(
        "{} {:?} with {} state [{}]",
        o.name(),
        o.variant(),
        layout.dtype().name(),
        layout.names()
    )
}
