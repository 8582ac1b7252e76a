//! Which devices train: `--devices` names to burn devices (flex on the CPU, LibTorch,
//! CUDA, wgpu), with a clear error for a backend this build lacks.

use burn::prelude::*;

/// Turns `--devices` names into devices: `flex` (or `cpu`), `libtorch` (LibTorch on the
/// CPU), `libtorch-cuda[:N]`, `cuda[:N]`, `wgpu[:N]`.
pub fn parse_devices(names: &[String]) -> Result<Vec<Device>, String> {
    names
        .iter()
        .map(|name| {
            let (kind, index) = name.split_once(':').unwrap_or((name.as_str(), "0"));
            let index: usize =
                index.parse().map_err(|_| format!("device {name:?}: index must be a number"))?;
            match kind {
                "flex" | "cpu" => Ok(Device::flex()),
                "libtorch" | "tch" => libtorch_device(None),
                "libtorch-cuda" | "tch-cuda" => libtorch_device(Some(index)),
                "cuda" => cuda_device(index),
                "wgpu" => wgpu_device(index),
                _ => Err(format!(
                    "unknown device {name:?}: use flex, libtorch, libtorch-cuda:N, cuda:N or wgpu:N"
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
fn wgpu_device(index: usize) -> Result<Device, String> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_index: usize) -> Result<Device, String> {
    Err(missing_backend("wgpu"))
}
