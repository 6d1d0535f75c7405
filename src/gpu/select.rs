//! Which adapter to open: by name (`--adapter`, FORGE_ADAPTER), else by the GPU a scheduler granted
//! (`CUDA_VISIBLE_DEVICES`, `ROCR_VISIBLE_DEVICES`), else the highest rank.
//!
//! Schedulers (Ray, Slurm, Kubernetes device plugins) tell a process which GPU is its own through
//! `CUDA_VISIBLE_DEVICES` (NVIDIA) or `ROCR_VISIBLE_DEVICES` (AMD). Vulkan drivers do not read
//! these variables: every GPU of the machine stays visible to Vulkan. So we read them ourselves and
//! take the first listed entry:
//! - an index `k`: the k-th GPU (discrete, integrated or virtual; not GL, not software) in PCI bus
//!   order, the order `nvidia-smi` and `CUDA_DEVICE_ORDER=PCI_BUS_ID` use, which is how schedulers
//!   number GPUs. One physical GPU seen through several APIs counts once.
//! - empty, `-1` or `NoDevFiles` (no GPU granted, as Ray sets for an actor without GPUs): a
//!   software adapter only (lavapipe), never a GPU that belongs to another process.
//! - a UUID (`GPU-...`, `MIG-...`): Vulkan does not give us UUIDs to match, so the choice falls back
//!   to the rank, and the reason says so. In a container the runtime (NVIDIA_VISIBLE_DEVICES)
//!   usually exposes only the granted GPU, so the rank picks it.

use crate::error::{Error, ErrorKind, Result};

/// Discrete GPU first, then integrated, then virtual, then software; Vulkan/Metal/DX12 before GL.
pub fn rank(info: &wgpu::AdapterInfo) -> u32 {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 40,
        wgpu::DeviceType::IntegratedGpu => 30,
        wgpu::DeviceType::VirtualGpu => 20,
        wgpu::DeviceType::Cpu => 10,
        wgpu::DeviceType::Other => 5,
    };
    let be = if info.backend == wgpu::Backend::Gl { 0 } else { 1 };
    ty * 2 + be
}

/// A CPU implementation of the API (lavapipe, llvmpipe GL, WARP, SwiftShader).
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu || info.name.to_lowercase().contains("llvmpipe")
}

fn is_gpu(info: &wgpu::AdapterInfo) -> bool {
    use wgpu::DeviceType::*;
    matches!(info.device_type, DiscreteGpu | IntegratedGpu | VirtualGpu)
        && info.backend != wgpu::Backend::Gl
        && !is_software(info)
}

