//! Headless device setup: backend and adapter choice, optional features, limits.

use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::counters::{Counters, Counts};
use super::shaders::Shader;
use super::GpuBuffer;

/// Which adapter to open; from the command line, falling back on wgpu's environment variables.
#[derive(Clone, Debug, Default)]
pub struct DeviceChoice {
    /// Backends by name (`vulkan`, `metal`, `dx12`, comma separated); `None` = WGPU_BACKEND or all primary.
    pub backend: Option<String>,
    /// Adapter index (as `losscape info` lists them) or a case-insensitive part of its name;
    /// `None` = WGPU_ADAPTER_NAME or the highest-performance adapter.
    pub adapter: Option<String>,
    /// Bytes an evaluator's scratch tensors may take together (`--gpu-memory`); `None` = the
    /// backend's default (`backend::Device::chunk_budget`).
    pub memory: Option<u64>,
    /// Whether workgroup sums use subgroup operations; `None` = `LOSSCAPE_SUBGROUPS`, else auto.
    pub subgroups: Option<Subgroups>,
}

/// Whether the reductions of the loss heads and of dot and sum use subgroup operations
/// (`shaders/reduce_subgroups.wgsl`) or the portable workgroup-memory tree (`shaders/reduce.wgsl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subgroups {
    /// Subgroups when the device has `wgpu::Features::SUBGROUP` and is not a software rasteriser
    /// (lavapipe offers subgroups, but the tree is as fast there and is the tested default).
    #[default]
    Auto,
    /// Subgroups whenever the device has `wgpu::Features::SUBGROUP` (the tree otherwise).
    On,
    /// Always the portable tree.
    Off,
}

impl Subgroups {
    /// The environment variable that chooses, when the caller does not: `on`, `off` or `auto`.
    pub const ENV: &'static str = "LOSSCAPE_SUBGROUPS";

    /// Parses `on`, `off` or `auto` (also `1`/`true`/`yes`, `0`/`false`/`no`; case-insensitive).
    pub fn parse(text: &str) -> Result<Subgroups> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Subgroups::Auto),
            "on" | "1" | "true" | "yes" => Ok(Subgroups::On),
            "off" | "0" | "false" | "no" => Ok(Subgroups::Off),
            other => bail!("{}={other}: choose on, off or auto", Subgroups::ENV),
        }
    }

    /// `auto`, `on` or `off`, as [`Subgroups::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Subgroups::Auto => "auto",
            Subgroups::On => "on",
            Subgroups::Off => "off",
        }
    }

    /// `LOSSCAPE_SUBGROUPS`, or `Auto` when it is unset.
    pub fn from_env() -> Result<Subgroups> {
        match std::env::var(Subgroups::ENV) {
            Ok(text) => Subgroups::parse(&text),
            Err(_) => Ok(Subgroups::Auto),
        }
    }

    /// Whether a device on this adapter uses the subgroup variant (as `Gpu::open` decides).
    pub fn resolve_for(self, adapter: &AdapterSummary) -> bool {
        let features = if adapter.features.iter().any(|f| f == "SUBGROUP") {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        self.resolve(features, adapter.device_type == "Cpu")
    }

    /// Whether a device with these features and this software flag uses the subgroup variant.
    pub fn resolve(self, features: wgpu::Features, software: bool) -> bool {
        let has = features.contains(wgpu::Features::SUBGROUP);
        match self {
            Subgroups::Auto => has && !software,
            Subgroups::On => has,
            Subgroups::Off => false,
        }
    }
}

/// Facts about the adapter in use, for reports and benchmark records.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub features: Vec<String>,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
}

/// What the memory budget of an adapter (`backend::profiles::adapter_budget`) looks at: an adapter as
/// wgpu describes it.
#[derive(Clone, Copy, Debug)]
pub struct AdapterLimits<'a> {
    /// The adapter's name.
    pub name: &'a str,
    /// A software rasteriser (wgpu's device type `Cpu`).
    pub software: bool,
    /// wgpu's `max_storage_buffer_binding_size`.
    pub max_binding_bytes: u64,
    /// wgpu's `max_buffer_size`.
    pub max_buffer_bytes: u64,
}

