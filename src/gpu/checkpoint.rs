//! Saving and loading an optimizer as safetensors: the parameters, every group's state tensors
//! (`group{g}.{name}`, PyTorch's state names), and a JSON header in the file's metadata under
//! `wgoptim` with the format, hyperparameters, step counts, base learning rates, schedules and
//! the gradient-control configuration and counters. Loading checks everything before it writes
//! anything: a checkpoint that does not fit leaves the optimizer as it was.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::clip::GradientControl;
use super::compat;
use super::optimizer::GpuOptimizer;
use super::segment::SCALAR_RING;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::schedule::Schedule;
use crate::uniform::ControlBlock;

/// The format written into every checkpoint's header.
pub const FORMAT: &str = "wgoptim-checkpoint/1";

#[derive(Serialize, Deserialize)]
struct GroupHeader {
    optimizer: Optimizer,
    lr: f64,
    offset: usize,
    len: usize,
    schedule: Option<Schedule>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    len: usize,
    steps: u64,
    device_steps: u64,
    skipped: u64,
    gradient_control: Option<GradientControl>,
    groups: Vec<GroupHeader>,
}

fn mismatch(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> Error {
    Error::CheckpointMismatch {
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

impl GpuOptimizer {
    /// The optimizer as safetensors bytes (reads parameters and state back).
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        let control = self.control_block()?;
        let header = Header {
            format: FORMAT.into(),
            len: self.len(),
            steps: self.steps(),
            device_steps: control.map_or(self.steps(), |c| u64::from(c.steps)),
            skipped: control.map_or(0, |c| u64::from(c.skipped)),
            gradient_control: self.gradient_control(),
            groups: (0..self.groups())
                .map(|g| {
                    let p = self.group_progress(g);
                    let range = self.group_range(g).unwrap_or_default();
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
        let mut tensors: Vec<(String, Vec<u8>, usize)> = Vec::new();
        let params = self.read_params()?;
        tensors.push((
            "params".into(),
            bytemuck::cast_slice(&params).to_vec(),
            params.len(),
        ));
        for (g, gh) in header.groups.iter().enumerate() {
            for slot in gh.optimizer.state_layout().slots {
                let data = self.read_group_state(g, slot.name)?;
                tensors.push((
                    format!("group{g}.{}", slot.name),
                    bytemuck::cast_slice(&data).to_vec(),
                    data.len(),
                ));
            }
        }
        let views = tensors
            .iter()
            .map(|(name, bytes, n)| {
                TensorView::new(Dtype::F32, vec![*n], bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Checkpoint(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let json = serde_json::to_string(&header).map_err(|e| Error::Checkpoint(e.to_string()))?;
        let metadata = HashMap::from([("wgoptim".to_string(), json)]);
        safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Checkpoint(e.to_string()))
    }

    /// Writes [`GpuOptimizer::checkpoint`] to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.checkpoint()?;
        std::fs::write(path, bytes)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))
    }

    /// Reads `path` and [`GpuOptimizer::restore`]s it.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
        self.restore(&bytes)
    }

    /// Restores a checkpoint taken of an optimizer of the same structure: same length, same
    /// groups at the same offsets, each of the same family, variant and state. Hyperparameters,
    /// step counts, learning rates, schedules, parameters, state and gradient control come from
    /// the checkpoint. Nothing is written unless all of it fits.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
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
        if header.format != FORMAT {
            return Err(mismatch("format", FORMAT, &header.format));
        }
        if header.len != self.len() {
            return Err(mismatch("parameter count", self.len(), header.len));
        }
        if header.groups.len() != self.groups() {
            return Err(mismatch(
                "number of groups",
                self.groups(),
                header.groups.len(),
            ));
        }
        if let Some(c) = &header.gradient_control {
            c.validate()?;
        }
        for (g, gh) in header.groups.iter().enumerate() {
            let mine = self.group_progress(g).optimizer;
            gh.optimizer.validate()?;
            crate::optim::ensure_lr(gh.lr)?;
            if let Some(s) = &gh.schedule {
                s.validate()?;
            }
            let range = self.group_range(g).unwrap_or_default();
            if (gh.offset, gh.len) != (range.start, range.len()) {
                return Err(mismatch(
                    format!("group {g} range"),
                    format!("{range:?}"),
                    format!("{:?}", gh.offset..gh.offset + gh.len),
                ));
            }
            if gh.optimizer.kernel() != mine.kernel() || gh.optimizer.variant() != mine.variant() {
                return Err(mismatch(
                    format!("group {g} optimizer"),
                    describe(&mine),
                    describe(&gh.optimizer),
                ));
            }
        }
        let tensor = |name: &str, n: usize| -> Result<Vec<f32>> {
            let t = file
                .tensor(name)
                .map_err(|_| mismatch(format!("tensor `{name}`"), "present", "missing"))?;
            if t.dtype() != Dtype::F32 {
                return Err(mismatch(
                    format!("dtype of `{name}`"),
                    "F32",
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
            Ok(bytemuck::pod_collect_to_vec(t.data()))
        };
        let params = tensor("params", self.len())?;
        let mut states = Vec::new();
        for (g, gh) in header.groups.iter().enumerate() {
            for slot in gh.optimizer.state_layout().slots {
                states.push((
                    g,
                    slot.name,
                    tensor(&format!("group{g}.{}", slot.name), gh.len)?,
                ));
            }
        }
        // Everything fits: write.
        self.set_gradient_control(header.gradient_control)?;
        self.write_params(&params)?;
        for (g, name, data) in &states {
            self.write_group_state(*g, name, data)?;
        }
        for (g, gh) in header.groups.into_iter().enumerate() {
            self.restore_group(g, gh.optimizer, gh.lr, gh.schedule, header.steps);
        }
        if header.gradient_control.is_some() {
            let block = ControlBlock {
                steps: header.device_steps as u32,
                skipped: header.skipped as u32,
                ..ControlBlock::NEUTRAL
            };
            self.write_control_block(&block)?;
            // The scalars of every device step count the next steps may use.
            let first =
                (header.device_steps + 1).max((header.steps + 1).saturating_sub(SCALAR_RING - 1));
            self.write_step_scalars(first..=header.steps + 1)?;
        }
        compat::wait(self.context().device())
    }
}

fn describe(o: &Optimizer) -> String {
    format!(
        "{} {:?} with state [{}]",
        o.name(),
        o.variant(),
        o.state_layout().names()
    )
}
