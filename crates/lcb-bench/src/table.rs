//! Markdown tables of run records.

use lcb_core::RunRecord;

fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// Formats a markdown table with one row per run: proposals, effective N, reward
/// against the exact mean, KS, clipping-TV estimate and wall time.
pub fn markdown(records: &[RunRecord]) -> String {
    let mut out = String::from(
        "| method | samples | computed proposals | sequential proposals | proposals/sample | effective N | reward mean | stderr | exact mean | KS | KS p | TV clip | seconds |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in records {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.4} | {:.4} | {} | {} | {} | {:.2e} | {:.2} |\n",
            r.method,
            r.samples,
            r.computed_proposals,
            r.sequential_proposals,
            r.proposals_per_sample,
            r.effective_n,
            r.reward_mean,
            r.reward_stderr,
            optional(r.exact_reward_mean, 4),
            optional(r.ks_statistic, 4),
            optional(r.ks_pvalue, 3),
            r.tv_clip_estimate,
            r.wall_seconds,
        ));
    }
    out
}
