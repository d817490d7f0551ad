// Parameters in f32, updated in place.
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;

fn load_param(i: u32) -> vec4<f32> {
    return param[i];
}

// `old` is what `load_param(i)` returned.
fn store_param(i: u32, old: vec4<f32>, x: vec4<f32>, lanes: vec4<bool>) {
    param[i] = keep(old, x, lanes);
}
