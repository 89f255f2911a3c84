//! Figures of a suite run, in the layout of the figures of Madhow et al.,
//! "Learnable Chernoff Baselines for Inference-Time Alignment".

use std::path::{Path, PathBuf};

use lcb_models::gmm::GmmSetup;

use crate::plots::{
    DistributionPanel, Figure, Layout, Panel, PlotError, Series, distributions, grouped_bars, histograms_vs_density,
    line_panels,
};
use crate::suite::{SuiteReport, SuiteRun};

/// File names of the figures, in the order they are written.
pub const FIGURES: [&str; 6] = [
    "histograms.png",
    "proposals_by_alpha.png",
    "delta_sweep.png",
    "trajectories.png",
    "rewards_by_alpha.png",
    "n_sweep.png",
];

/// Draws every figure of `report` into `dir` and returns the paths written.
/// `base` is the experiment at the base temperature (for the exact density).
pub fn draw_all(dir: &Path, report: &SuiteReport, base: &GmmSetup) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    let path = |name: &str| dir.join(name);

    histograms(&path(FIGURES[0]), report, base)?;
    written.push(path(FIGURES[0]));
    proposals_by_alpha(&path(FIGURES[1]), report)?;
    written.push(path(FIGURES[1]));
    delta_sweep(&path(FIGURES[2]), report)?;
    written.push(path(FIGURES[2]));
    trajectories(&path(FIGURES[3]), report)?;
    written.push(path(FIGURES[3]));
    rewards_by_alpha(&path(FIGURES[4]), report)?;
    written.push(path(FIGURES[4]));
    n_sweep(&path(FIGURES[5]), report)?;
    written.push(path(FIGURES[5]));
    Ok(written)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// First coordinate of RS, LCB and best-of-N against the exact density.
fn histograms(path: &Path, report: &SuiteReport, base: &GmmSetup) -> Result<(), PlotError> {
    let wanted = ["rs", "lcb", "lcb-analytic", "bon"];
    let runs: Vec<&SuiteRun> = report
        .grid("main")
        .filter(|r| wanted.contains(&r.record.method.as_str()))
        .collect();
    let samples: Vec<(&str, &[f64])> = runs
        .iter()
        .map(|r| (r.record.method.as_str(), r.first_coordinate.as_slice()))
        .collect();

    // The range covers the exact target's 0.1% to 99.9% quantiles.
    let mut target: Vec<f64> = base.target.sample(4000, 1).chunks_exact(base.diffusion.dim()).map(|x| x[0]).collect();
    target.sort_by(f64::total_cmp);
    let (lo, hi) = (quantile(&target, 0.001), quantile(&target, 0.999));
    let pad = 0.1 * (hi - lo).max(1e-9);
    let density = |a: f64| {
        let h = 1e-4 * (1.0 + a.abs());
        (base.target.coordinate_cdf(0, a + h) - base.target.coordinate_cdf(0, a - h)) / (2.0 * h)
    };
    let figure = Figure::new(path, format!("First coordinate at alpha = {}, against the exact target", base.alpha));
    histograms_vs_density(&figure, "x_1", &samples, &density, (lo - pad, hi + pad), 60)
}

fn methods_in(runs: &[&SuiteRun]) -> Vec<String> {
    let mut methods: Vec<String> = Vec::new();
    for r in runs {
        if !methods.contains(&r.record.method) {
            methods.push(r.record.method.clone());
        }
    }
    methods
}

/// Proposals per sample by method across alpha.
fn proposals_by_alpha(path: &Path, report: &SuiteReport) -> Result<(), PlotError> {
    let runs: Vec<&SuiteRun> = report.grid("alpha").collect();
    let alphas = &report.settings.alphas;
    let categories: Vec<String> = alphas.iter().map(|a| format!("alpha = {a}")).collect();
    let groups: Vec<(String, Vec<f64>)> = methods_in(&runs)
        .into_iter()
        .map(|m| {
            let values = alphas
                .iter()
                .map(|&a| {
                    runs.iter()
                        .find(|r| r.alpha == a && r.record.method == m)
                        .map_or(f64::NAN, |r| r.record.proposals_per_sample)
                })
                .collect();
            (m, values)
        })
        .collect();
    let groups: Vec<(&str, Vec<f64>)> = groups.iter().map(|(m, v)| (m.as_str(), v.clone())).collect();
    let figure = Figure::new(path, "Proposals per sample (up to each acceptance; best-of-N: all)");
    grouped_bars(&figure, "temperature", "proposals per sample", &categories, &groups, true)
}

