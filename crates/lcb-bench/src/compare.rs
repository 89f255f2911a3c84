//! Methods side by side at matched computed proposals.
//!
//! LCB with the analytic envelope sets the budget: its computed proposals
//! per sample divided by the number of transitions gives `N`. Best-of-N,
//! value-guided selection (`M = N` proposals a step) and SMC (`N` particles
//! per output) then compute about as many proposals per sample. Per-step RS
//! runs at its own, larger, cost when the reward is bounded.

use lcb_core::RunRecord;
use lcb_models::gmm::GmmSetup;

use crate::error::BenchError;
use crate::gmm::{GmmRunOptions, run_gmm};
use crate::method::MethodName;

/// Runs the comparison and returns one record per method, RS first (when
/// the reward is bounded), then LCB and the methods matched to its cost.
/// `options.n` is ignored: the comparison sets it.
pub fn matched_compute(setup: &GmmSetup, options: &GmmRunOptions<'_>) -> Result<Vec<RunRecord>, BenchError> {
    let mut records = Vec::new();
    if setup.reward.reward.bound().is_some() {
        records.push(run_gmm(setup, MethodName::Rs, options, None)?.record);
    }
    let lcb = run_gmm(setup, MethodName::LcbAnalytic, options, None)?.record;
    let per_step = lcb.computed_proposals as f64 / (lcb.samples * lcb.steps).max(1) as f64;
    let n = per_step.round().max(1.0) as usize;
    records.push(lcb);

    let matched = GmmRunOptions { n, ..*options };
    for method in [
        MethodName::Bon,
        MethodName::SoftBon,
        MethodName::Svdd,
        MethodName::SvddArgmax,
        MethodName::Smc,
    ] {
        let mut record = run_gmm(setup, method, &matched, None)?.record;
        record.method = format!("{method} (N = {n})");
        records.push(record);
    }
    Ok(records)
}

/// Formats a markdown table of a comparison: cost, reward against the exact mean,
/// KS against the exact target and, for SMC, the ESS after the last step.
pub fn markdown(title: &str, records: &[RunRecord]) -> String {
    let mut out = format!(
        "### {title}\n\n\
         | method | computed proposals/sample | reward mean | stderr | exact mean | KS | KS p | final ESS |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in records {
        let ess = r
            .per_step
            .last()
            .and_then(|s| s.ess)
            .map_or_else(|| "-".to_string(), |e| format!("{e:.0}"));
        out.push_str(&format!(
            "| {} | {:.1} | {:.4} | {:.4} | {} | {} | {} | {} |\n",
            r.method,
            r.computed_proposals as f64 / r.samples.max(1) as f64,
            r.reward_mean,
            r.reward_stderr,
            r.exact_reward_mean.map_or("-".into(), |v| format!("{v:.4}")),
            r.ks_statistic.map_or("-".into(), |v| format!("{v:.4}")),
            r.ks_pvalue.map_or("-".into(), |v| format!("{v:.3}")),
            ess,
        ));
    }
    out
}
