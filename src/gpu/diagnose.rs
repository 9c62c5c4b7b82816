//! Why wgpu lists no adapter: `losscape info` says what is missing (the Vulkan loader, a driver's ICD
//! file) and what wgpu itself answered, with the fix for each.

use std::path::{Path, PathBuf};

use super::context::{instance, DeviceChoice};

/// Where NVIDIA's container toolkit and some bare-metal installs put the driver's Vulkan ICD file,
/// outside the loader's standard search path.
pub const NVIDIA_ICD: &str = "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json";

/// One finding: what was checked, whether it is fine, and what to do when not.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// What was checked ("Vulkan loader", "Vulkan ICD files", "wgpu").
    pub check: String,
    /// Whether it is in order.
    pub ok: bool,
    /// What was found, and the fix when it is not in order.
    pub detail: String,
}

/// The directories the Vulkan loader reads ICD files from on Linux (Vulkan-Loader's
/// `LoaderDriverInterface.md`): the XDG config and data directories, /etc and /usr/local/share and
/// /usr/share, and the user's own.
pub fn standard_icd_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let split = |var: &str, default: &str| -> Vec<PathBuf> {
        let v = std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string());
        v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect()
    };
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".config/vulkan/icd.d"));
    }
    dirs.extend(split("XDG_CONFIG_DIRS", "/etc/xdg").into_iter().map(|d| d.join("vulkan/icd.d")));
    dirs.push(PathBuf::from("/etc/vulkan/icd.d"));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/share/vulkan/icd.d"));
    }
    dirs.extend(split("XDG_DATA_DIRS", "/usr/local/share:/usr/share").into_iter().map(|d| d.join("vulkan/icd.d")));
    for d in ["/usr/local/share/vulkan/icd.d", "/usr/share/vulkan/icd.d"] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    dirs
}

/// The `.json` files in `dirs`.
fn icd_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in dirs {
        if let Ok(entries) = std::fs::read_dir(d) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            found.extend(files);
        }
    }
    found
}

/// Whether the Vulkan loader library loads, with the loader's error when not.
#[cfg(target_os = "linux")]
fn loader() -> Finding {
    // SAFETY: loading the system Vulkan loader runs its initialisers, as wgpu itself does at startup.
    match unsafe { libloading::Library::new("libvulkan.so.1") } {
        Ok(_) => Finding { check: "Vulkan loader".into(), ok: true, detail: "libvulkan.so.1 loads".into() },
        Err(e) => Finding {
            check: "Vulkan loader".into(),
            ok: false,
            detail: format!(
                "libvulkan.so.1 does not load ({e}); `ldconfig -p | grep libvulkan` should list it: install the \
                 loader (Debian/Ubuntu: apt-get install libvulkan1) or add its directory to LD_LIBRARY_PATH"
            ),
        },
    }
}

/// What is checked on Linux: the loader and the ICD files; elsewhere only wgpu's answer.
pub fn diagnose(choice: &DeviceChoice) -> Vec<Finding> {
    let mut findings = Vec::new();
    #[cfg(target_os = "linux")]
    {
        findings.push(loader());
        let named: Vec<PathBuf> = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
            .iter()
            .filter_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .flat_map(|s| s.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect::<Vec<_>>())
            .collect();
        let nvidia = Path::new(NVIDIA_ICD);
        let hint = if nvidia.is_file() && !named.iter().any(|p| p == nvidia) {
            format!("; NVIDIA's driver file is at {NVIDIA_ICD}: export VK_ICD_FILENAMES={NVIDIA_ICD}")
        } else {
            String::new()
        };
        if named.is_empty() {
            let dirs = standard_icd_dirs();
            let files = icd_files(&dirs);
            let listed = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
            findings.push(Finding {
                check: "Vulkan ICD files".into(),
                ok: !files.is_empty(),
                detail: if files.is_empty() {
                    format!(
                        "no driver .json in {}: install the GPU's Vulkan driver (NVIDIA: the driver's Vulkan \
                         part; software: apt-get install mesa-vulkan-drivers){hint}",
                        listed(&dirs)
                    )
                } else {
                    format!("{}{hint}", listed(&files))
                },
            });
        } else {
            let missing: Vec<String> = named.iter().filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
            findings.push(Finding {
                check: "Vulkan ICD files (VK_ICD_FILENAMES / VK_DRIVER_FILES)".into(),
                ok: missing.is_empty(),
                detail: if missing.is_empty() {
                    "every named file exists".into()
                } else {
                    format!("named but missing: {}{hint}", missing.join(", "))
                },
            });
        }
    }
    let answer = match instance(choice) {
        Ok(instance) => match pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())) {
            Ok(a) => format!("request_adapter found '{}'", a.get_info().name),
            Err(e) => format!("request_adapter: {e}"),
        },
        Err(e) => format!("{e:#}"),
    };
    findings.push(Finding { check: "wgpu".into(), ok: false, detail: answer });
    findings
}
