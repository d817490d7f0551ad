//! Every call whose shape changed across recent wgpu releases, in one place (wgpu 30).

use crate::error::{Error, Result};

/// An instance honouring `WGPU_BACKEND` and the other `WGPU_*` instance variables.
pub fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// All adapters of the instance's backends.
pub fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// The adapter named by `WGPU_ADAPTER_NAME` (a case-insensitive substring), else the default
/// one for `WGPU_POWER_PREF`. Unlike `wgpu::util::initialize_adapter_from_env`, a name that
/// matches nothing is an error, not a panic.
pub fn adapter_from_env(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = name.to_lowercase();
        let all = adapters(instance);
        let seen: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
        return all
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
            .ok_or_else(|| {
                Error::NoAdapter(format!("WGPU_ADAPTER_NAME={name} matches none of {seen:?}"))
            });
    }
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
        ..Default::default()
    };
    pollster::block_on(instance.request_adapter(&options)).map_err(|e| {
        let backend = std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "(all)".into());
        Error::NoAdapter(format!("{e} (WGPU_BACKEND={backend})"))
    })
}

/// A device with exactly `limits`, and timestamp queries (in passes and encoders) where the
/// adapter has them: the benchmarks use them; the kernels need no optional feature.
pub fn request_device(
    adapter: &wgpu::Adapter,
    limits: wgpu::Limits,
) -> Result<(wgpu::Device, wgpu::Queue)> {
    let timestamps =
        wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    let features = if adapter.features().contains(timestamps) {
        timestamps
    } else {
        wgpu::Features::empty()
    };
    let desc = wgpu::DeviceDescriptor {
        label: Some("wgoptim"),
        required_features: features,
        required_limits: limits,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    };
    pollster::block_on(adapter.request_device(&desc))
        .map_err(|e| Error::RequestDevice(e.to_string()))
}

/// Runs `f` inside validation, out-of-memory and internal error scopes and returns the first
/// error any of them caught, so that no wgpu error reaches the panicking default handler.
pub fn scoped<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> Result<T> {
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let out = f();
    let internal = pollster::block_on(internal.pop());
    let memory = pollster::block_on(memory.pop());
    let validation = pollster::block_on(validation.pop());
    match validation.or(memory).or(internal) {
        Some(e) => Err(Error::Wgpu(e.to_string())),
        None => Ok(out),
    }
}

/// A compute pipeline for `entry` with override `constants`.
pub fn compute_pipeline_entry(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    entry: &str,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants,
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    })
}

/// A pipeline layout of one bind group.
pub fn pipeline_layout(
    device: &wgpu::Device,
    label: &str,
    group: &wgpu::BindGroupLayout,
) -> wgpu::PipelineLayout {
    device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(group)],
        immediate_size: 0,
    })
}

/// Blocks until the device has finished all submitted work.
pub fn wait(device: &wgpu::Device) -> Result<()> {
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map(|_| ())
        .map_err(|e| Error::Wgpu(e.to_string()))
}

/// Maps `staging` (MAP_READ) after the copies into it were submitted, and returns its bytes.
pub fn read_mapped(device: &wgpu::Device, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    wait(device)?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::Map(e.to_string())),
        Err(e) => return Err(Error::Map(e.to_string())),
    }
    let bytes = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Map(e.to_string()))?
        .to_vec();
    staging.unmap();
    Ok(bytes)
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic inside it into `None` without printing it: for the one wgpu call
/// known to panic on a caller's bad input (a foreign buffer id, see
/// `buffers::check_same_device`). The process's panic hook is wrapped once so that it stays
/// silent only while this thread is inside `quietly`; every other panic reaches it as before.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static WRAP: std::sync::Once = std::sync::Once::new();
    WRAP.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    out.ok()
}
