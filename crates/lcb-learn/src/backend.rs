//! Explicit choice of the burn backend that trains or evaluates a network.

use std::sync::OnceLock;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::LearnError;

/// A burn backend, chosen by name. The crate never calls `Device::default()`,
/// which picks wgpu whenever that feature is compiled in, even with no adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-ndarray on the CPU (deprecated upstream in burn 0.22, kept for comparison).
    Ndarray,
    /// burn-flex, burn's pure-Rust CPU backend.
    #[default]
    Flex,
    /// wgpu on the default adapter: a GPU, or a software Vulkan driver such as llvmpipe.
    Wgpu,
}

impl Backend {
    /// All backends, CPU ones first.
    pub const ALL: [Backend; 3] = [Backend::Ndarray, Backend::Flex, Backend::Wgpu];

    /// Returns the lowercase name used in configs and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ndarray => "ndarray",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        }
    }

    pub fn is_cpu(self) -> bool {
        !matches!(self, Backend::Wgpu)
    }

    /// Returns the CPU backend that evaluates a network trained on `self`.
    /// A CPU backend evaluates its own networks, so inference repeats
    /// training's arithmetic. Networks trained on wgpu run on flex.
    pub fn inference_backend(self) -> Backend {
        if self.is_cpu() { self } else { Backend::Flex }
    }

    /// Builds the device, without autodiff.
    ///
    /// The wgpu runtime can be initialised once per process, so the first
    /// result (device or error) is kept and returned by later calls.
    ///
    /// # Errors
    /// [`LearnError::WgpuUnavailable`] when the wgpu runtime fails to start,
    /// for example because no adapter exists.
    pub fn device(self) -> Result<Device, LearnError> {
        match self {
            #[allow(deprecated)] // burn 0.22 deprecates ndarray; the design keeps it selectable.
            Backend::Ndarray => Ok(Device::ndarray()),
            Backend::Flex => Ok(Device::flex()),
            Backend::Wgpu => wgpu_device(),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = LearnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| LearnError::InvalidConfig {
                name: "backend",
                value: s.to_string(),
                expected: "one of ndarray, flex, wgpu",
            })
    }
}

fn wgpu_device() -> Result<Device, LearnError> {
    static WGPU: OnceLock<Result<Device, String>> = OnceLock::new();
    WGPU.get_or_init(|| Device::wgpu_options().init().map_err(|err| err.to_string()))
        .clone()
        .map_err(|reason| LearnError::WgpuUnavailable { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
            let json = serde_json::to_string(&backend).unwrap();
            assert_eq!(json, format!("\"{}\"", backend.name()));
        }
    }

    #[test]
    fn unknown_backend_is_rejected_with_choices() {
        let err = "cuda".parse::<Backend>().unwrap_err();
        assert!(err.to_string().contains("ndarray, flex, wgpu"), "{err}");
    }

    #[test]
    fn inference_runs_on_a_cpu_backend() {
        for backend in Backend::ALL {
            assert!(backend.inference_backend().is_cpu());
        }
    }
}
