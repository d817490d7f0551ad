//! `wgoptim playground`: the optimizer playground in the browser.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use wgoptim::demo::Engine;
use wgoptim::playground::Playground;
use wgoptim::{CpuContext, GpuContext, wgpu};

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Where the optimizers run: the WGSL kernels on the GPU, or their f32 twins on the CPU
    /// backend (the same steps, bit for bit). `auto`: the GPU unless wgpu's adapter is a CPU
    /// (lavapipe), where a round trip per step of a 2-parameter path costs more than the step.
    #[arg(long, value_enum, default_value_t = PlaygroundDevice::Auto)]
    device: PlaygroundDevice,
    /// CPU threads with `--device cpu` (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// `--device`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PlaygroundDevice {
    /// The GPU if wgpu finds one that is not a CPU adapter, else the CPU backend.
    Auto,
    /// The WGSL kernels on wgpu's adapter (whatever it is).
    Gpu,
    /// The kernels' f32 twins on the CPU backend.
    Cpu,
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let cpu = || -> wgoptim::Result<Arc<dyn Engine>> {
        Ok(Arc::new(CpuContext::with_threads(args.threads)?))
    };
    let engine: Arc<dyn Engine> = match args.device {
        PlaygroundDevice::Gpu => Arc::new(GpuContext::new()?),
        PlaygroundDevice::Cpu => cpu()?,
        PlaygroundDevice::Auto => match GpuContext::new() {
            Ok(gpu) if gpu.adapter_info().device_type != wgpu::DeviceType::Cpu => Arc::new(gpu),
            _ => cpu()?,
        },
    };
    let server = Playground::bind(args.port, engine.clone())?;
    println!("wgoptim playground: {}", server.url());
    println!("optimizers run on {}; Ctrl-C stops", engine.describe());
    // The address goes out before the first request is served (scripts wait for it).
    let _ = std::io::stdout().flush();
    server.run();
    Ok(ExitCode::SUCCESS)
}
