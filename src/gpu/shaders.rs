//! WGSL sources, embedded at compile time. A shader that uses the shared numerics gets them prepended.

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

    /// The complete WGSL source handed to the driver.
    pub fn source(self) -> String {
        if self.needs_numerics() {
            format!("{NUMERICS}\n{}", self.body())
        } else if self == Shader::Vector {
            format!("{}\n{}", lbfgs_constants(), self.body())
        } else {
            self.body().to_string()
        }
    }
}

/// The L-BFGS constants of `ops` as WGSL, so that the kernels and the CPU backend share one definition:
/// the cosine threshold as f32 and ρ's ε as the bits of a double-f32 pair (hi + lo).
fn lbfgs_constants() -> String {
    use crate::ops::{MIN_CURVATURE_COSINE, RHO_EPSILON};
    let hi = RHO_EPSILON as f32;
    let lo = (RHO_EPSILON - hi as f64) as f32;
    format!(
        "const MIN_CURVATURE_COSINE: f32 = {:?};\nconst RHO_EPSILON_HI: u32 = {}u;\nconst RHO_EPSILON_LO: u32 = {}u;",
        MIN_CURVATURE_COSINE as f32,
        hi.to_bits(),
        lo.to_bits()
    )
}

/// Parses and validates a shader with naga, as the driver would; no GPU needed.
pub fn validate(shader: Shader) -> Result<(), String> {
    let source = shader.source();
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| format!("{}.wgsl: {}", shader.name(), e.emit_to_string(&source)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("{}.wgsl: {}", shader.name(), e.emit_to_string(&source)))?;
    Ok(())
}
