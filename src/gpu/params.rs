//! The parameter structs of the kernels. Each `#[repr(C)]` struct a launcher writes to binding 0
//! mirrors the WGSL `struct` of its shader byte for byte: `params!` declares one and records its
//! fields, [`Gpu::dispatch`](super::Gpu::dispatch) takes nothing else, and [`check`] compares them with
//! the WGSL declarations as naga lays them out (names, order, scalar types, byte offsets, size), so that
//! drift fails `tests/shaders.rs` with the struct and the field named. The L-BFGS constants need no
//! check: `vector.wgsl` gets them from `ops` ([`crate::ops::WGSL_CONSTANTS`]).

use super::Shader;

/// A parameter struct as the Rust side declares it.
#[derive(Clone, Debug)]
pub struct ParamsLayout {
    /// The Rust struct.
    pub rust: &'static str,
    pub shader: Shader,
    /// The WGSL struct it mirrors in `shaders/<shader>.wgsl`.
    pub wgsl: &'static str,
    /// Bytes.
    pub size: usize,
    /// Each field's name, byte offset, scalar type and number of scalars (arrays).
    pub fields: Vec<(&'static str, usize, &'static str, usize)>,
}

/// A struct declared with `params!`: a uniform of one shader.
pub trait Params: bytemuck::Pod {
    fn layout() -> ParamsLayout;
}

/// The 4-byte scalar types WGSL and Rust share, and fixed arrays of them (padding).
pub trait Scalars {
    const KIND: &'static str;
    const COUNT: usize;
}

impl Scalars for u32 {
    const KIND: &'static str = "u32";
    const COUNT: usize = 1;
}

impl Scalars for i32 {
    const KIND: &'static str = "i32";
    const COUNT: usize = 1;
}

impl Scalars for f32 {
    const KIND: &'static str = "f32";
    const COUNT: usize = 1;
}

impl<T: Scalars, const N: usize> Scalars for [T; N] {
    const KIND: &'static str = T::KIND;
    const COUNT: usize = N * T::COUNT;
}

