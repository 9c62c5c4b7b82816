use losscape::gpu::shaders::{validate, Shader};

#[test]
fn every_shader_parses_and_validates_with_naga() {
    for shader in Shader::ALL {
        validate(shader).unwrap_or_else(|e| panic!("{e}"));
    }
}
