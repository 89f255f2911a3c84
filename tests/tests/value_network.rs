//! The learned value network on a two-component mixture, whose soft values
//! are known in closed form. Trained on base trajectories alone, it tracks
//! the exact `V_t`, and a save and load leaves it unchanged.

use lcb_core::{Kernel, Limits, NoProgress, Value};
use lcb_learn::{NetworkValue, TrainedValue, ValueConfig, fit_value};
use lcb_models::gmm::{GmmConfig, GmmReward};

#[test]
fn value_network_tracks_closed_form_soft_values() {
    // The preset's mixture (weights 0.95 and 0.05, means (5, 0) and (-5, 0))
    // with reward 1[x_1 < 0]. The base model reaches it through the left
    // component, so V_t moves as a trajectory commits to a component.
    let alpha = 0.5;
    let mut config = GmmConfig::paper();
    config.reward = GmmReward::Step {
        scale: 1.0,
        coordinate: 0,
        threshold: 0.0,
    };
    let setup = config.build(alpha).unwrap();
    let kernel = &setup.exact;
    let value_config = ValueConfig {
        trajectories: 1024,
        epochs: 40,
        ..ValueConfig::default()
    };
    let fitted = fit_value(kernel, &setup.value, &value_config, &NoProgress).unwrap();
    let history = &fitted.history;
    let constant = history.heldout_constant_loss.unwrap();
    let last = history.kept_heldout_loss().unwrap();
    assert!(last < constant, "held-out loss {last} is not below the constant fit's {constant}");

    // On fresh base states, the network explains most of the spread of the
    // exact V_t at the steps where it varies.
    let learned = NetworkValue {
        network: &fitted.network,
        terminal: &setup.value,
        upper: None,
    };
    let steps = kernel.steps();
    let n = 500;
    let particles: Vec<u64> = (0..n as u64).collect();
    let mut root = vec![0.0; 2];
    kernel.root(&mut root);
    let mut states: Vec<f64> = root.iter().copied().cycle().take(2 * n).collect();
    let (mut error, mut spread) = (0.0, 0.0);
    for t in (2..=steps).rev() {
        states = lcb_core::advance(kernel, None, t, &states, &particles, 41, &Limits::default())
            .unwrap()
            .children;
        let mut want = vec![0.0; n];
        let mut got = vec![0.0; n];
        setup.value.log_values(t - 1, &states, &mut want).unwrap();
        learned.log_values(t - 1, &states, &mut got).unwrap();
        let mean = want.iter().sum::<f64>() / n as f64;
        error += want.iter().zip(&got).map(|(w, g)| (w - g).powi(2)).sum::<f64>();
        spread += want.iter().map(|w| (w - mean).powi(2)).sum::<f64>();
    }
    assert!(
        error < 0.1 * spread,
        "squared error {error:.3} is not below a tenth of the spread {spread:.3} of V_t"
    );

    // Save and load give the same values; a changed alpha is refused.
    let dir = tempfile::tempdir().unwrap();
    fitted.save(dir.path(), "paper-gmm", alpha).unwrap();
    let loaded = TrainedValue::load(dir.path(), "paper-gmm", alpha, 2, steps).unwrap();
    let a = fitted.network.evaluate(5, &states).unwrap();
    let b = loaded.network.evaluate(5, &states).unwrap();
    assert_eq!(a, b);
    let err = TrainedValue::load(dir.path(), "paper-gmm", 0.25, 2, steps).unwrap_err();
    assert!(err.to_string().contains("alpha"), "{err}");

    // A corrupted weights file is named, not loaded.
    let weights = dir.path().join("value.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let err = TrainedValue::load(dir.path(), "paper-gmm", alpha, 2, steps).unwrap_err();
    assert!(err.to_string().contains("value.bpk"), "{err}");
}
