//! Shader checks that need no GPU: every family and every variant parses, validates and
//! compiles to SPIR-V through naga after its override constants are applied, and the Rust
//! uniform structs match their WGSL twins member for member.

use std::mem::{offset_of, size_of};

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgoptim::gpu::kernel::{KernelShape, pipeline_constants, shader_source};
use wgoptim::{ChunkUniform, ControlBlock, Kernel, StepScalars, StepUniform};

fn parse(kernel: Kernel) -> naga::Module {
    naga::front::wgsl::parse_str(&shader_source(kernel)).unwrap_or_else(|e| {
        panic!(
            "{}: {}",
            kernel.name(),
            e.emit_to_string(&shader_source(kernel))
        )
    })
}

fn validate(kernel: Kernel, module: &naga::Module) -> naga::valid::ModuleInfo {
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(module)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {}",
                kernel.name(),
                e.emit_to_string(&shader_source(kernel))
            )
        })
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
    for kernel in Kernel::ALL {
        let module = parse(kernel);
        let info = validate(kernel, &module);
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
        for (variant, shape) in all_variants(kernel)
            .into_iter()
            .flat_map(|v| [1, 2].map(|s| (v.clone(), KernelShape::for_state_tensors(s))))
        {
            let mut constants = naga::back::PipelineConstants::default();
            for (name, value) in pipeline_constants(kernel, &variant, shape) {
                constants.insert(name.to_string(), value);
            }
            let (resolved, resolved_info) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((naga::ShaderStage::Compute, "main")),
                &constants,
            )
            .unwrap_or_else(|e| panic!("{} {variant:?} {shape:?}: {e}", kernel.name()));
            let spv = naga::back::spv::write_vec(
                &resolved,
                &resolved_info,
                &naga::back::spv::Options::default(),
                Some(&naga::back::spv::PipelineOptions {
                    shader_stage: naga::ShaderStage::Compute,
                    entry_point: "main".into(),
                }),
            )
            .unwrap_or_else(|e| panic!("{} {variant:?}: {e}", kernel.name()));
            assert!(!spv.is_empty());
        }
    }
}

#[test]
fn every_family_declares_its_state_bindings() {
    for kernel in Kernel::ALL {
        let module = parse(kernel);
        let mut bindings: Vec<u32> = module
            .global_variables
            .iter()
            .filter_map(|(_, v)| v.binding.as_ref().map(|b| b.binding))
            .collect();
        bindings.sort_unstable();
        let mut expected: Vec<u32> = (0..4 + kernel.state_bindings() as u32).collect();
        expected.extend([8, 9]); // control block, step scalars
        assert_eq!(bindings, expected, "{}", kernel.name());
    }
}

/// (name, offset) of each member of the WGSL struct named `name`, and its size.
fn wgsl_struct(name: &str) -> (Vec<(String, u32)>, u32) {
    let module = parse(Kernel::Adam);
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
        beta1, one_minus_beta1, beta2, one_minus_beta2, alpha, one_minus_alpha, bias_correction2_sqrt, _pad);
    assert_eq!(rust, wgsl_struct("Step"));
}

#[test]
fn chunk_uniform_matches_wgsl() {
    let rust = rust_layout!(ChunkUniform; full_vecs, tail_lanes, first_partial, _pad);
    assert_eq!(rust, wgsl_struct("Chunk"));
}

#[test]
fn control_block_matches_wgsl() {
    let rust = rust_layout!(ControlBlock; grad_mul, skip, steps, skipped, grad_norm, steps_hi, skipped_hi, _pad);
    assert_eq!(rust, wgsl_struct("Control"));
}

#[test]
fn step_scalars_match_wgsl() {
    let rust = rust_layout!(StepScalars; lr_mul, bias_correction2_sqrt, first, _pad);
    assert_eq!(rust, wgsl_struct("StepScalars"));
}
