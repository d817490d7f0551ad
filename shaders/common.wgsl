// Shared by every optimizer kernel (after types.wgsl): the bindings every family has.
//
// A kernel is assembled by the host (src/gpu/kernel.rs) from: types.wgsl, this file,
// half.wgsl, the parameter module (param_f32.wgsl, param_master.wgsl or param_bf16.wgsl), the
// gradient module (grad_f32.wgsl or grad_half.wgsl), lowp.wgsl, one state module per state slot (state_f32.wgsl, state_bf16.wgsl or
// state_int8.wgsl, instantiated with the slot's name and binding), the family's file (sgd.wgsl,
// adam.wgsl, …: one per `Kernel`), and a driver: elementwise.wgsl, or blockwise.wgsl for
// int8 state. The family defines `fn update(i: u32, lanes: vec4<bool>)`, which reads element
// block `i` once, writes it once, and writes only the lanes that are set; it reads and writes
// a state slot `x` only through `load_x(i)` and `store_x(i, value, lanes)`, whatever its type.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Binding 2, the parameters (and 7, a bf16 model copy): param_*.wgsl (`load_param`,
// `store_param`).
// Binding 3, the gradients: grad_f32.wgsl or grad_half.wgsl (`load_grad`).
@group(0) @binding(8) var<storage, read> control: Control;
@group(0) @binding(9) var<storage, read> scalars: array<StepScalars>;

// This step's scalars and gradient factor (grad_scale × control.grad_mul), read once per
// invocation in `main`: storage reads are costly per block on some drivers (llvmpipe).
var<private> at_step: StepScalars;
var<private> grad_factor: f32;

// Writes `updated` where `lanes` is set and keeps `old` elsewhere (the partial last block).
fn keep(old: vec4<f32>, updated: vec4<f32>, lanes: vec4<bool>) -> vec4<f32> {
    return select(old, updated, lanes);
}

// The step t as the uniform or the device's count has it (one of the two is 0).
fn step_count() -> u32 {
    return step.t + at_step.t;
}

// max(x, lo) as torch's clamp_(min=lo) has it: a NaN x stays NaN.
fn at_least(x: f32, lo: f32) -> f32 {
    return select(x, lo, x < lo);
}

// torch's lerp: a + w(b − a) for w < 0.5, else b − (b − a)(1 − w).
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w < 0.5 {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}
