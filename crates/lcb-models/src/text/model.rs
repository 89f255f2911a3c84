//! A trained text denoiser ready for inference: tokenizer, network and the
//! backend that runs it, behind [`Denoiser`].

use std::path::Path;
use std::sync::Mutex;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bytes, Device};
use lcb_core::ComponentResult;

use crate::text::backend::Backend;
use crate::text::checkpoint::{self, FileInfo, Manifest};
use crate::text::denoiser::Denoiser;
use crate::text::error::{CheckpointError, TextError};
use crate::text::tokenizer::CharTokenizer;
use crate::text::transformer::{DenoiserConfig, Transformer, tokens_tensor};

/// File name of the weights written by [`TextModel::save`].
pub const WEIGHTS_FILE: &str = "weights.bpk";

/// Manifest of the embedded default model (`assets/text-default/`): the
/// default training run on the embedded corpus, without optimizer state.
const EMBEDDED_MANIFEST: &[u8] = include_bytes!("../../assets/text-default/checkpoint.json");
/// Weights of the embedded default model, burnpack format (about 3.5 MB).
const EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../../assets/text-default/weights.bpk");
/// Name of the embedded model in error messages.
const EMBEDDED_PATH: &str = "embedded:text-default";

/// A denoiser network with its tokenizer, evaluated on one backend.
pub struct TextModel {
    tokenizer: CharTokenizer,
    config: DenoiserConfig,
    backend: Backend,
    device: Device,
    // burn modules are `Send` but not `Sync`; the lock lets rayon workers of
    // the samplers share one network.
    network: Mutex<Transformer>,
}

impl TextModel {
    /// Copies `network` (on any device, with or without autodiff) onto
    /// `backend` through its parameter record.
    pub fn from_network(
        tokenizer: CharTokenizer,
        config: DenoiserConfig,
        network: &Transformer,
        backend: Backend,
    ) -> Result<Self, TextError> {
        check_fit(&tokenizer, &config)?;
        let record = network.valid().into_record();
        let device = backend.device()?;
        let target = Transformer::init(&config, 0, &device);
        let network = target.try_load_record(record).map_err(|err| TextError::TensorRead {
            what: "network weights",
            backend: backend.name(),
            message: err.to_string(),
        })?;
        Ok(Self {
            tokenizer,
            config,
            backend,
            device,
            network: Mutex::new(network),
        })
    }

    /// Rebuilds a model from burnpack bytes written by [`Self::to_burnpack`].
    ///
    /// # Errors
    /// A message naming what failed: an unreadable pack, a missing or extra
    /// tensor, or a shape that does not fit `config`.
    pub fn from_burnpack(
        tokenizer: CharTokenizer,
        config: DenoiserConfig,
        bytes: Vec<u8>,
        backend: Backend,
    ) -> Result<Self, TextError> {
        check_fit(&tokenizer, &config)?;
        let device = backend.device()?;
        let network = load_network(&config, bytes, &device).map_err(|message| TextError::TensorRead {
            what: "burnpack weights",
            backend: backend.name(),
            message,
        })?;
        Ok(Self {
            tokenizer,
            config,
            backend,
            device,
            network: Mutex::new(network),
        })
    }

    /// Loads the model of a checkpoint directory written by training or by
    /// [`Self::save`].
    ///
    /// # Errors
    /// A missing, corrupt or inconsistent manifest or weights file.
    pub fn load(dir: &Path, backend: Backend) -> Result<Self, TextError> {
        let manifest = checkpoint::read_manifest(dir)?;
        let weights = checkpoint::read_checked(dir, &manifest.weights)?;
        Self::from_burnpack(manifest.tokenizer, manifest.model, weights, backend).map_err(|err| match err {
            TextError::TensorRead { message, .. } => CheckpointError::InvalidTensors {
                path: dir.join(&manifest.weights.file),
                message,
            }
            .into(),
            other => other,
        })
    }

    /// Loads the embedded default model: the default training configuration
    /// run on the embedded corpus, shipped with the library.
    pub fn embedded(backend: Backend) -> Result<Self, TextError> {
        let path = Path::new(EMBEDDED_PATH);
        let manifest = checkpoint::parse_manifest(EMBEDDED_MANIFEST, path)?;
        checkpoint::check_bytes(EMBEDDED_WEIGHTS, &manifest.weights, path)?;
        Self::from_burnpack(manifest.tokenizer, manifest.model, EMBEDDED_WEIGHTS.to_vec(), backend)
    }

