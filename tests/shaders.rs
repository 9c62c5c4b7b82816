use losscape::gpu::shaders::{validate, validate_variant, Shader, PRELUDES};

#[test]
fn every_shader_parses_and_validates_with_naga() {
    for shader in Shader::ALL {
        validate(shader).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_wgsl_file_is_a_listed_shader() {
    // the preludes are prepended to modules, not modules of their own
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".wgsl").to_string())
        .filter(|n| !PRELUDES.contains(&n.as_str()))
        .collect();
    files.sort();
    let mut listed: Vec<String> = Shader::ALL.iter().map(|s| s.name().to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn the_subgroup_variants_parse_and_validate_with_naga() {
    let variants: Vec<Shader> = Shader::ALL.into_iter().filter(|s| s.has_subgroup_variant()).collect();
    assert_eq!(variants, [Shader::Loss, Shader::Vector]);
    for shader in variants {
        let source = shader.source_for(true);
        assert!(source.contains("subgroupAdd") && !source.contains("reduce_scratch[lane.index]"), "{shader:?}");
        assert!(shader.source().contains("reduce_scratch[lane.index]") && !shader.source().contains("subgroupAdd"));
        validate_variant(shader, true).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn shaders_without_reductions_are_the_same_in_both_variants() {
    for shader in Shader::ALL.into_iter().filter(|s| !s.has_subgroup_variant()) {
        assert_eq!(shader.source_for(true), shader.source(), "{shader:?}");
    }
}
