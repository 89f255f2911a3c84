//! How the cost of per-step RS and LCB grows with `1/alpha` and with the
//! dimension `d`, on the paper preset lifted to `d` dimensions.

use std::path::Path;

use lcb_core::{Limits, NoProgress};
use lcb_models::gmm::GmmConfig;
use serde::Serialize;

use crate::error::BenchError;
use crate::gmm::{GmmRunOptions, KernelChoice, run_gmm};
use crate::method::MethodName;
use crate::plots::{Figure, Layout, Panel, Series, line_panels};

/// One measured point of the study.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    pub method: String,
    pub dim: usize,
    pub alpha: f64,
    pub computed_per_sample: f64,
    pub sequential_per_sample: f64,
    pub reward_mean: f64,
    pub exact_reward_mean: f64,
}

/// Runs RS and analytic LCB over `alphas` at `d = 2` and over `dims` at
/// `alpha_for_dims`, `samples` samples each.
pub fn run_scaling(
    alphas: &[f64],
    dims: &[usize],
    alpha_for_dims: f64,
    samples: usize,
    seed: u64,
) -> Result<Vec<ScalingPoint>, BenchError> {
    let mut grid: Vec<(usize, f64)> = alphas.iter().map(|&a| (2, a)).collect();
    grid.extend(dims.iter().map(|&d| (d, alpha_for_dims)));
    let mut points = Vec::new();
    for (d, alpha) in grid {
        let setup = GmmConfig::paper_in(d)?.build(alpha)?;
        for method in [MethodName::Rs, MethodName::LcbAnalytic] {
            let options = GmmRunOptions {
                kernel: KernelChoice::Exact,
                samples,
                seed,
                n: 1,
                delta: setup.delta,
                limits: Limits::default(),
                max_trajectories: 0,
                progress: &NoProgress,
            };
            let r = run_gmm(&setup, method, &options, None)?.record;
            points.push(ScalingPoint {
                method: method.to_string(),
                dim: d,
                alpha,
                computed_per_sample: r.computed_proposals as f64 / samples as f64,
                sequential_per_sample: r.proposals_per_sample,
                reward_mean: r.reward_mean,
                exact_reward_mean: r.exact_reward_mean.unwrap_or(f64::NAN),
            });
        }
    }
    Ok(points)
}

/// Formats a markdown table of the study.
pub fn markdown(points: &[ScalingPoint]) -> String {
    let mut text = String::from(
        "| method | d | alpha | computed/sample | sequential/sample | reward mean | exact mean |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        text.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.4} | {:.4} |\n",
            p.method, p.dim, p.alpha, p.computed_per_sample, p.sequential_per_sample, p.reward_mean, p.exact_reward_mean
        ));
    }
    text
}

/// Two log-log panels: computed proposals per sample against `1/alpha`
/// (at `d = 2`) and against `d`.
pub fn plot(path: &Path, points: &[ScalingPoint], alpha_for_dims: f64) -> Result<(), crate::plots::PlotError> {
    let mut by_alpha = Vec::new();
    let mut by_dim = Vec::new();
    for (color, method) in ["rs", "lcb-analytic"].into_iter().enumerate() {
        let of = |p: &&ScalingPoint| p.method == method;
        by_alpha.push(
            Series::new(
                method,
                points
                    .iter()
                    .filter(of)
                    .filter(|p| p.dim == 2)
                    .map(|p| (1.0 / p.alpha, p.computed_per_sample))
                    .collect(),
            )
            .with_color(color)
            .with_markers(),
        );
        by_dim.push(
            Series::new(
                method,
                points
                    .iter()
                    .filter(of)
                    .filter(|p| p.alpha == alpha_for_dims)
                    .map(|p| (p.dim as f64, p.computed_per_sample))
                    .collect(),
            )
            .with_color(color)
            .with_markers(),
        );
    }
    let panels = [
        Panel::new("d = 2", "1 / alpha", "computed proposals per sample", by_alpha).log_x().log_y(),
        Panel::new(format!("alpha = {alpha_for_dims}"), "dimension d", "computed proposals per sample", by_dim)
            .log_x()
            .log_y(),
    ];
    let figure = Figure::new(path, "Cost of RS and analytic LCB as alignment sharpens and dimension grows")
        .with_size(1280, 560);
    line_panels(&figure, &panels, Layout::Row)
}
