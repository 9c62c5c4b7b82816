use losscape::gpu::params::{all, check, compare};
use losscape::gpu::shaders::{validate, validate_variant, Shader, PRELUDES};
use losscape::ops::{LbfgsScalars, Reduced, WGSL_CONSTANTS};

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

#[test]
fn every_parameter_struct_matches_its_wgsl_struct() {
    for shader in Shader::ALL {
        check(shader).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(all().len(), 9, "one parameter struct per uniform (matmul, activation, loss, conv, ...)");
}

#[test]
fn the_check_names_the_struct_and_the_field_that_drift() {
    let loss = all().into_iter().find(|l| l.rust == "LossParams").unwrap();
    let source = Shader::Loss.source();
    let edit = |from: &str, to: &str| {
        assert!(source.contains(from), "{from}");
        source.replacen(from, to, 1)
    };
    // two fields swapped on one side
    let swapped =
        edit("    images: u32,       // images in this chunk\n    width: u32,", "    width: u32,\n    images: u32,");
    let e = compare(&swapped, &loss).unwrap_err();
    assert!(e.contains("LossParams (struct Params of shaders/loss.wgsl)"), "{e}");
    assert!(e.contains("`images: u32` at byte 0 in Rust, `width: u32` at byte 0 in WGSL"), "{e}");
    // a field added
    let e = compare(&edit("    img_bs: u32, ", "    img_bs: u32, extra: u32, "), &loss).unwrap_err();
    assert!(e.contains("`extra: u32` at byte 32 in WGSL only"), "{e}");
}

#[test]
fn the_vector_shader_gets_the_lbfgs_constants_from_ops() {
    let source = Shader::Vector.source();
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    for (name, value) in WGSL_CONSTANTS {
        let c = module.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name));
        let (_, c) = c.unwrap_or_else(|| panic!("vector.wgsl has no constant {name}"));
        let init = &module.global_expressions[c.init];
        assert!(matches!(init, naga::Expression::Literal(naga::Literal::U32(v)) if *v == value), "{name}: {init:?}");
    }
    // the codes the launcher sends are the ones the kernel switches on
    let code = |name: &str| WGSL_CONSTANTS.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(Reduced::Reset.code().0, code("OP_RESET"));
    assert_eq!(Reduced::Store(LbfgsScalars::COEF).code(), (code("OP_STORE"), code("COEF")));
}
