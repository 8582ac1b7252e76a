//! Which devices train: `--devices` names to burn devices (flex on the CPU, LibTorch,
//! CUDA, wgpu), with a clear error for a backend this build lacks.

use burn::prelude::*;

/// Which wgpu adapter: the one wgpu prefers, a software (CPU) one such as Mesa's lavapipe,
/// or the N-th discrete GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgpuAdapter {
    Default,
    Cpu,
    Discrete(usize),
}

impl WgpuAdapter {
    /// As `--devices` names it.
    pub fn name(self) -> String {
        match self {
            WgpuAdapter::Default => "wgpu".into(),
            WgpuAdapter::Cpu => "wgpu:cpu".into(),
            WgpuAdapter::Discrete(n) => format!("wgpu:{n}"),
        }
    }
}

/// Turns `--devices` names into devices: `flex` (or `cpu`), `libtorch` (LibTorch on the
/// CPU), `libtorch-cuda[:N]`, `cuda[:N]`, `wgpu` (the preferred adapter), `wgpu:cpu` (a
/// software Vulkan device: cubecl matches adapters by type, and lavapipe is a CPU, not a
/// discrete GPU), `wgpu:N` (the N-th discrete GPU).
pub fn parse_devices(names: &[String]) -> Result<Vec<Device>, String> {
    names
        .iter()
        .map(|name| {
            let (kind, index) = match name.split_once(':') {
                Some((k, i)) => (k, Some(i)),
                None => (name.as_str(), None),
            };
            let number = || -> Result<usize, String> {
                index.map_or(Ok(0), |i| i.parse().map_err(|_| format!("device {name:?}: index must be a number")))
            };
            match kind {
                "flex" | "cpu" => Ok(Device::flex()),
                "libtorch" | "tch" => libtorch_device(None),
                "libtorch-cuda" | "tch-cuda" => libtorch_device(Some(number()?)),
                "cuda" => cuda_device(number()?),
                "wgpu" => wgpu_device(match index {
                    None => WgpuAdapter::Default,
                    Some("cpu") => WgpuAdapter::Cpu,
                    Some(_) => WgpuAdapter::Discrete(number().map_err(|e| format!("{e}, or cpu"))?),
                }),
                _ => Err(format!(
                    "unknown device {name:?}: use flex, libtorch, libtorch-cuda:N, cuda:N, wgpu, wgpu:cpu or wgpu:N"
                )),
            }
        })
        .collect()
}

fn missing_backend(kind: &str) -> String {
    format!(
        "this fer-train was built without the `{kind}` backend; rebuild with \
         `cargo build --release -p fer-trainer --features {kind}`"
    )
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device, String> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Result<Device, String> {
    Err(missing_backend("cuda"))
}

// burn 0.22 marks burn-tch deprecated in favour of its CubeCL backends, but those need an
// LLVM download at build time (../shared/TOOLCHAIN-NOTES.md); LibTorch is the GPU path that
// builds from registry packages alone.
#[cfg(feature = "tch")]
#[allow(deprecated)]
fn libtorch_device(cuda: Option<usize>) -> Result<Device, String> {
    let Some(index) = cuda else { return Ok(Device::libtorch()) };
    // burn-tch panics on a device LibTorch does not have; say so first.
    let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    if index >= count {
        return Err(format!(
            "libtorch-cuda:{index}: LibTorch sees {count} CUDA device(s) here{}",
            if count == 0 { " (no GPU, or no NVIDIA driver)" } else { "" }
        ));
    }
    Ok(Device::libtorch_cuda(index))
}

#[cfg(not(feature = "tch"))]
fn libtorch_device(_cuda: Option<usize>) -> Result<Device, String> {
    Err(missing_backend("tch"))
}

#[cfg(feature = "wgpu")]
fn wgpu_device(adapter: WgpuAdapter) -> Result<Device, String> {
    use std::sync::{Arc, Mutex};

    use burn::tensor::DeviceKind;
    let device = Device::wgpu(match adapter {
        WgpuAdapter::Default => DeviceKind::DefaultDevice,
        WgpuAdapter::Cpu => DeviceKind::Cpu,
        WgpuAdapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
    });
    // cubecl panics, on its own thread and then on ours, when no adapter of the kind
    // exists: probe with one tensor, the panics' messages kept rather than printed, and
    // turn a failure into an error that names the device and the adapters there are.
    let messages = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&messages);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut m) = keep.lock() {
            m.push(info.payload_as_str().unwrap_or("").to_string());
        }
    }));
    let probe = std::panic::catch_unwind(|| Tensor::<1>::zeros([1], &device).into_data());
    std::panic::set_hook(hook);
    match probe {
        Ok(_) => Ok(device),
        Err(_) => {
            // The first message is cubecl's, with the adapters found; the rest follow from it.
            let said = messages.lock().ok().and_then(|m| m.first().cloned()).unwrap_or_default();
            Err(format!(
                "{}: no such wgpu adapter here ({said}). Use --devices wgpu:cpu for a software \
                 Vulkan device (mesa-vulkan-drivers), or wgpu for the one wgpu prefers",
                adapter.name()
            ))
        }
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_adapter: WgpuAdapter) -> Result<Device, String> {
    Err(missing_backend("wgpu"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Result<Vec<Device>, String> {
        parse_devices(&[name.to_string()])
    }

    #[test]
    fn names_and_their_errors() {
        assert!(parse("flex").is_ok() && parse("cpu").is_ok());
        assert!(parse("cuda:x").unwrap_err().contains("index must be a number"));
        let err = parse("wgpu:gpu").unwrap_err();
        assert!(err.contains("index must be a number, or cpu"), "{err}");
        assert!(parse("tpu").unwrap_err().contains("wgpu:cpu"));
        #[cfg(not(feature = "wgpu"))]
        for name in ["wgpu", "wgpu:cpu", "wgpu:1"] {
            assert!(parse(name).unwrap_err().contains("--features wgpu"), "{name}");
        }
    }
}
