// f32 master parameters, and the bf16 model copy (binding 7) the same store writes, rounded to
// nearest-even.
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> model: array<vec2<u32>>;

fn load_param(i: u32) -> vec4<f32> {
    return param[i];
}

fn store_param(i: u32, old: vec4<f32>, x: vec4<f32>, lanes: vec4<bool>) {
    param[i] = keep(old, x, lanes);
    model[i] = bf16_pack_keep(model[i], bf16_bits(x, i, PARAM_STREAM_SLOT, false), lanes);
}
