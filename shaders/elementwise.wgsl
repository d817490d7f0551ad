// The element-wise driver (after the family's file): maps invocations to vec4 blocks of the
// chunk and calls the family's `update` on each. Every state module's `store_x` writes in place.

// The kernel's shape (`KernelShape` in src/gpu/kernel.rs), set by the host, never by hand.
// Each invocation updates VECS_PER_INVOCATION vec4 blocks. Contiguous (STRIDED false): its own
// run of consecutive blocks, which CPU drivers (llvmpipe) like. Strided: the workgroup owns
// WORKGROUP_SIZE × VECS_PER_INVOCATION consecutive blocks and invocation `l` takes blocks
// l, l + WORKGROUP_SIZE, …, so adjacent invocations touch adjacent addresses (coalescing on
// GPUs). With one block per invocation (burn's shape) the two coincide.
override WORKGROUP_SIZE: u32 = 256u;
override VECS_PER_INVOCATION: u32 = 2u;
override STRIDED: bool = false;

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
    set_streams();
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
