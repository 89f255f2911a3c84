//! Names of the sampling methods, as scripts and the command line spell them.

use std::fmt;
use std::str::FromStr;

use crate::error::BenchError;

/// A sampling method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodName {
    /// Per-step RS with the global bound `r_max / alpha`.
    Rs,
    /// Whole-trajectory RS with the true reward (no values).
    TrajectoryRs,
    /// LCB with the analytic envelope of Gaussian kernels.
    LcbAnalytic,
    /// LCB with a learned baseline.
    Lcb,
    /// Best-of-N over base trajectories, keeping the highest reward.
    Bon,
    /// Best-of-N resampled with weights `exp(r / alpha)`.
    SoftBon,
    /// N LCB samples, keeping the highest reward (learned baseline when
    /// given, analytic envelope otherwise).
    LcbBon,
    /// Sequential Monte Carlo with `N` particles per output sample.
    Smc,
    /// Per-step value-guided selection with `M = N` proposals, one drawn
    /// with weights `exp(V^)`.
    Svdd,
    /// Per-step value-guided selection keeping the argmax of `V^` (biased).
    SvddArgmax,
}

impl MethodName {
    pub const ALL: [MethodName; 10] = [
        Self::Rs,
        Self::TrajectoryRs,
        Self::LcbAnalytic,
        Self::Lcb,
        Self::Bon,
        Self::SoftBon,
        Self::LcbBon,
        Self::Smc,
        Self::Svdd,
        Self::SvddArgmax,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs => "rs",
            Self::TrajectoryRs => "trajectory-rs",
            Self::LcbAnalytic => "lcb-analytic",
            Self::Lcb => "lcb",
            Self::Bon => "bon",
            Self::SoftBon => "soft-bon",
            Self::LcbBon => "lcb-bon",
            Self::Smc => "smc",
            Self::Svdd => "svdd",
            Self::SvddArgmax => "svdd-argmax",
        }
    }

    fn list() -> String {
        Self::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MethodName {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| BenchError::UnknownMethod(s.to_string(), Self::list()))
    }
}
