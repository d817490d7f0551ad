// State slot `$name` in f32, updated in place.
@group(0) @binding($binding) var<storage, read_write> $name: array<vec4<f32>>;

fn load_$name(i: u32) -> vec4<f32> {
    return $name[i];
}

fn store_$name(i: u32, x: vec4<f32>, lanes: vec4<bool>) {
    $name[i] = keep($name[i], x, lanes);
}

fn finish_$name(i: u32, lanes: vec4<bool>) {}
