use losscape::gpu::shaders::{validate, Shader};

#[test]
fn every_shader_parses_and_validates_with_naga() {
    for shader in Shader::ALL {
        validate(shader).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_wgsl_file_is_a_listed_shader() {
    // numerics.wgsl is a prelude, not a module of its own
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".wgsl").to_string())
        .filter(|n| n != "numerics")
        .collect();
    files.sort();
    let mut listed: Vec<String> = Shader::ALL.iter().map(|s| s.name().to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}
