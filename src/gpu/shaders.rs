//! WGSL sources, embedded at compile time. A shader that uses the shared numerics gets them prepended;
//! a shader with workgroup sums gets one of two reduction preludes: `reduce.wgsl` (workgroup-memory
//! tree, everywhere) or `reduce_subgroups.wgsl` (subgroup operations, for devices with
//! `wgpu::Features::SUBGROUP`; see [`Shader::source_for`]).

/// One WGSL module of `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    Activation,
    Loss,
    Vector,
    Conv,
    Pool,
    Lstm,
    Adam,
    Select,
}

const NUMERICS: &str = include_str!("../../shaders/numerics.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const REDUCE_SUBGROUPS: &str = include_str!("../../shaders/reduce_subgroups.wgsl");

/// The WGSL files of `shaders/` that are preludes prepended to modules, not modules of their own.
pub const PRELUDES: [&str; 3] = ["numerics", "reduce", "reduce_subgroups"];

impl Shader {
    pub const ALL: [Shader; 9] = [
        Shader::Matmul,
        Shader::Activation,
        Shader::Loss,
        Shader::Vector,
        Shader::Conv,
        Shader::Pool,
        Shader::Lstm,
        Shader::Adam,
        Shader::Select,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul",
            Shader::Activation => "activation",
            Shader::Loss => "loss",
            Shader::Vector => "vector",
            Shader::Conv => "conv",
            Shader::Pool => "pool",
            Shader::Lstm => "lstm",
            Shader::Adam => "adam",
            Shader::Select => "select",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Shader::Matmul => include_str!("../../shaders/matmul.wgsl"),
            Shader::Activation => include_str!("../../shaders/activation.wgsl"),
            Shader::Loss => include_str!("../../shaders/loss.wgsl"),
            Shader::Vector => include_str!("../../shaders/vector.wgsl"),
            Shader::Conv => include_str!("../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../shaders/pool.wgsl"),
            Shader::Lstm => include_str!("../../shaders/lstm.wgsl"),
            Shader::Adam => include_str!("../../shaders/adam.wgsl"),
            Shader::Select => include_str!("../../shaders/select.wgsl"),
        }
    }

    fn needs_numerics(self) -> bool {
        matches!(self, Shader::Activation | Shader::Loss)
    }

    /// True for the shaders whose workgroup sums (loss heads; dot and sum) have a subgroup variant.
    pub fn has_subgroup_variant(self) -> bool {
        matches!(self, Shader::Loss | Shader::Vector)
    }

    /// The complete WGSL source of the portable variant (no subgroup operations).
    pub fn source(self) -> String {
        self.source_for(false)
    }

    /// The complete WGSL source handed to the driver. With `subgroups`, a shader that
    /// [has a subgroup variant](Shader::has_subgroup_variant) gets `reduce_subgroups.wgsl` instead of
    /// `reduce.wgsl` (same function names); the other shaders are the same either way. The variant has
    /// no `enable subgroups;` directive: naga 30 rejects it as not yet implemented and accepts the
    /// subgroup builtins without it (wgpu checks them against the device's features).
    pub fn source_for(self, subgroups: bool) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.needs_numerics() {
            parts.push(NUMERICS.to_string());
        }
        if self == Shader::Vector {
            parts.push(lbfgs_constants());
        }
        if self.has_subgroup_variant() {
            parts.push(if subgroups { REDUCE_SUBGROUPS } else { REDUCE }.to_string());
        }
        parts.push(self.body().to_string());
        parts.join("\n")
    }
}

/// The L-BFGS scalar layout and operation codes of `ops` ([`crate::ops::WGSL_CONSTANTS`]) and its
/// guards as WGSL, so that the kernels and the CPU backend share one definition: the cosine threshold
/// as f32 and ρ's ε as the bits of a double-f32 pair (hi + lo).
fn lbfgs_constants() -> String {
    use crate::ops::{MIN_CURVATURE_COSINE, RHO_EPSILON, WGSL_CONSTANTS};
    let hi = RHO_EPSILON as f32;
    let lo = (RHO_EPSILON - hi as f64) as f32;
    let mut lines: Vec<String> = WGSL_CONSTANTS.iter().map(|(name, v)| format!("const {name}: u32 = {v}u;")).collect();
    lines.push(format!("const MIN_CURVATURE_COSINE: f32 = {:?};", MIN_CURVATURE_COSINE as f32));
    lines.push(format!("const RHO_EPSILON_HI: u32 = {}u;", hi.to_bits()));
    lines.push(format!("const RHO_EPSILON_LO: u32 = {}u;", lo.to_bits()));
    lines.join("\n")
}

/// Parses and validates a shader's portable variant with naga, as the driver would; no GPU needed.
pub fn validate(shader: Shader) -> Result<(), String> {
    validate_variant(shader, false)
}

/// Parses and validates a shader's portable (`subgroups` false) or subgroup variant with naga.
pub fn validate_variant(shader: Shader, subgroups: bool) -> Result<(), String> {
    let source = shader.source_for(subgroups);
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| format!("{}.wgsl: {}", shader.name(), e.emit_to_string(&source)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("{}.wgsl: {}", shader.name(), e.emit_to_string(&source)))?;
    Ok(())
}