/// Reward mean and effective N against delta.
fn delta_sweep(path: &Path, report: &SuiteReport) -> Result<(), PlotError> {
    let runs: Vec<&SuiteRun> = report.grid("delta").collect();
    let mut reward = Vec::new();
    let mut effective = Vec::new();
    for (color, method) in methods_in(&runs).into_iter().enumerate() {
        let of: Vec<&&SuiteRun> = runs.iter().filter(|r| r.record.method == method).collect();
        reward.push(
            Series::new(&method, of.iter().map(|r| (r.delta, r.record.reward_mean)).collect())
                .with_error_bars(of.iter().map(|r| 2.0 * r.record.reward_stderr).collect())
                .with_color(color)
                .with_markers(),
        );
        effective.push(
            Series::new(&method, of.iter().map(|r| (r.delta, r.record.effective_n)).collect())
                .with_color(color)
                .with_markers(),
        );
    }
    if let Some(exact) = runs.first().and_then(|r| r.record.exact_reward_mean) {
        let deltas: Vec<f64> = runs.iter().map(|r| r.delta).collect();
        let (lo, hi) = deltas
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &d| (lo.min(d), hi.max(d)));
        reward.push(Series::new("exact target", vec![(lo, exact), (hi, exact)]).dashed().with_color(7));
    }
    let panels = [
        Panel::new("Reward mean (+- 2 stderr)", "delta", "reward mean", reward).log_x(),
        Panel::new("Effective N", "delta", "proposals per sample / steps", effective)
            .log_x()
            .log_y(),
    ];
    let figure = Figure::new(path, "Tail level delta: alignment against cost").with_size(1280, 560);
    line_panels(&figure, &panels, Layout::Row)
}

/// Envelope against exact soft value and RS's bound along two trajectories.
fn trajectories(path: &Path, report: &SuiteReport) -> Result<(), PlotError> {
    let mut series = Vec::new();
    for (color, trace) in report.traces.iter().enumerate() {
        let points = |ys: &[f64]| -> Vec<(f64, f64)> {
            trace.steps.iter().zip(ys).map(|(&t, &y)| (t as f64, y)).collect()
        };
        series.push(Series::new(&trace.label, points(&trace.envelope)).with_color(color));
        series.push(
            Series::new(format!("exact soft value V_t, trajectory {}", color + 1), points(&trace.value))
                .dotted()
                .with_color(color),
        );
    }
    if let Some(trace) = report.traces.first()
        && let Some(bound) = trace.global_bound
    {
        let (first, last) = (trace.steps[0] as f64, *trace.steps.last().unwrap() as f64);
        series.push(Series::new("RS global bound r_max / alpha", vec![(first, bound), (last, bound)]).dashed().with_color(7));
    }
    let panel = Panel::new("", "transition t (sampling runs from left to right: t = T+1 ... 1)", "log units", series);
    let mut panel = panel;
    // Sampling runs from large t to small t: draw t reversed by negating it.
    for s in &mut panel.series {
        for p in &mut s.points {
            p.0 = -p.0;
        }
    }
    panel.x_label = "-t (sampling runs left to right, from the prior to x_0)".into();
    let figure = Figure::new(path, "Envelope c(y) along sampled trajectories against the soft value");
    line_panels(&figure, &[panel], Layout::Row)
}

/// Reward distributions by method, one panel per alpha.
fn rewards_by_alpha(path: &Path, report: &SuiteReport) -> Result<(), PlotError> {
    let runs: Vec<&SuiteRun> = report.grid("alpha").collect();
    let panels: Vec<DistributionPanel<'_>> = report
        .settings
        .alphas
        .iter()
        .map(|&a| DistributionPanel {
            title: format!("alpha = {a}"),
            samples: runs
                .iter()
                .filter(|r| r.alpha == a)
                .map(|r| (r.record.method.as_str(), r.rewards.as_slice()))
                .collect(),
        })
        .collect();
    let width = 400 * panels.len().max(1) as u32;
    let figure = Figure::new(path, "Reward distributions by method").with_size(width.max(960), 560);
    distributions(&figure, "reward", &panels)
}

/// Reward mean of best-of-N and LCB then best-of-N against N.
fn n_sweep(path: &Path, report: &SuiteReport) -> Result<(), PlotError> {
    let runs: Vec<&SuiteRun> = report.grid("n").collect();
    let mut series = Vec::new();
    for (color, method) in methods_in(&runs).into_iter().enumerate() {
        let of: Vec<&&SuiteRun> = runs.iter().filter(|r| r.record.method == method).collect();
        series.push(
            Series::new(
                &method,
                of.iter().map(|r| (r.record.proposals_per_sample, r.record.reward_mean)).collect(),
            )
            .with_error_bars(of.iter().map(|r| 2.0 * r.record.reward_stderr).collect())
            .with_color(color)
            .with_markers(),
        );
    }
    let panel = Panel::new("", "proposals per sample", "reward mean (+- 2 stderr)", series).log_x();
    let figure = Figure::new(path, "Best-of-N with and without LCB, across N");
    line_panels(&figure, &[panel], Layout::Row)
}
