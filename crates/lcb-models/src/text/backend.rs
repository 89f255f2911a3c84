//! Explicit choice of the burn backend that runs the denoiser.

use std::sync::OnceLock;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::text::error::TextError;

/// A burn backend, chosen by name. This module never calls
/// `Device::default()`, which in burn 0.22 picks wgpu whenever that feature
/// is compiled in, even on a machine without an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-ndarray on the CPU (deprecated upstream in burn 0.22).
    Ndarray,
    /// burn-flex, burn's recommended CPU backend in 0.22.
    #[default]
    Flex,
    /// wgpu on the default adapter: a GPU or a software Vulkan driver such as llvmpipe.
    Wgpu,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Ndarray, Backend::Flex, Backend::Wgpu];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Ndarray => "ndarray",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Builds the device, without autodiff.
    ///
    /// The wgpu runtime is initialised once per process, so the first result
    /// (device or error) is kept and returned by later calls.
    ///
    /// # Errors
    /// [`TextError::WgpuUnavailable`] when wgpu finds no adapter.
    pub fn device(self) -> Result<Device, TextError> {
        match self {
            #[allow(deprecated)] // burn 0.22 deprecates ndarray; it stays selectable for comparison.
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
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| TextError::InvalidConfig {
                name: "backend",
                value: s.to_string(),
                expected: "one of ndarray, flex, wgpu",
            })
    }
}

fn wgpu_device() -> Result<Device, TextError> {
    static WGPU: OnceLock<Result<Device, String>> = OnceLock::new();
    WGPU.get_or_init(|| Device::wgpu_options().init().map_err(|err| err.to_string()))
        .clone()
        .map_err(|reason| TextError::WgpuUnavailable { reason })
}
