// The structs the host writes or reads, shared by every kernel. Each has a Rust twin in
// src/uniform.rs; tests/shaders.rs checks sizes and offsets through naga.

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
    // μ: RMSprop's momentum, SGD's Nesterov look-ahead, Muon's momentum.
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
    // The step t (low 32 bits) when the host knows it; 0 when the device's count is used
    // (at_step.t). Seeds stochastic rounding.
    t: u32,
    // NAdam: the gradient term's step γ(1−μₜ)/(1−Πₜ); `lr` is the momentum term's. LAMB:
    // 1/(1−β₁ᵗ), m's bias correction.
    lr2: f32,
    // ASGD: μₜ, the new iterate's weight in the average (1: the average is the iterate).
    average: f32,
    // Rprop: η₋ and η₊, the step sizes' factors, and their bounds. Muon: the first three are
    // its Newton–Schulz coefficients (a, b, c).
    eta_minus: f32,
    eta_plus: f32,
    step_size_min: f32,
    step_size_max: f32,
    // Adafactor ε₂: the floor of RMS(θ) in the step α = max(ε₂, RMS(θ))·ρ.
    eps2: f32,
    // Adafactor d: the update is divided by max(1, RMS(u)/d).
    clip_threshold: f32,
}

// Where this dispatch's chunk ends: `full_vecs` whole vec4 blocks, then `tail_lanes` (0–3)
// elements in one last block (the per-tensor driver: `full_vecs` pieces from `first_partial`,
// and the chunk's index in `tail_lanes`). Written once when the optimizer is built.
struct Chunk {
    full_vecs: u32,
    tail_lanes: u32,
    // norm.wgsl and pieces.wgsl: where this chunk's workgroups write their partial sums.
    first_partial: u32,
    // The chunk's first vec4 block in the flat parameter space: numbers the elements for
    // stochastic rounding.
    first_vec: u32,
}

// Written on the device each step by `norm.wgsl` when gradient clipping or non-finite skipping
// is on; a constant {1, 0, 0, 0, 0} otherwise. Mirrored by `wgoptim::ControlBlock`.
struct Control {
    // Multiplies every gradient: loss-scale unscale × global-norm clip factor (1 when off).
    grad_mul: f32,
    // Non-zero: a gradient was non-finite and skipping is on; nothing is written this step.
    skip: u32,
    // Optimizer steps taken on the device, this one included (skipped steps not counted):
    // low 32 bits. The step-scalar ring's length divides 2^32, so these index it alone.
    steps: u32,
    // Steps skipped so far: low 32 bits.
    skipped: u32,
    // ‖g‖₂ of the last step's (unscaled) gradients, before clipping.
    grad_norm: f32,
    // High 32 bits of `steps` and `skipped` (carried by norm.wgsl's `finish`).
    steps_hi: u32,
    skipped_hi: u32,
    _pad: u32,
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
    // The step t these factors belong to (0 in the entry of ones).
    t: u32,
    // Multiplies lr2: NAdam's (1−μₜ)/(1−Πₜ), LAMB's 1/(1−β₁ᵗ), Adafactor's 1/√t.
    lr2_mul: f32,
    // Multiplies the uniform's decay: ASGD's 1 − λγₜ (its step size depends on t).
    decay_mul: f32,
    // Multiplies the uniform's average: ASGD's μₜ, Adafactor's t^τ.
    average_mul: f32,
    _pad: u32,
}

