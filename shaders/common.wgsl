// Shared by every optimizer kernel: the per-step and per-chunk uniforms, the parameter and
// gradient bindings, and the driver that maps invocations to vec4 blocks of the chunk.
//
// Each family file (sgd.wgsl, rmsprop.wgsl, adam.wgsl, adagrad.wgsl) is appended to this one
// and defines its state bindings (from binding 4 on) and `fn update(i: u32, lanes: vec4<bool>)`,
// which reads element block `i` once, writes it once, and writes only the lanes that are set.

// Per-step scalars, computed in f64 on the host and rounded once to f32. Mirrored by
// `wgoptim::StepUniform` (src/uniform.rs); a test compares sizes and offsets through naga.
struct Step {
    // γ as the kernel applies it: Adam γ/(1−β₁ᵗ), Adagrad γ/(1+(t−1)η), else γ.
    lr: f32,
    // λ of coupled L2 decay, g ← g + λθ (0 for decoupled decay).
    weight_decay: f32,
    // 1 − γλ of decoupled decay, θ ← θ(1 − γλ) (1 when there is none).
    decay: f32,
    // Multiplies the gradient before anything else: −1 when maximizing, else 1.
    grad_scale: f32,
    // ε, added after the square root.
    eps: f32,
    // μ: RMSprop's momentum, SGD's Nesterov look-ahead.
    momentum: f32,
    // SGD momentum buffer b ← buf_keep·b + buf_add·g: (0, 1) on the first step, (μ, 1−τ) after.
    buf_keep: f32,
    buf_add: f32,
    // Adam's β₁, 1−β₁, β₂, 1−β₂ (each 1−β rounded once from f64, as PyTorch does).
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    // RMSprop's α and 1−α.
    alpha: f32,
    one_minus_alpha: f32,
    // Adam's √(1−β₂ᵗ).
    bias_correction2_sqrt: f32,
    _pad: f32,
}

// Where this dispatch's chunk ends: `full_vecs` whole vec4 blocks, then `tail_lanes` (0–3)
// elements in one last block. Written once when the optimizer is built.
struct Chunk {
    full_vecs: u32,
    tail_lanes: u32,
    _pad0: u32,
    _pad1: u32,
}

// Written on the device each step by `norm.wgsl` when gradient clipping or non-finite skipping
// is on; a constant {1, 0, 0, 0} otherwise. Mirrored by `wgoptim::ControlBlock`.
struct Control {
    // Multiplies every gradient: loss-scale unscale × global-norm clip factor (1 when off).
    grad_mul: f32,
    // Non-zero: a gradient was non-finite and skipping is on; nothing is written this step.
    skip: u32,
    // Optimizer steps taken on the device, this one included (skipped steps not counted).
    steps: u32,
    // Steps skipped so far.
    skipped: u32,
}

// Step-dependent scalars, computed in f64 on the host for each step count t and looked up by
// the device's count (the host cannot know which steps the device skips). Without skipping
// there is one entry of ones and the uniform carries the exact values. Mirrored by
// `wgoptim::StepScalars`.
struct StepScalars {
    // Multiplies the learning rate: Adam 1/(1−β₁ᵗ), Adagrad 1/(1+(t−1)η).
    lr_mul: f32,
    // Multiplies Adam's bias correction √(1−β₂ᵗ) of the uniform.
    bias_correction2_sqrt: f32,
    // Non-zero on step 1: SGD's momentum buffer starts as the gradient.
    first: u32,
    _pad: u32,
}

// Set by the host from one Rust constant (src/gpu/kernel.rs), never by hand.
override WORKGROUP_SIZE: u32 = 256u;
override VECS_PER_INVOCATION: u32 = 2u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> control: Control;
@group(0) @binding(9) var<storage, read> scalars: array<StepScalars>;

// This step's scalars, read once per invocation in `main`.
var<private> at_step: StepScalars;

// Writes `updated` where `lanes` is set and keeps `old` elsewhere (the partial last block).
fn keep(old: vec4<f32>, updated: vec4<f32>, lanes: vec4<bool>) -> vec4<f32> {
    return select(old, updated, lanes);
}

// Each invocation owns VECS_PER_INVOCATION contiguous vec4 blocks; workgroups are laid out in
// two dimensions so that a chunk may need more than 65535 of them.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if control.skip != 0u {
        return;
    }
    at_step = scalars[control.steps % arrayLength(&scalars)];
    let invocation = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
    let first = invocation * VECS_PER_INVOCATION;
    let all = vec4<bool>(true);
    if first + VECS_PER_INVOCATION <= chunk.full_vecs {
        // Hot path: whole blocks, no per-block test.
        for (var k = 0u; k < VECS_PER_INVOCATION; k++) {
            update(first + k, all);
        }
        return;
    }
    for (var k = 0u; k < VECS_PER_INVOCATION; k++) {
        let i = first + k;
        if i < chunk.full_vecs {
            update(i, all);
        } else if i == chunk.full_vecs && chunk.tail_lanes != 0u {
            update(i, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(chunk.tail_lanes));
        }
    }
}
