// The block-wise driver for int8 state (after the family's file): one vec4 block per
// invocation, 256 invocations, so a workgroup holds WG_BLOCKS quantization blocks of
// BLOCK_VECS vec4 blocks (256 elements) each. Chunks start on block boundaries.
//   1. zero the block maxima;
//   2. `update` each vec4 block: dequantize with the old absmax, update in f32, step the
//      parameter from the unrounded state, fold |state| into its block's maximum;
//   3. barrier; `finish_states`: requantize each state by nearest code with the new absmax.
// Twin: `precision.rs` and the block loop of `src/cpu/lowp.rs`.

const WG_BLOCKS: u32 = 4u;
const STATE_SLOTS: u32 = 3u;

// Signed values, unsigned values, signed midpoints, unsigned midpoints (4 × 256 f32 as bits),
// then 8192 bucket words (`precision::code_tables`). Read in place: a copy into workgroup
// memory cost one load and store per element and measured 5–10% slower on lavapipe.
@group(0) @binding(10) var<storage, read> code_tables: array<u32>;
const BUCKETS: u32 = 1024u;
// The bits of max |x| per (state slot, block of the workgroup): for non-negative floats the
// order of the bits is the order of the values, so an integer atomicMax reduces them.
var<workgroup> block_max: array<atomic<u32>, 12>;
// This invocation's block within the workgroup.
var<private> block: u32;

fn table(k: u32) -> f32 {
    return bitcast<f32>(code_tables[k]);
}

fn decode_codes(codes: u32, map: u32) -> vec4<f32> {
    let base = map * 256u;
    return vec4<f32>(
        table(base + (codes & 255u)),
        table(base + ((codes >> 8u) & 255u)),
        table(base + ((codes >> 16u) & 255u)),
        table(base + (codes >> 24u)),
    );
}

// The nearest code of `x` in map `map`: the number of midpoints ≤ x (`DynamicMap::code`): the
// codes of the smallest and largest float of x's bucket (its top 13 bits), then a scan. NaN
// (tested by bit mask): 0.
fn nearest_code(x: f32, map: u32) -> u32 {
    let bits = bitcast<u32>(x);
    if (bits & 0x7fffffffu) > 0x7f800000u {
        return 0u;
    }
    let bucket = code_tables[BUCKETS + (bits >> BUCKET_SHIFT)] >> (16u * map);
    let mids = 512u + map * 256u;
    var c = bucket & 255u;
    let last = (bucket >> 8u) & 255u;
    while c < last && table(mids + c) <= x {
        c += 1u;
    }
    return c;
}

// Requantizes `x` with the block's `absmax` into `old`'s bytes where `lanes` is set.
fn encode_codes(old: u32, x: vec4<f32>, absmax: f32, map: u32, lanes: vec4<bool>) -> u32 {
    let divisor = select(absmax, 1.0, absmax == 0.0);
    let y = x / divisor;
    var codes = old;
    for (var k = 0u; k < 4u; k++) {
        if lanes[k] {
            codes = insertBits(codes, nearest_code(y[k], map), 8u * k, 8u);
        }
    }
    return codes;
}

fn fold_block_max(slot: u32, x: vec4<f32>, lanes: vec4<bool>) {
    let bits = select(vec4<u32>(0u), bitcast<vec4<u32>>(abs(x)), lanes);
    atomicMax(&block_max[slot * WG_BLOCKS + block], max(max(bits.x, bits.y), max(bits.z, bits.w)));
}

fn block_absmax(slot: u32) -> f32 {
    return bitcast<f32>(atomicLoad(&block_max[slot * WG_BLOCKS + block]));
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    if local < STATE_SLOTS * WG_BLOCKS {
        atomicStore(&block_max[local], 0u);
    }
    workgroupBarrier();
    at_step = scalars[control.steps % arrayLength(&scalars)];
    grad_factor = step.grad_scale * control.grad_mul;
    set_streams();
    block = local / BLOCK_VECS;
    let i = (wg.y * groups.x + wg.x) * 256u + local;
    var lanes = vec4<bool>(i < chunk.full_vecs);
    if i == chunk.full_vecs {
        lanes = vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(chunk.tail_lanes);
    }
    let working = control.skip == 0u && any(lanes);
    if working {
        update(i, lanes);
    }
    workgroupBarrier();
    if working {
        finish_states(i, lanes);
    }
}
