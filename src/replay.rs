//! Replaying recorded gradients through an optimizer, so that anyone can cross-check the
//! kernels against another framework: initial parameters from a 1-D `.npy`, one gradient row per
//! step from a 2-D `.npy`, the final parameters (and each step's lr) written back as `.npy`.

use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, write_npy};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::schedule::spec::ScheduleSpec;

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Argument(format!("{}: {e}", path.display()))
}

/// Reads a 1-D little-endian f32 `.npy` (the initial parameters).
pub fn read_params(path: &Path) -> Result<Vec<f32>> {
    let a: Array1<f32> =
        read_npy(path).map_err(|e| io_err(path, format!("expected a 1-D float32 .npy ({e})")))?;
    if a.is_empty() {
        return Err(io_err(path, "holds no parameters"));
    }
    Ok(a.to_vec())
}

/// Reads a 2-D f32 `.npy` with one gradient row per step, each `len` long.
pub fn read_grads(path: &Path, len: usize) -> Result<Array2<f32>> {
    let a: Array2<f32> = read_npy(path).map_err(|e| {
        io_err(
            path,
            format!("expected a 2-D float32 .npy, a row per step ({e})"),
        )
    })?;
    if a.ncols() != len {
        return Err(io_err(
            path,
            format!(
                "rows have {} gradients but there are {len} parameters",
                a.ncols()
            ),
        ));
    }
    Ok(a)
}

/// The layout of `len` replayed parameters as one tensor of `shape` (`--shape R,C`), so that
/// rules that see shapes (Adafactor's rows and columns, Muon's matrix) see a matrix: the
/// product of `shape` must be `len`.
pub fn shape_layout(shape: &[usize], len: usize) -> Result<crate::ParamLayout> {
    if shape.iter().product::<usize>() != len {
        return Err(Error::Argument(format!(
            "--shape {shape:?} holds {} elements but there are {len} parameters",
            shape.iter().product::<usize>()
        )));
    }
    let mut layout = crate::ParamLayout::new(4);
    layout.add("params", shape)?;
    Ok(layout)
}

/// Writes a 1-D f32 `.npy`.
pub fn write_f32(path: &Path, data: &[f32]) -> Result<()> {
    write_npy(path, &Array1::from(data.to_vec())).map_err(|e| io_err(path, e))
}

/// Writes a 1-D f64 `.npy`.
pub fn write_f64(path: &Path, data: &[f64]) -> Result<()> {
    write_npy(path, &Array1::from(data.to_vec())).map_err(|e| io_err(path, e))
}

/// Steps `backend` once per row of `grads`, with the learning rate from `schedule` if given
/// (a pure schedule drives it, momentum cycling included; ReduceLROnPlateau follows its
/// metrics), and returns the lr each step used.
pub fn replay(
    backend: &mut dyn Backend,
    grads: &Array2<f32>,
    schedule: Option<&ScheduleSpec>,
) -> Result<Vec<f64>> {
    let steps = grads.nrows() as u64;
    let plateau_rows = match schedule {
        Some(ScheduleSpec::Pure { schedule, lr }) => {
            backend.set_lr(*lr)?;
            backend.set_schedule(Some(schedule.clone()))?;
            None
        }
        Some(spec @ ScheduleSpec::Plateau { .. }) => Some(spec.rows(steps)?),
        None => None,
    };
    let mut lrs = Vec::with_capacity(grads.nrows());
    for (e, row) in grads.rows().into_iter().enumerate() {
        if let Some(rows) = &plateau_rows {
            backend.set_lr(rows[e].lr)?;
        }
        lrs.push(backend.lr()?);
        match row.as_slice() {
            Some(g) => backend.write_grads(g)?,
            None => backend.write_grads(&row.to_vec())?,
        }
        backend.step()?;
    }
    Ok(lrs)
}
