//! Where a demo's optimizers run, chosen at run time: the WGSL kernels on a [`GpuContext`] or
//! their f32 twins on a [`CpuContext`]. Both step bit for bit alike, so a demo's numbers do not
//! depend on the choice, only its speed does.

use crate::backend::Backend;
use crate::cpu::{CpuContext, CpuOptimizer};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuOptimizer};
use crate::layout::ParamLayout;
use crate::optim::Optimizer;

/// A context that builds optimizers of either backend behind [`Backend`].
pub trait Engine: Send + Sync {
    /// An optimizer over `layout`'s tensors, parameters zero
    /// (`GpuOptimizer::with_layout` / `CpuOptimizer::with_layout`).
    fn with_layout(
        &self,
        optimizer: Optimizer,
        layout: ParamLayout,
    ) -> Result<Box<dyn Backend + Send>>;

    /// An optimizer over one flat tensor holding a copy of `params`.
    fn with_params(&self, optimizer: Optimizer, params: &[f32]) -> Result<Box<dyn Backend + Send>>;

    /// What it runs on, for a page or a log: the adapter's name, or the CPU's threads.
    fn describe(&self) -> String;
}

impl Engine for GpuContext {
    fn with_layout(
        &self,
        optimizer: Optimizer,
        layout: ParamLayout,
    ) -> Result<Box<dyn Backend + Send>> {
        Ok(Box::new(GpuOptimizer::with_layout(
            self, optimizer, layout,
        )?))
    }

    fn with_params(&self, optimizer: Optimizer, params: &[f32]) -> Result<Box<dyn Backend + Send>> {
        Ok(Box::new(GpuOptimizer::with_params(
            self, optimizer, params,
        )?))
    }

    fn describe(&self) -> String {
        let info = self.adapter_info();
        format!("GPU: {} ({:?})", info.name, info.backend)
    }
}

impl Engine for CpuContext {
    fn with_layout(
        &self,
        optimizer: Optimizer,
        layout: ParamLayout,
    ) -> Result<Box<dyn Backend + Send>> {
        Ok(Box::new(CpuOptimizer::with_layout(
            self, optimizer, layout,
        )?))
    }

    fn with_params(&self, optimizer: Optimizer, params: &[f32]) -> Result<Box<dyn Backend + Send>> {
        Ok(Box::new(CpuOptimizer::with_params(
            self, optimizer, params,
        )?))
    }

    fn describe(&self) -> String {
        format!("CPU: the kernels' f32 twins on {} threads", self.threads())
    }
}
