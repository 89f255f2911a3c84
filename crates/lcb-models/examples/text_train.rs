//! Trains the text denoiser on the embedded corpus (or a file) and prints
//! the loss log and a few samples.
//!
//! ```text
//! cargo run --release -p lcb-models --example text_train -- OUT_DIR [STEPS] [BACKEND] [CORPUS]
//! ```
//!
//! Rerunning with the same arguments resumes an interrupted run.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use lcb_core::NoProgress;
use lcb_models::text::{Backend, Corpus, GenerateOptions, TextModel, TrainConfig, TrainEvent, generate, train};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(args.first().ok_or("usage: text_train OUT_DIR [STEPS] [BACKEND] [CORPUS]")?);
    let mut config = TrainConfig::default();
    if let Some(steps) = args.get(1) {
        config.steps = steps.parse()?;
    }
    if let Some(backend) = args.get(2) {
        config.backend = backend.parse()?;
    }
    let corpus = match args.get(3) {
        Some(path) => Corpus::from_file(path.as_ref())?,
        None => Corpus::embedded(),
    };

    let start = Instant::now();
    let mut last = Instant::now();
    let summary = train(&corpus, &out, &config, true, &mut |event| {
        match event {
            TrainEvent::Started { step, total, parameters, corpus } => {
                eprintln!("start at step {step}/{total}: {parameters} parameters, {corpus:?}");
            }
            TrainEvent::Step { step, loss, .. } if step % 50 == 0 => {
                eprintln!("step {step}: loss {loss:.4} ({:.3} s/step)", last.elapsed().as_secs_f64() / 50.0);
                last = Instant::now();
            }
            TrainEvent::Evaluated(record) => eprintln!("{record:?}"),
            TrainEvent::Checkpointed { step, path } => eprintln!("checkpoint {step}: {}", path.display()),
            _ => {}
        }
        ControlFlow::Continue(())
    })?;
    eprintln!(
        "done in {:.1} s: {:?}, uniform loss ln V = {:.4}",
        start.elapsed().as_secs_f64(),
        summary.last,
        summary.uniform_loss
    );

    let model = TextModel::load(&out, Backend::Flex)?;
    let samples = generate(&model, &GenerateOptions { samples: 10, ..GenerateOptions::default() }, &NoProgress)?;
    for sample in samples {
        println!("{sample}");
    }
    Ok(())
}
