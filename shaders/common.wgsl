// Shared by every optimizer kernel (after types.wgsl): the bindings every family has, and the
// driver that maps invocations to vec4 blocks of the chunk.
//
// Each family file (sgd.wgsl, rmsprop.wgsl, adam.wgsl, adagrad.wgsl) is appended to this one
// and defines its state bindings (from binding 4 on) and `fn update(i: u32, lanes: vec4<bool>)`,
// which reads element block `i` once, writes it once, and writes only the lanes that are set.

// The kernel's shape (`KernelShape` in src/gpu/kernel.rs), set by the host, never by hand.
// Each invocation updates VECS_PER_INVOCATION vec4 blocks. Contiguous (STRIDED false): its own
// run of consecutive blocks, which CPU drivers (llvmpipe) like. Strided: the workgroup owns
// WORKGROUP_SIZE × VECS_PER_INVOCATION consecutive blocks and invocation `l` takes blocks
// l, l + WORKGROUP_SIZE, …, so adjacent invocations touch adjacent addresses (coalescing on
// GPUs). With one block per invocation (burn's shape) the two coincide.
override WORKGROUP_SIZE: u32 = 256u;
override VECS_PER_INVOCATION: u32 = 2u;
override STRIDED: bool = false;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;
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

// Workgroups are laid out in two dimensions so that a chunk may need more than 65535 of them.
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
    grad_factor = step.grad_scale * control.grad_mul;
    let workgroup = wg.y * groups.x + wg.x;
    var first = (workgroup * WORKGROUP_SIZE + local) * VECS_PER_INVOCATION;
    var stride = 1u;
    if STRIDED {
        first = workgroup * WORKGROUP_SIZE * VECS_PER_INVOCATION + local;
        stride = WORKGROUP_SIZE;
    }
    let all = vec4<bool>(true);
    if first + (VECS_PER_INVOCATION - 1u) * stride < chunk.full_vecs {
        // Hot path: whole blocks, no per-block test.
        for (var k = 0u; k < VECS_PER_INVOCATION; k++) {
            update(first + k * stride, all);
        }
        return;
    }
    for (var k = 0u; k < VECS_PER_INVOCATION; k++) {
        let i = first + k * stride;
        if i < chunk.full_vecs {
            update(i, all);
        } else if i == chunk.full_vecs && chunk.tail_lanes != 0u {
            update(i, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(chunk.tail_lanes));
        }
    }
}
