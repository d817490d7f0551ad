// State slot `$name` in bf16, four elements in two u32, rounded as the slot says
// (stochastic: $stochastic).
@group(0) @binding($binding) var<storage, read_write> $name: array<vec2<u32>>;

fn load_$name(i: u32) -> vec4<f32> {
    return bf16_unpack($name[i]);
}

fn store_$name(i: u32, x: vec4<f32>, lanes: vec4<bool>) {
    $name[i] = bf16_pack_keep($name[i], bf16_bits(x, i, $slotu, $stochastic), lanes);
}

fn finish_$name(i: u32, lanes: vec4<bool>) {}