/// The scheduler's grant: the variable's name and value (`CUDA_VISIBLE_DEVICES`, else
/// `ROCR_VISIBLE_DEVICES`), when one is set.
pub fn visible_from_env() -> Option<(String, String)> {
    ["CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
}

/// Whether a scheduler's `CUDA_VISIBLE_DEVICES` / `ROCR_VISIBLE_DEVICES` value grants no GPU: empty,
/// `-1` or `NoDevFiles` as its first entry.
pub fn grants_no_gpu(value: &str) -> bool {
    let entry = value.split(',').next().unwrap_or("").trim();
    entry.is_empty() || entry == "-1" || entry.eq_ignore_ascii_case("NoDevFiles")
}

/// The index into `infos` of the adapter to open, and why, in words. `name` is `--adapter`'s text
/// (case-insensitive substring; it wins over `visible`).
pub fn choose(
    infos: &[wgpu::AdapterInfo],
    name: Option<&str>,
    visible: Option<&(String, String)>,
) -> Result<(usize, String)> {
    let best_of = |keep: &dyn Fn(&wgpu::AdapterInfo) -> bool| {
        (0..infos.len()).filter(|&i| keep(&infos[i])).fold(None, |b: Option<usize>, i| match b {
            Some(b) if rank(&infos[b]) >= rank(&infos[i]) => Some(b),
            _ => Some(i),
        })
    };
    let found = || infos.iter().map(|i| format!("'{}' ({:?})", i.name, i.backend)).collect::<Vec<_>>().join(", ");
    if let Some(f) = name.map(str::to_lowercase) {
        let Some(i) = best_of(&|a| a.name.to_lowercase().contains(f.as_str())) else {
            let msg = format!("no adapter name contains '{f}'; found: {}", found());
            return Err(Error::new(ErrorKind::NoDevice, msg));
        };
        return Ok((
            i,
            format!("first match for --adapter '{f}' by rank (discrete > integrated > virtual > software)"),
        ));
    }
    let by_rank = |why: String| {
        let i = best_of(&|_| true).ok_or_else(|| Error::new(ErrorKind::NoDevice, "no adapter found"))?;
        Ok((i, why))
    };
    let Some((var, value)) = visible else {
        let why = if infos.len() == 1 {
            "the only adapter found".to_string()
        } else {
            "highest rank: discrete > integrated > virtual > software, native API before GL".to_string()
        };
        return by_rank(why);
    };
    let entry = value.split(',').next().unwrap_or("").trim();
    if grants_no_gpu(value) {
        let Some(i) = best_of(&is_software) else {
            let msg = format!(
                "{var}='{value}' grants this process no GPU, and there is no software adapter (lavapipe: \
                 apt-get install mesa-vulkan-drivers) to run on instead; found: {}",
                found()
            );
            return Err(Error::new(ErrorKind::NoDevice, msg));
        };
        return Ok((i, format!("{var}='{value}' grants no GPU: a software adapter")));
    }
    let Ok(k) = entry.parse::<usize>() else {
        return by_rank(format!(
            "{var}='{value}' names a GPU by UUID, which Vulkan does not let us match: highest rank instead"
        ));
    };
    // One entry per physical GPU, in PCI bus order (an empty bus id sorts last, by name).
    let mut gpus: Vec<usize> = (0..infos.len()).filter(|&i| is_gpu(&infos[i])).collect();
    gpus.sort_by(|&a, &b| {
        let key = |i: usize| {
            (infos[i].device_pci_bus_id.is_empty(), infos[i].device_pci_bus_id.clone(), infos[i].name.clone())
        };
        key(a).cmp(&key(b)).then(rank(&infos[b]).cmp(&rank(&infos[a])))
    });
    gpus.dedup_by(|b, a| {
        let (x, y) = (&infos[*a], &infos[*b]);
        if x.device_pci_bus_id.is_empty() {
            x.name == y.name && x.device == y.device && x.vendor == y.vendor && x.backend != y.backend
        } else {
            x.device_pci_bus_id == y.device_pci_bus_id
        }
    });
    match gpus.get(k) {
        Some(&i) => Ok((i, format!("{var}='{value}': GPU {k} in PCI bus order"))),
        None => Err(Error::new(
            ErrorKind::NoDevice,
            format!(
                "{var}='{value}' asks for GPU {k}, but this machine shows {} GPU(s) to Vulkan/Metal/DX12 ({}); \
                 --adapter NAME (or FORGE_ADAPTER) chooses one by name instead",
                gpus.len(),
                gpus.iter()
                    .map(|&i| format!("'{}' at {}", infos[i].name, infos[i].device_pci_bus_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::{Backend, DeviceType};

    fn info(name: &str, ty: DeviceType, backend: Backend, bus: &str) -> wgpu::AdapterInfo {
        let mut i = wgpu::AdapterInfo::new(ty, backend);
        i.name = name.to_string();
        i.device_pci_bus_id = bus.to_string();
        i
    }

    fn machine() -> Vec<wgpu::AdapterInfo> {
        vec![
            info("llvmpipe (LLVM 19)", DeviceType::Cpu, Backend::Vulkan, ""),
            info("H200 b", DeviceType::DiscreteGpu, Backend::Vulkan, "0000:41:00.0"),
            info("H200 a", DeviceType::DiscreteGpu, Backend::Gl, "0000:01:00.0"),
            info("H200 a", DeviceType::DiscreteGpu, Backend::Vulkan, "0000:01:00.0"),
        ]
    }

    fn var(v: &str) -> Option<(String, String)> {
        Some(("CUDA_VISIBLE_DEVICES".to_string(), v.to_string()))
    }

    #[test]
    fn scheduler_index_is_pci_bus_order_and_one_per_gpu() {
        let m = machine();
        assert_eq!(choose(&m, None, var("0").as_ref()).unwrap().0, 3, "bus 01 on Vulkan, not GL");
        assert_eq!(choose(&m, None, var("1,0").as_ref()).unwrap().0, 1, "first entry, bus 41");
        let e = choose(&m, None, var("2").as_ref()).unwrap_err();
        assert!(e.message.contains("GPU 2") && e.message.contains("2 GPU(s)"), "{e}");
    }

    #[test]
    fn no_gpu_granted_means_software_and_names_win() {
        let m = machine();
        for v in ["", " ", "-1", "NoDevFiles"] {
            assert_eq!(choose(&m, None, var(v).as_ref()).unwrap().0, 0, "{v:?}");
        }
        let e = choose(&m[1..], None, var("").as_ref()).unwrap_err();
        assert!(e.message.contains("no GPU") && e.message.contains("CUDA_VISIBLE_DEVICES"), "{e}");
        assert_eq!(choose(&m, Some("h200 B"), var("").as_ref()).unwrap().0, 1, "--adapter wins");
        let (i, why) = choose(&m, None, var("GPU-8f1c").as_ref()).unwrap();
        assert!(i == 1 && why.contains("UUID"), "{i} {why}");
        assert_eq!(choose(&m, None, None).unwrap().0, 1, "by rank: first discrete Vulkan adapter");
    }
}