impl AdapterSummary {
    /// What the memory budget needs of this adapter.
    pub fn budget_limits(&self) -> AdapterLimits<'_> {
        AdapterLimits {
            name: &self.name,
            software: self.device_type == "Cpu",
            max_binding_bytes: self.max_storage_buffer_binding_size.min(self.max_buffer_size),
            max_buffer_bytes: self.max_buffer_size,
        }
    }
}

/// The optional features losscape asks for when the adapter has them.
pub const OPTIONAL_FEATURES: [(wgpu::Features, &str); 3] = [
    (wgpu::Features::SHADER_F16, "SHADER_F16"),
    (wgpu::Features::SUBGROUP, "SUBGROUP"),
    (wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY"),
];

pub const NO_ADAPTER_HELP: &str = "no GPU adapter found. Use the native CPU backend (`--backend cpu`, \
or `--backend auto`, the default), or install a Vulkan, Metal or DX12 driver; on Linux without a GPU the \
software Vulkan driver is `apt-get install mesa-vulkan-drivers`";

type PipelineKey = (Shader, &'static str, Vec<(&'static str, u64)>);

/// An open device with its queue, a cache of compiled pipelines, and what the adapter offers.
pub struct Gpu {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub summary: AdapterSummary,
    pub(super) features: wgpu::Features,
    pub(super) limits: wgpu::Limits,
    /// A one-element buffer bound where a kernel's binding is unused by the chosen variant.
    pub(super) dummy: GpuBuffer,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    /// Read-back staging buffers by size, reused so that no loop creates buffers after warm-up.
    pub(super) staging: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    pub(super) counters: Counters,
    /// `--gpu-memory`, when given.
    memory: Option<u64>,
    /// Whether the shaders with a subgroup variant are compiled in it (fixed when the device opens).
    subgroups: bool,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
}

fn quiet_drivers() {
    // Mesa's lavapipe prints a conformance warning to stderr at device creation; it is noise for users.
    if std::env::var_os("MESA_VK_IGNORE_CONFORMANCE_WARNING").is_none() {
        // SAFETY: called before any thread that reads the environment is started by us or wgpu.
        unsafe { std::env::set_var("MESA_VK_IGNORE_CONFORMANCE_WARNING", "1") };
    }
}

fn backends(choice: &DeviceChoice) -> Result<wgpu::Backends> {
    // GL is never probed: it is not a compute target here and its probing prints EGL noise.
    let allowed = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let from_text = |text: &str| -> Result<wgpu::Backends> {
        let mut set = wgpu::Backends::empty();
        for part in text.split(',').map(|s| s.trim().to_ascii_lowercase()) {
            set |= match part.as_str() {
                "vulkan" | "vk" => wgpu::Backends::VULKAN,
                "metal" | "mtl" => wgpu::Backends::METAL,
                "dx12" | "d3d12" => wgpu::Backends::DX12,
                "primary" | "all" => allowed,
                "gl" | "gles" | "opengl" => bail!(
                    "backend '{other}' (from --backend, LOSSCAPE_BACKEND or WGPU_BACKEND): OpenGL has no compute \
                     shaders losscape can use; choose cpu, auto, vulkan, metal or dx12 (e.g. unset WGPU_BACKEND)",
                    other = part
                ),
                other => bail!(
                    "unknown backend '{other}' (from --backend, LOSSCAPE_BACKEND or WGPU_BACKEND): choose cpu, auto, \
                     vulkan, metal or dx12"
                ),
            };
        }
        Ok(set)
    };
    match (&choice.backend, std::env::var("WGPU_BACKEND")) {
        (Some(b), _) => from_text(b),
        (None, Ok(b)) => from_text(&b),
        (None, Err(_)) => Ok(allowed),
    }
}

pub(super) fn instance(choice: &DeviceChoice) -> Result<wgpu::Instance> {
    quiet_drivers();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends(choice)?;
    desc.flags = wgpu::InstanceFlags::empty();
    Ok(wgpu::Instance::new(desc))
}

fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let have = adapter.features();
    AdapterSummary {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        features: OPTIONAL_FEATURES.iter().filter(|(f, _)| have.contains(*f)).map(|(_, n)| n.to_string()).collect(),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
    }
}

/// Every adapter the chosen backends offer, in `losscape info` order.
pub fn list_adapters(choice: &DeviceChoice) -> Result<Vec<AdapterSummary>> {
    let instance = instance(choice)?;
    let adapters = pollster::block_on(instance.enumerate_adapters(backends(choice)?));
    Ok(adapters.iter().map(summarize).collect())
}

fn pick_adapter(choice: &DeviceChoice) -> Result<wgpu::Adapter> {
    let instance = instance(choice)?;
    let wanted = choice.adapter.clone().or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
    let adapters = pollster::block_on(instance.enumerate_adapters(backends(choice)?));
    if adapters.is_empty() {
        bail!(NO_ADAPTER_HELP);
    }
    if let Some(wanted) = wanted {
        if let Ok(index) = wanted.parse::<usize>() {
            return adapters
                .into_iter()
                .nth(index)
                .ok_or_else(|| anyhow!("there is no adapter number {index}; `losscape info` lists them"));
        }
        let needle = wanted.to_lowercase();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&needle))
            .ok_or_else(|| anyhow!("no adapter's name contains '{wanted}'; `losscape info` lists them"));
    }
    // Prefer a real GPU over a software rasteriser.
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let mut adapters = adapters;
    adapters.sort_by_key(rank);
    Ok(adapters.remove(0))
}

impl Gpu {
    /// Opens the chosen adapter with all its limits and the optional features it has.
    pub fn open(choice: &DeviceChoice) -> Result<Arc<Gpu>> {
        let wanted_subgroups = match choice.subgroups {
            Some(s) => s,
            None => Subgroups::from_env()?,
        };
        let adapter = pick_adapter(choice)?;
        let summary = summarize(&adapter);
        let features = OPTIONAL_FEATURES
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| adapter.features().contains(*f))
            .fold(wgpu::Features::empty(), |a, f| a | f);
        let limits = adapter.limits();
        let subgroups = wanted_subgroups.resolve(features, summary.device_type == "Cpu");
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("losscape"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| anyhow!("could not open a device on adapter '{}': {e}", summary.name))?;
        let dummy = GpuBuffer {
            buffer: Arc::new(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("unused binding"),
                size: 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })),
            len: 1,
        };
        Ok(Arc::new(Gpu {
            dummy,
            device,
            queue,
            summary,
            features,
            limits,
            modules: Mutex::new(HashMap::new()),
            staging: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            memory: choice.memory,
            subgroups,
            pipelines: Mutex::new(HashMap::new()),
        }))
    }

    /// What the device has been asked to do since it was opened.
    pub fn counts(&self) -> Counts {
        self.counters.snapshot()
    }

    /// Bytes one evaluator's scratch tensors may take together, when `--gpu-memory` gave them.
    pub fn memory_option(&self) -> Option<u64> {
        self.memory
    }

    /// True on a software rasteriser (lavapipe, WARP, SwiftShader), which wgpu reports as type `Cpu`.
    pub fn is_software(&self) -> bool {
        self.summary.device_type == "Cpu"
    }

    /// True when the loss heads and dot and sum reduce with subgroup operations ([`Subgroups`]).
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// True when the device was opened with GPU timestamp queries.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// What the memory budget needs of this adapter.
    pub fn budget_limits(&self) -> AdapterLimits<'_> {
        self.summary.budget_limits()
    }

    /// The largest buffer the shaders may bind, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// A compute pipeline, compiled once per (shader, entry point, override constants) and cached.
    pub(super) fn pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> Arc<wgpu::ComputePipeline> {
        let key: PipelineKey = (shader, entry, constants.iter().map(|(n, v)| (*n, v.to_bits())).collect());
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let mut modules = self.modules.lock().unwrap();
        let module = modules.entry(shader).or_insert_with(|| {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name()),
                source: wgpu::ShaderSource::Wgsl(shader.source_for(self.subgroups).into()),
            })
        });
        let pipeline = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        }));
        drop(modules);
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        pipeline
    }
}
