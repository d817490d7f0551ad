// Gradients in $dtype, four per vec2<u32>, widened to f32 exactly.
@group(0) @binding($binding) var<storage, read> grad: array<vec2<u32>>;

fn load_grad(i: u32) -> vec4<f32> {
    return $unpack(grad[i]);
}
