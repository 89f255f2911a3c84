//! The suite on a tiny fixed-seed run: its markdown table as a snapshot,
//! and every figure written as a PNG of the expected size.

use lcb_bench::figures::{FIGURES, draw_all};
use lcb_bench::suite::{OwnedLcb, SuiteSettings, run_suite};
use lcb_bench::{BenchError, KernelChoice, MethodName, table};
use lcb_core::{NoProgress, Progress};
use lcb_models::gmm::{GmmConfig, GmmSetup};

fn tiny_settings() -> SuiteSettings {
    SuiteSettings {
        kernel: KernelChoice::Exact,
        samples: 60,
        grid_samples: 40,
        seed: 3,
        n: 4,
        alphas: vec![1.0, 0.5],
        deltas: vec![0.2, 0.05],
        ns: vec![1, 4],
        compare_alphas: vec![1.0],
        ..SuiteSettings::default()
    }
}

fn run_tiny() -> (lcb_bench::suite::SuiteReport, GmmSetup) {
    let config = GmmConfig::paper();
    let setup_at = |alpha: f64, delta: f64| {
        let mut config = config.clone();
        config.delta = delta;
        config.build(alpha).map_err(BenchError::from)
    };
    let no_learned = |_: &GmmSetup| -> Result<Option<OwnedLcb>, BenchError> { Ok(None) };
    let progress = |_: &str| -> Box<dyn Progress> { Box::new(NoProgress) };
    let report = run_suite(&setup_at, 0.5, 0.1, &tiny_settings(), &no_learned, &progress).unwrap();
    (report, setup_at(0.5, 0.1).unwrap())
}

#[test]
fn main_table_snapshot() {
    let (report, _) = run_tiny();
    let records: Vec<_> = report
        .grid("main")
        .map(|r| {
            // Wall time is the one field that differs between runs.
            let mut record = r.record.clone();
            record.wall_seconds = 0.0;
            record
        })
        .collect();
    let methods: Vec<&str> = records.iter().map(|r| r.method.as_str()).collect();
    assert!(methods.contains(&MethodName::Rs.as_str()));
    assert!(!methods.contains(&MethodName::Lcb.as_str()), "no learned baseline was given");
    insta::assert_snapshot!(table::markdown(&records));
}

#[test]
fn every_figure_is_a_png_of_its_size() {
    let (report, base) = run_tiny();
    let dir = tempfile::tempdir().unwrap();
    let written = draw_all(dir.path(), &report, &base).unwrap();
    assert_eq!(written.len(), FIGURES.len());
    for (path, name) in written.iter().zip(FIGURES) {
        assert!(path.ends_with(name), "{}", path.display());
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let reader = decoder.read_info().unwrap_or_else(|e| panic!("{name} is not a PNG: {e}"));
        let info = reader.info();
        let expected = match name {
            "delta_sweep.png" => (1280, 560),
            "rewards_by_alpha.png" => (960, 560),
            _ => (960, 640),
        };
        assert_eq!((info.width, info.height), expected, "{name}");
    }
}

#[test]
fn suite_covers_every_grid() {
    let (report, _) = run_tiny();
    assert_eq!(report.grid("alpha").count(), 2 * 3, "rs, lcb-analytic and bon at each alpha");
    assert_eq!(report.grid("delta").count(), 2);
    assert_eq!(report.grid("n").count(), 2 * 2);
    assert_eq!(report.traces.len(), 2);
    assert!(report.csv().lines().count() == report.runs.len() + 1);
}
