//! `wgoptim info`: the adapters wgpu sees, the one chosen, its limits and features.

use std::process::ExitCode;

use wgoptim::GpuContext;
use wgoptim::gpu::list_adapters;

pub fn run() -> wgoptim::Result<ExitCode> {
    for a in list_adapters() {
        println!(
            "adapter: {} ({:?}, {:?}, {} {})",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    let ctx = GpuContext::new()?;
    println!("selected: {}", ctx.describe());
    println!("features enabled: {:?}", ctx.device().features());
    let l = ctx.limits();
    println!(
        "limits: max_buffer_size {} B, max_storage_buffer_binding_size {} B, max_compute_workgroups_per_dimension {}, min_storage_buffer_offset_alignment {} B",
        l.max_buffer_size,
        l.max_storage_buffer_binding_size,
        l.max_compute_workgroups_per_dimension,
        l.min_storage_buffer_offset_alignment
    );
    Ok(ExitCode::SUCCESS)
}
