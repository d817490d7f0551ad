//! Shader checks that need no GPU: every family and every variant parses, validates and
//! compiles to SPIR-V through naga after its override constants are applied, and the Rust
//! uniform structs match their WGSL twins member for member.

use std::mem::{offset_of, size_of};

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgoptim::gpu::kernel::{KernelKey, KernelShape, pipeline_constants, shader_source};
use wgoptim::verify;
use wgoptim::{ChunkUniform, ControlBlock, Kernel, StateDType, StepScalars, StepUniform};

fn parse(key: KernelKey) -> naga::Module {
    naga::front::wgsl::parse_str(&shader_source(key))
        .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&shader_source(key))))
}

fn validate(key: KernelKey, module: &naga::Module) -> naga::valid::ModuleInfo {
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(module)
        .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&shader_source(key))))
}

/// Every kernel a variant of `verify` runs: each family with f32 state, and with bf16 and
/// int8 state for each set of slots its variants use.
fn keys() -> Vec<KernelKey> {
    let mut keys: Vec<KernelKey> = Vec::new();
    let all = verify::variants()
        .into_iter()
        .map(|(_, o)| o)
        .chain(verify::lowp_variants().into_iter().map(|(_, o)| o));
    for optimizer in all {
        let key = KernelKey::of(&optimizer);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Every combination of a family's variant flags.
fn all_variants(kernel: Kernel) -> Vec<Vec<bool>> {
    let n = kernel.variant_constants().len();
    (0..1u32 << n)
        .map(|bits| (0..n).map(|i| bits >> i & 1 == 1).collect())
        .collect()
}

#[test]
fn every_shader_and_variant_validates_and_compiles() {
    let keys = keys();
    for dtype in StateDType::ALL {
        // The per-tensor driver (LAMB) keeps f32 state only.
        for kernel in Kernel::ALL
            .into_iter()
            .filter(|k| !k.per_tensor() || dtype == StateDType::F32)
        {
            assert!(
                keys.iter().any(|k| k.kernel == kernel && k.dtype == dtype),
                "{kernel:?} with {dtype:?} state is not covered"
            );
        }
    }
    for key in keys {
        let kernel = key.kernel;
        let module = parse(key);
        let info = validate(key, &module);
        let declared: Vec<&str> = module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.as_deref())
            .collect();
        for name in kernel.variant_constants() {
            assert!(
                declared.contains(name),
                "{}: override {name} not declared",
                kernel.name()
            );
        }
        let entries: Vec<&str> = kernel.passes().iter().map(|p| p.0).collect();
        for ((variant, shape), &entry) in all_variants(kernel)
            .into_iter()
            .flat_map(|v| [1, 2].map(|s| (v.clone(), KernelShape::for_state_tensors(s))))
            .flat_map(|vs| entries.iter().map(move |e| (vs.clone(), e)))
        {
            let mut constants = naga::back::PipelineConstants::default();
            for (name, value) in pipeline_constants(key, &variant, shape) {
                constants.insert(name.to_string(), value);
            }
            let (resolved, resolved_info) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((naga::ShaderStage::Compute, entry)),
                &constants,
            )
            .unwrap_or_else(|e| panic!("{key:?} {variant:?} {shape:?}: {e}"));
            let spv = naga::back::spv::write_vec(
                &resolved,
                &resolved_info,
                &naga::back::spv::Options::default(),
                Some(&naga::back::spv::PipelineOptions {
                    shader_stage: naga::ShaderStage::Compute,
                    entry_point: entry.into(),
                }),
            )
            .unwrap_or_else(|e| panic!("{key:?} {variant:?}: {e}"));
            assert!(!spv.is_empty());
        }
    }
}

#[test]
fn every_kernel_declares_its_state_bindings() {
    for key in keys() {
        let module = parse(key);
        let mut bindings: Vec<u32> = module
            .global_variables
            .iter()
            .filter_map(|(_, v)| v.binding.as_ref().map(|b| b.binding))
            .collect();
        bindings.sort_unstable();
        let mut expected: Vec<u32> = (0..4 + key.kernel.state_bindings() as u32).collect();
        if key.params == wgoptim::ParamDType::Bf16Master {
            expected.push(7); // the bf16 model copy
        }
        expected.extend([8, 9]); // control block, step scalars
        if key.blockwise() {
            expected.push(10); // code tables
            expected.extend((0..3).filter(|&k| key.used[k]).map(|k| 11 + k as u32));
        }
        if key.per_tensor() {
            expected.extend([10, 11]); // piece tables, sums
        }
        if key.kernel == wgoptim::Kernel::Muon {
            expected.push(12); // scratch space
        }
        assert_eq!(bindings, expected, "{key:?}");
    }
}

/// (name, offset) of each member of the WGSL struct named `name`, and its size.
fn wgsl_struct(name: &str) -> (Vec<(String, u32)>, u32) {
    let module = parse(KernelKey::of(&wgoptim::Adam::default().into()));
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name)
            && let naga::TypeInner::Struct { members, span } = &ty.inner
        {
            let members = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                .collect();
            return (members, *span);
        }
    }
    panic!("no struct {name} in common.wgsl");
}

macro_rules! rust_layout {
    ($ty:ty; $($field:ident),* $(,)?) => {
        (vec![$((stringify!($field).to_string(), offset_of!($ty, $field) as u32)),*], size_of::<$ty>() as u32)
    };
}

#[test]
fn step_uniform_matches_wgsl() {
    let rust = rust_layout!(StepUniform; lr, weight_decay, decay, grad_scale, eps, momentum, buf_keep, buf_add,
        beta1, one_minus_beta1, beta2, one_minus_beta2, alpha, one_minus_alpha, bias_correction2_sqrt, t,
        lr2, average, eta_minus, eta_plus, step_size_min, step_size_max, eps2, clip_threshold);
    assert_eq!(rust, wgsl_struct("Step"));
}

#[test]
fn chunk_uniform_matches_wgsl() {
    let rust = rust_layout!(ChunkUniform; full_vecs, tail_lanes, first_partial, first_vec);
    assert_eq!(rust, wgsl_struct("Chunk"));
}

#[test]
fn control_block_matches_wgsl() {
    let rust = rust_layout!(ControlBlock; grad_mul, skip, steps, skipped, grad_norm, steps_hi, skipped_hi, _pad);
    assert_eq!(rust, wgsl_struct("Control"));
}

#[test]
fn step_scalars_match_wgsl() {
    let rust = rust_layout!(StepScalars; lr_mul, bias_correction2_sqrt, first, t, lr2_mul, decay_mul,
        average_mul, _pad);
    assert_eq!(rust, wgsl_struct("StepScalars"));
}
