//! Noise schedules `a_t` of the forward process
//! `x_t = sqrt(a_t) x_{t-1} + sqrt(1 - a_t) eps`.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};

/// Schedule as written in a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// `a_t = 1 - (c ln n / n) min(delta0 (1 + c ln n / n)^t, 1)` for
    /// `t = 2..=n` and `a_1 = 1 - delta0`: the schedule of the mixture
    /// experiment of Madhow et al.
    Paper { steps: usize, c: f64, delta0: f64 },
    /// `a_t = 1 - beta_t` with `beta_t` linear from `beta_start` to `beta_end`.
    Linear {
        steps: usize,
        beta_start: f64,
        beta_end: f64,
    },
    /// The values `a_1, ..., a_T` themselves.
    Explicit { alphas: Vec<f64> },
}

impl ScheduleSpec {
    /// Returns the paper preset: `n = 20`, `c = 4`, `delta0 = 0.02`.
    pub fn paper() -> Self {
        Self::Paper {
            steps: 20,
            c: 4.0,
            delta0: 0.02,
        }
    }
}

/// A validated schedule: `a[t - 1] = a_t` for `t = 1..=T`, each in `(0, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    a: Vec<f64>,
    abar: Vec<f64>,
}

impl Schedule {
    pub fn from_spec(spec: &ScheduleSpec) -> Result<Self, ModelError> {
        let a = match spec {
            ScheduleSpec::Paper { steps, c, delta0 } => {
                let n = *steps as f64;
                if *steps < 2 || !(*delta0 > 0.0 && *delta0 < 1.0) || !(*c > 0.0) {
                    return Err(invalid(
                        "schedule",
                        format!("paper schedule needs steps >= 2, c > 0 and delta0 in (0, 1); got steps = {steps}, c = {c}, delta0 = {delta0}"),
                    ));
                }
                let rate = c * n.ln() / n;
                (1..=*steps)
                    .map(|t| {
                        if t == 1 {
                            1.0 - delta0
                        } else {
                            1.0 - rate * (delta0 * (1.0 + rate).powi(t as i32)).min(1.0)
                        }
                    })
                    .collect()
            }
            ScheduleSpec::Linear {
                steps,
                beta_start,
                beta_end,
            } => {
                if *steps == 0 {
                    return Err(invalid("schedule.steps", "a linear schedule needs at least 1 step"));
                }
                (0..*steps)
                    .map(|i| {
                        let f = if *steps == 1 { 0.0 } else { i as f64 / (*steps - 1) as f64 };
                        1.0 - (beta_start + f * (beta_end - beta_start))
                    })
                    .collect()
            }
            ScheduleSpec::Explicit { alphas } => alphas.clone(),
        };
        Self::new(a)
    }

    /// Validates `a_1, ..., a_T`: each must lie in `(0, 1)`.
    pub fn new(a: Vec<f64>) -> Result<Self, ModelError> {
        if a.is_empty() {
            return Err(invalid("schedule", "the schedule has no steps"));
        }
        if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| !(**v > 0.0 && **v < 1.0)) {
            return Err(invalid(
                "schedule",
                format!("a_{} = {v} is outside (0, 1); every a_t = 1 - beta_t must be in (0, 1) so that each step adds noise", i + 1),
            ));
        }
        let mut abar = Vec::with_capacity(a.len() + 1);
        abar.push(1.0);
        for &v in &a {
            abar.push(abar.last().unwrap() * v);
        }
        Ok(Self { a, abar })
    }

    /// Number of diffusion steps `T`.
    pub fn steps(&self) -> usize {
        self.a.len()
    }

    /// `a_t` for `t = 1..=T`.
    pub fn a(&self, t: usize) -> f64 {
        self.a[t - 1]
    }

    /// `abar_t = prod_{s <= t} a_s`, with `abar_0 = 1`.
    pub fn abar(&self, t: usize) -> f64 {
        self.abar[t]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_schedule_values() {
        let s = Schedule::from_spec(&ScheduleSpec::paper()).unwrap();
        assert_eq!(s.steps(), 20);
        assert!((s.a(1) - 0.98).abs() < 1e-15);
        let rate = 4.0 * 20f64.ln() / 20.0;
        assert!((s.a(2) - (1.0 - rate * 0.02 * (1.0 + rate).powi(2))).abs() < 1e-15);
        assert!((s.a(20) - (1.0 - rate)).abs() < 1e-15);
        assert!(s.abar(20) < 1e-4);
    }

    #[test]
    fn out_of_range_alpha_is_rejected() {
        let err = Schedule::new(vec![0.9, 1.2]).unwrap_err();
        assert!(err.to_string().contains("a_2 = 1.2"), "{err}");
    }
}