/// Declares `struct Name { field: type, ... }` (`#[repr(C)]`, `Pod`) as the uniform of `shader`, whose
/// WGSL declaration is `struct WgslName`: `params!(Shader::X, "WgslName", struct Name { ... })`.
/// Fields are named as in WGSL; padding fields start with `_` (their names need not match).
macro_rules! params {
    ($shader:expr, $wgsl:literal, $(#[$m:meta])* struct $name:ident {
        $($(#[$fm:meta])* $field:ident: $ty:ty,)*
    }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        pub(super) struct $name {
            $($(#[$fm])* $field: $ty,)*
        }

        impl $crate::gpu::params::Params for $name {
            fn layout() -> $crate::gpu::params::ParamsLayout {
                use $crate::gpu::params::Scalars;
                $crate::gpu::params::ParamsLayout {
                    rust: stringify!($name),
                    shader: $shader,
                    wgsl: $wgsl,
                    size: std::mem::size_of::<$name>(),
                    fields: vec![$(
                        (stringify!($field), std::mem::offset_of!($name, $field), <$ty>::KIND, <$ty>::COUNT),
                    )*],
                }
            }
        }
    };
}
pub(super) use params;

/// Every parameter struct of the launchers.
pub fn all() -> Vec<ParamsLayout> {
    use super::{activation, adam, conv, loss, lstm, matmul, pool, select, vector};
    vec![
        matmul::MatmulParams::layout(),
        activation::ElementParams::layout(),
        loss::LossParams::layout(),
        conv::ConvParams::layout(),
        pool::PoolParams::layout(),
        lstm::LstmParams::layout(),
        adam::AdamParams::layout(),
        select::SelectParams::layout(),
        vector::VectorParams::layout(),
    ]
}

/// One 4-byte scalar of a struct: `name` (`name[i]` inside an array or vector), byte offset, type.
struct Word {
    name: String,
    offset: usize,
    kind: &'static str,
}

impl Word {
    fn padding(&self) -> bool {
        self.name.starts_with('_')
    }
    fn describe(&self) -> String {
        format!("`{}: {}` at byte {}", self.name, self.kind, self.offset)
    }
}

/// The words of fields given as (name, offset, type, count, stride).
fn words<'a>(fields: impl Iterator<Item = (&'a str, usize, &'static str, usize, usize)>) -> Vec<Word> {
    let mut out = Vec::new();
    for (name, offset, kind, count, stride) in fields {
        for i in 0..count {
            let name = if count == 1 { name.to_string() } else { format!("{name}[{i}]") };
            out.push(Word { name, offset: offset + i * stride, kind });
        }
    }
    out
}

fn parse(shader: Shader, source: &str) -> Result<naga::Module, String> {
    naga::front::wgsl::parse_str(source).map_err(|e| format!("{}.wgsl: {}", shader.name(), e.emit_to_string(source)))
}

/// A WGSL member's scalar type and count (scalars, vectors and fixed arrays of 4-byte scalars).
fn wgsl_scalars(module: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<(&'static str, usize, usize)> {
    let kind = |s: naga::Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => Some("u32"),
        (naga::ScalarKind::Sint, 4) => Some("i32"),
        (naga::ScalarKind::Float, 4) => Some("f32"),
        _ => None,
    };
    match module.types[ty].inner {
        naga::TypeInner::Scalar(s) => Some((kind(s)?, 1, 4)),
        naga::TypeInner::Vector { size, scalar } => Some((kind(scalar)?, size as usize, 4)),
        naga::TypeInner::Array { base, size: naga::ArraySize::Constant(n), stride } => match module.types[base].inner {
            naga::TypeInner::Scalar(s) => Some((kind(s)?, n.get() as usize, stride as usize)),
            _ => None,
        },
        _ => None,
    }
}

/// Compares a Rust parameter struct with its WGSL struct in `source` (a whole shader): the same fields
/// in the same order with the same names, types and byte offsets, padding (`_` names) for padding, and
/// the same size. The error names both structs and the first field that differs.
pub fn compare(source: &str, layout: &ParamsLayout) -> Result<(), String> {
    let module = parse(layout.shader, source)?;
    let what = format!("{} (struct {} of shaders/{}.wgsl)", layout.rust, layout.wgsl, layout.shader.name());
    let found = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(layout.wgsl));
    let Some((_, naga::Type { inner: naga::TypeInner::Struct { members, span }, .. })) = found else {
        return Err(format!("{what}: no such WGSL struct"));
    };
    let mut wgsl = Vec::new();
    for m in members {
        let name = m.name.as_deref().unwrap_or("?");
        let (kind, count, stride) = wgsl_scalars(&module, m.ty)
            .ok_or_else(|| format!("{what}: WGSL field `{name}` is not made of 4-byte scalars"))?;
        wgsl.push((name, m.offset as usize, kind, count, stride));
    }
    let wgsl = words(wgsl.into_iter());
    let rust = words(layout.fields.iter().map(|&(name, offset, kind, count)| (name, offset, kind, count, 4)));
    for i in 0..rust.len().max(wgsl.len()) {
        match (rust.get(i), wgsl.get(i)) {
            (Some(r), Some(w)) => {
                let same_name = r.name == w.name || (r.padding() && w.padding());
                if !same_name || r.offset != w.offset || r.kind != w.kind {
                    return Err(format!("{what}: field {} in Rust, {} in WGSL", r.describe(), w.describe()));
                }
            }
            (Some(r), None) => return Err(format!("{what}: field {} in Rust only", r.describe())),
            (None, Some(w)) => return Err(format!("{what}: field {} in WGSL only", w.describe())),
            (None, None) => unreachable!(),
        }
    }
    if layout.size != *span as usize {
        return Err(format!("{what}: {} bytes in Rust, {span} in WGSL", layout.size));
    }
    Ok(())
}

/// Checks `shader` (its portable variant): every Rust parameter struct of it against its WGSL struct
/// ([`compare`]), and that its uniform is one of them.
pub fn check(shader: Shader) -> Result<(), String> {
    let source = shader.source();
    let module = parse(shader, &source)?;
    let declared: Vec<ParamsLayout> = all().into_iter().filter(|l| l.shader == shader).collect();
    for (_, var) in module.global_variables.iter().filter(|(_, v)| v.space == naga::AddressSpace::Uniform) {
        let name = module.types[var.ty].name.as_deref().unwrap_or("?");
        if !declared.iter().any(|l| l.wgsl == name) {
            return Err(format!(
                "{}.wgsl: the uniform struct {name} has no Rust parameter struct (declare one with gpu::params::params!)",
                shader.name()
            ));
        }
    }
    declared.iter().try_for_each(|l| compare(&source, l))
}
