// Parameters in bf16, four per vec2<u32>, written back with stochastic rounding.
@group(0) @binding(2) var<storage, read_write> param: array<vec2<u32>>;

fn load_param(i: u32) -> vec4<f32> {
    return bf16_unpack(param[i]);
}

fn store_param(i: u32, old: vec4<f32>, x: vec4<f32>, lanes: vec4<bool>) {
    param[i] = bf16_pack_keep(param[i], bf16_bits(x, i, PARAM_STREAM_SLOT, true), lanes);
}
