//! Inference of a trained baseline network on a CPU device, behind
//! [`lcb_core::Baseline`].

use std::sync::Mutex;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use lcb_core::{Baseline, ComponentResult};

use crate::backend::Backend;
use crate::error::LearnError;
use crate::network::{Network, NetworkConfig, Normalization, features_tensor};

/// A baseline network `b_theta(y, t)` evaluated on a CPU backend, in log
/// units, for transitions `t = 1..=T` and states of a fixed width.
///
/// Rows are converted to `f32` features; outputs are returned as `f64`.
pub struct NetworkBaseline {
    config: NetworkConfig,
    normalization: Normalization,
    steps: usize,
    backend: Backend,
    device: Device,
    // burn modules are `Send` but not `Sync`; the lock lets rayon workers of
    // the rejection loop share one network.
    mlp: Mutex<Network>,
}

impl NetworkBaseline {
    /// Copies `mlp` (on any device, with or without autodiff) onto the CPU
    /// backend `backend` through its parameter record.
    pub(crate) fn from_network(
        mlp: &Network,
        config: &NetworkConfig,
        normalization: &Normalization,
        steps: usize,
        backend: Backend,
    ) -> Result<Self, LearnError> {
        let record = mlp.valid().into_record();
        let device = backend.device()?;
        let width = normalization.state_mean.len();
        let target = Network::init(config, width, 0, &device);
        let mlp = target.try_load_record(record).map_err(|err| LearnError::TensorRead {
            what: "network weights",
            backend: backend.name(),
            message: err.to_string(),
        })?;
        Ok(Self {
            config: config.clone(),
            normalization: normalization.clone(),
            steps,
            backend,
            device,
            mlp: Mutex::new(mlp),
        })
    }

    /// Rebuilds a network from burnpack bytes written by [`Self::to_burnpack`].
    ///
    /// # Errors
    /// [`LearnError::TensorRead`] naming what failed: an unreadable pack, a
    /// missing or extra tensor, or a shape that does not fit `config`.
    pub(crate) fn from_burnpack(
        bytes: Vec<u8>,
        config: &NetworkConfig,
        normalization: &Normalization,
        steps: usize,
        backend: Backend,
    ) -> Result<Self, LearnError> {
        let device = backend.device()?;
        let width = normalization.state_mean.len();
        let target = Network::init(config, width, 0, &device);
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|err| LearnError::TensorRead {
            what: "burnpack record",
            backend: backend.name(),
            message: err.to_string(),
        })?;
        let mlp = target.try_load_record(record).map_err(|err| LearnError::TensorRead {
            what: "burnpack record",
            backend: backend.name(),
            message: err.to_string(),
        })?;
        Ok(Self {
            config: config.clone(),
            normalization: normalization.clone(),
            steps,
            backend,
            device,
            mlp: Mutex::new(mlp),
        })
    }

    /// Serialises the network's parameters in burn's burnpack format.
    pub(crate) fn to_burnpack(&self) -> Result<Vec<u8>, LearnError> {
        let mlp = self.lock().clone();
        let bytes = mlp.into_record().into_bytes().map_err(|err| LearnError::TensorRead {
            what: "burnpack record",
            backend: self.backend.name(),
            message: err.to_string(),
        })?;
        Ok(bytes.to_vec())
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    pub fn normalization(&self) -> &Normalization {
        &self.normalization
    }

    /// Width of the state rows the network reads.
    pub fn width(&self) -> usize {
        self.normalization.state_mean.len()
    }

    /// Number of transitions `T` the time features cover.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Returns the CPU backend that evaluates the network.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Network> {
        // A panic inside burn while the lock was held leaves the weights
        // untouched (forward passes do not mutate them), so a poisoned lock
        // is still safe to use.
        self.mlp.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Evaluates `b_theta(y, t)` in log units for every row of `prefixes`.
    ///
    /// # Shapes
    /// `prefixes: [n, width]`, output `[n]`.
    ///
    /// # Errors
    /// [`LearnError::InvalidConfig`] for a step outside `1..=T` or a slice
    /// that is not a whole number of rows, [`LearnError::NonFiniteBaseline`]
    /// when the network outputs a non-finite value.
    pub fn evaluate(&self, t: usize, prefixes: &[f64]) -> Result<Vec<f64>, LearnError> {
        let width = self.width();
        if t == 0 || t > self.steps {
            return Err(LearnError::InvalidConfig {
                name: "step t",
                value: t.to_string(),
                expected: "a transition in 1..=T of the trained baseline",
            });
        }
        if prefixes.len() % width != 0 {
            return Err(LearnError::InvalidConfig {
                name: "prefix slice length",
                value: prefixes.len().to_string(),
                expected: "a multiple of the state width",
            });
        }
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }

        let features = features_tensor(&self.config, &self.normalization, t, self.steps, prefixes, &self.device);
        let raw = self.lock().forward(features);
        let raw: Vec<f32> = raw.try_into_vec_as::<f32>().map_err(|err| LearnError::TensorRead {
            what: "baseline outputs",
            backend: self.backend.name(),
            message: err.to_string(),
        })?;

        let scale = self.normalization.value_scale;
        let offset = self.normalization.value_offset;
        let values: Vec<f64> = raw.iter().map(|&r| offset + scale * r as f64).collect();
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(LearnError::NonFiniteBaseline { step: t, index, value });
        }
        Ok(values)
    }
}

impl Clone for NetworkBaseline {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            normalization: self.normalization.clone(),
            steps: self.steps,
            backend: self.backend,
            device: self.device.clone(),
            mlp: Mutex::new(self.lock().clone()),
        }
    }
}

impl std::fmt::Debug for NetworkBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkBaseline")
            .field("config", &self.config)
            .field("width", &self.width())
            .field("steps", &self.steps)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Baseline for NetworkBaseline {
    type Elem = f64;

    fn baselines(&self, t: usize, prefixes: &[f64], out: &mut [f64]) -> ComponentResult {
        if prefixes.len() != out.len() * self.width() {
            return Err(Box::new(LearnError::InvalidConfig {
                name: "prefix batch length",
                value: prefixes.len().to_string(),
                expected: "rows x width, one row per output",
            }));
        }
        let values = self.evaluate(t, prefixes)?;
        out.copy_from_slice(&values);
        Ok(())
    }
}