    /// Parses the manifest of the embedded default model, with its training
    /// settings and loss log.
    pub fn embedded_manifest() -> Result<Manifest, TextError> {
        Ok(checkpoint::parse_manifest(EMBEDDED_MANIFEST, Path::new(EMBEDDED_PATH))?)
    }

    /// Saves the model (manifest and weights, no training state) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TextError> {
        checkpoint::create_dir(dir)?;
        let weights = self.to_burnpack()?;
        checkpoint::write_atomic(dir, &dir.join(WEIGHTS_FILE), &weights)?;
        let manifest = Manifest {
            format_version: checkpoint::FORMAT_VERSION,
            tokenizer: self.tokenizer.clone(),
            model: self.config.clone(),
            weights: FileInfo::of(WEIGHTS_FILE, &weights),
            training: None,
        };
        checkpoint::write_manifest(dir, &manifest)?;
        Ok(())
    }

    /// Serialises the network's parameters in burn's burnpack format.
    pub fn to_burnpack(&self) -> Result<Vec<u8>, TextError> {
        let network = self.lock().clone();
        network_to_burnpack(&network).map_err(|message| TextError::TensorRead {
            what: "burnpack weights",
            backend: self.backend.name(),
            message,
        })
    }

    pub fn tokenizer(&self) -> &CharTokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &DenoiserConfig {
        &self.config
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Transformer> {
        // A panic inside burn while the lock was held leaves the weights
        // untouched (forward passes do not mutate them), so a poisoned lock
        // is still safe to use.
        self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Log-probabilities of every token at every position.
    ///
    /// # Shapes
    /// `tokens: [rows, seq_len]`, output `[rows, seq_len, vocab_size]`.
    pub fn log_probabilities(&self, tokens: &[u32]) -> Result<Vec<f32>, TextError> {
        self.run(tokens, true)
    }

    fn run(&self, tokens: &[u32], normalise: bool) -> Result<Vec<f32>, TextError> {
        let len = self.config.shape.seq_len;
        if !tokens.len().is_multiple_of(len) {
            return Err(TextError::Shape {
                what: "token batch (rows x seq_len)",
                expected: tokens.len().div_ceil(len) * len,
                actual: tokens.len(),
            });
        }
        let mask_id = self.tokenizer.mask_id();
        if let Some(index) = tokens.iter().position(|&id| id > mask_id) {
            return Err(TextError::TokenOutOfRange {
                id: tokens[index],
                row: index / len,
                position: index % len,
                mask_id,
            });
        }
        let rows = tokens.len() / len;
        if rows == 0 {
            return Ok(Vec::new());
        }
        let input = tokens_tensor(tokens, rows, len, &self.device);
        let logits = self.lock().forward(input);
        let logits = if normalise { log_softmax(logits, 2) } else { logits };
        logits.try_into_vec_as::<f32>().map_err(|err| TextError::TensorRead {
            what: "logits",
            backend: self.backend.name(),
            message: err.to_string(),
        })
    }
}

impl std::fmt::Debug for TextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextModel")
            .field("config", &self.config)
            .field("alphabet", &self.tokenizer.alphabet().len())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Denoiser for TextModel {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn mask_id(&self) -> u32 {
        self.tokenizer.mask_id()
    }

    fn seq_len(&self) -> usize {
        self.config.shape.seq_len
    }

    fn logits(&self, tokens: &[u32], out: &mut [f32]) -> ComponentResult {
        let logits = self.run(tokens, false)?;
        if logits.len() != out.len() {
            return Err(Box::new(TextError::Shape {
                what: "logits output [rows, seq_len, vocab_size]",
                expected: logits.len(),
                actual: out.len(),
            }));
        }
        out.copy_from_slice(&logits);
        Ok(())
    }
}

fn check_fit(tokenizer: &CharTokenizer, config: &DenoiserConfig) -> Result<(), TextError> {
    config.validate()?;
    if config.vocab_size != tokenizer.vocab_size() {
        return Err(TextError::InvalidConfig {
            name: "model.vocab_size",
            value: config.vocab_size.to_string(),
            expected: "the tokenizer's vocabulary size (its alphabet plus end-of-text)",
        });
    }
    Ok(())
}

/// Builds a network of shape `config` on `device` from burnpack bytes.
pub(crate) fn load_network(config: &DenoiserConfig, bytes: Vec<u8>, device: &Device) -> Result<Transformer, String> {
    let target = Transformer::init(config, 0, device);
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|err| err.to_string())?;
    target.try_load_record(record).map_err(|err| err.to_string())
}

pub(crate) fn network_to_burnpack(network: &Transformer) -> Result<Vec<u8>, String> {
    let bytes = network
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|err| err.to_string())?;
    Ok(bytes.to_vec())
}
