// The global gradient norm and the non-finite check, on the device, before the update passes
// of a step (src/gpu/clip.rs). `partial` runs once per binding-sized chunk of the flat gradient
// buffer; `finish` (one workgroup) turns the partial sums into the control block the update
// kernels read: no readback, no host wait.
//
//   ĝ = g / S                      (S: loss scale; the unscale of GradScaler)
//   n = ‖ĝ‖₂ over every group ;  c = min(1, max_norm / (n + 1e-6)) when clipping, else 1
//   skip = some ĝ is NaN or ±∞, when skipping is on
//   control.grad_mul = (1/S)·c ; the step counter moves unless skipped

// Written by the host when the configuration or the loss scale changes. Mirrored by
// `wgoptim::gpu::clip::NormUniform`.
struct NormConfig {
    // 1/S.
    unscale: f32,
    // Clip threshold; ≤ 0 means no clipping.
    max_norm: f32,
    // Non-zero: a non-finite gradient skips the step.
    skip_nonfinite: u32,
    // Partial sums `finish` adds up.
    partials: u32,
}

const WORKGROUP: u32 = 256u;
// Contiguous vec4 blocks each invocation of `partial` sums; set by the host from
// `clip::NORM_SHAPE`, which also sizes the dispatch.
override VECS_PER_INVOCATION: u32 = 8u;

@group(0) @binding(0) var<uniform> cfg: NormConfig;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Binding 2, the gradients: grad_f32.wgsl or grad_half.wgsl (`load_grad`), as the update reads them.
// (sum of squares, count of non-finite blocks) per workgroup.
@group(0) @binding(3) var<storage, read_write> partials: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> control: Control;

var<workgroup> sums: array<vec2<f32>, WORKGROUP>;

// Whether a lane is NaN or ±∞: all exponent bits set (WGSL has no isnan).
fn non_finite(x: vec4<f32>) -> vec4<bool> {
    let exponent = bitcast<vec4<u32>>(x) & vec4<u32>(0x7f800000u);
    return exponent == vec4<u32>(0x7f800000u);
}

fn reduce(local: u32) {
    for (var half = WORKGROUP / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if local < half {
            sums[local] = sums[local] + sums[local + half];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WORKGROUP)
fn partial(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let group = wg.y * groups.x + wg.x;
    let first = (group * WORKGROUP + local) * VECS_PER_INVOCATION;
    var acc = vec2<f32>(0.0);
    for (var k = 0u; k < VECS_PER_INVOCATION; k++) {
        let i = first + k;
        var lanes = vec4<bool>(true);
        if i == chunk.full_vecs && chunk.tail_lanes != 0u {
            lanes = vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(chunk.tail_lanes);
        } else if i >= chunk.full_vecs {
            break;
        }
        let g = select(vec4<f32>(0.0), load_grad(i) * cfg.unscale, lanes);
        acc += vec2<f32>(dot(g, g), select(0.0, 1.0, any(non_finite(g))));
    }
    sums[local] = acc;
    reduce(local);
    if local == 0u {
        partials[chunk.first_partial + group] = sums[0];
    }
}

@compute @workgroup_size(WORKGROUP)
fn finish(@builtin(local_invocation_index) local: u32) {
    var acc = vec2<f32>(0.0);
    for (var i = local; i < cfg.partials; i += WORKGROUP) {
        acc += partials[i];
    }
    sums[local] = acc;
    reduce(local);
    if local == 0u {
        let norm = sqrt(sums[0].x);
        var clip = 1.0;
        if cfg.max_norm > 0.0 {
            clip = min(1.0, cfg.max_norm / (norm + 1e-6));
        }
        let skip = sums[0].y > 0.0 && cfg.skip_nonfinite != 0u;
        control.grad_mul = cfg.unscale * clip;
        control.grad_norm = norm;
        control.skip = select(0u, 1u, skip);
        if skip {
            control.skipped += 1u;
            if control.skipped == 0u {
                control.skipped_hi += 1u;
            }
        } else {
            control.steps += 1u;
            if control.steps == 0u {
                control.steps_hi += 1u;
            }
        }
    }
}
