// Low-precision state helpers (after common.wgsl). Twins in src/precision.rs.

// PARAM_STREAM_SLOT, BLOCK_VECS and BUCKET_SHIFT are written by the host from
// src/precision.rs (`kernel::lowp_constants`), their one definition.

// The random stream of each state slot and of the parameters (index PARAM_STREAM_SLOT) at this
// step: per-step values, hashed once per invocation by the driver (`set_streams`), not per block.
var<private> streams: vec4<u32>;

// One round of the PCG-RXS-M-XS hash.
fn pcg_hash(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// The per-(step, slot) half of the random bits (`stream`).
fn random_stream(t: u32, slot: u32) -> u32 {
    return pcg_hash(t ^ pcg_hash(slot + 0x9e3779b9u));
}

fn set_streams() {
    let t = step_count();
    streams = vec4<u32>(random_stream(t, 0u), random_stream(t, 1u), random_stream(t, 2u), random_stream(t, 3u));
}

// 32 random bits for element `element` in stream `stream` (`random_bits_in`).
fn random_bits(stream: u32, element: u32) -> u32 {
    return pcg_hash(element ^ stream);
}

// f32 → bf16 bits (`bf16_bits`), per lane of block `i`: nearest-even, or stochastic with 16
// random bits of (element, step, slot). A NaN stays a quiet NaN (tested by bit mask: WGSL may
// assume there are none).
fn bf16_bits(x: vec4<f32>, i: u32, slot: u32, stochastic: bool) -> vec4<u32> {
    let b = bitcast<vec4<u32>>(x);
    var add = 0x7fffu + ((b >> vec4<u32>(16u)) & vec4<u32>(1u));
    if stochastic {
        let e = (chunk.first_vec + i) * 4u;
        let s = streams[slot];
        add = vec4<u32>(
            random_bits(s, e),
            random_bits(s, e + 1u),
            random_bits(s, e + 2u),
            random_bits(s, e + 3u),
        ) & vec4<u32>(0xffffu);
    }
    let nan = (b & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
    return select((b + add) >> vec4<u32>(16u), (b >> vec4<u32>(16u)) | vec4<u32>(0x40u), nan);
}

// Packs four bf16 bit patterns, keeping `old`'s where `lanes` is not set.
fn bf16_pack_keep(old: vec2<u32>, bits: vec4<u32>, lanes: vec4<bool>) -> vec2<u32> {
    let old4 = vec4<u32>(old.x & 0xffffu, old.x >> 16u, old.y & 0xffffu, old.y >> 16u);
    let h = select(old4, bits, lanes);
    return vec2<u32>(h.x | (h.y << 16u), h.z | (h.w << 16u));
}
