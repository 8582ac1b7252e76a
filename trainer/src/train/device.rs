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
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match adapter {
        WgpuAdapter::Default => DeviceKind::DefaultDevice,
        WgpuAdapter::Cpu => DeviceKind::Cpu,
        WgpuAdapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
    }))
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
