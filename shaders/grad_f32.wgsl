// Gradients in f32.
@group(0) @binding($binding) var<storage, read> grad: array<vec4<f32>>;

fn load_grad(i: u32) -> vec4<f32> {
    return grad[i];
}
