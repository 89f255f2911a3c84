//! Every plot function writes a PNG of the requested size, handles empty,
//! non-finite and constant data, and fails cleanly without leaving a file.
//!
//! Set `LCB_PLOT_TEST_DIR` to keep the figures in that folder for viewing.
//! Otherwise they go to a temporary folder that is removed.

use std::collections::HashSet;
use std::f64::consts::PI;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use lcb_bench::plots::{
    DEFAULT_SIZE, DistributionPanel, Figure, Layout, Panel, PlotError, Series, distributions,
    grouped_bars, histograms_vs_density, line_chart, line_panels,
};

/// Palette colours, matching the order in which plots assign them.
const BLUE: [u8; 3] = [0, 114, 178];
const VERMILLION: [u8; 3] = [213, 94, 0];
const GREEN: [u8; 3] = [0, 158, 115];

struct Output {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Output {
    fn new() -> Self {
        match std::env::var_os("LCB_PLOT_TEST_DIR") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                std::fs::create_dir_all(&dir).unwrap();
                Self { dir, _temp: None }
            }
            None => {
                let temp = tempfile::tempdir().unwrap();
                Self {
                    dir: temp.path().to_path_buf(),
                    _temp: Some(temp),
                }
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

struct Image {
    width: u32,
    height: u32,
    /// RGB rows, 3 bytes a pixel.
    pixels: Vec<u8>,
}

impl Image {
    fn open(path: &Path) -> Self {
        let file = BufReader::new(File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        pixels.truncate(info.buffer_size());
        Self {
            width: info.width,
            height: info.height,
            pixels,
        }
    }

    fn count_color(&self, color: [u8; 3]) -> usize {
        self.pixels.chunks_exact(3).filter(|p| *p == color).count()
    }

    /// Counts grey or black pixels (text and axes) in rows `rows`.
    fn ink_pixels_in_rows(&self, rows: std::ops::Range<u32>) -> usize {
        let row_bytes = self.width as usize * 3;
        rows.map(|row| &self.pixels[row as usize * row_bytes..(row as usize + 1) * row_bytes])
            .flat_map(|row| row.chunks_exact(3))
            .filter(|p| p.iter().all(|&c| c < 160))
            .count()
    }
}

fn assert_png(path: &Path, width: u32, height: u32) -> Image {
    let image = Image::open(path);
    assert_eq!(
        (image.width, image.height),
        (width, height),
        "size of {}",
        path.display()
    );
    image
}

fn gaussian(mean: f64, std_dev: f64, n: usize, seed: u64) -> Vec<f64> {
    // Box-Muller on a small linear congruential generator: deterministic and dependency-free.
    let mut state = seed;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| mean + std_dev * (-2.0 * uniform().ln()).sqrt() * (2.0 * PI * uniform()).cos())
        .collect()
}

fn normal_density(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

#[test]
fn histograms_write_default_size() {
    let out = Output::new();
    let path = out.path("histograms.png");
    let rs = gaussian(0.0, 1.0, 4000, 1);
    let lcb = gaussian(0.05, 1.0, 4000, 2);
    let best = gaussian(0.8, 0.6, 4000, 3);
    let samples: [(&str, &[f64]); 3] = [("RS", &rs), ("LCB", &lcb), ("best-of-N", &best)];

    histograms_vs_density(
        &Figure::new(&path, "First coordinate against the exact target"),
        "x_1",
        &samples,
        &normal_density,
        (-4.0, 4.0),
        60,
    )
    .unwrap();

    let image = assert_png(&path, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    assert!(image.count_color(BLUE) > 100, "RS outline missing");
    assert!(image.count_color(VERMILLION) > 100, "LCB outline missing");
    assert!(image.count_color(GREEN) > 100, "best-of-N outline missing");
    assert!(image.ink_pixels_in_rows(0..40) > 50, "title text missing");
}

#[test]
fn histograms_note_nan_and_outside_samples() {
    let out = Output::new();
    let path = out.path("histograms-edge.png");
    let mut with_nan = gaussian(0.0, 1.0, 500, 4);
    with_nan.extend([f64::NAN, f64::INFINITY, 25.0]);
    let empty: Vec<f64> = Vec::new();
    let samples: [(&str, &[f64]); 2] = [("RS", &with_nan), ("LCB", &empty)];
    let density_with_gap = |x: f64| {
        if x.abs() < 0.1 {
            f64::NAN
        } else {
            normal_density(x)
        }
    };

    histograms_vs_density(
        &Figure::new(&path, "Edge cases").with_size(640, 480),
        "x_1",
        &samples,
        &density_with_gap,
        (-4.0, 4.0),
        30,
    )
    .unwrap();

    let image = assert_png(&path, 640, 480);
    assert!(
        image.ink_pixels_in_rows(440..480) > 20,
        "note under the figure missing"
    );
}

#[test]
fn histograms_reject_invalid_range_and_bins() {
    let out = Output::new();
    let path = out.path("never.png");
    let values = [0.0, 1.0];
    let samples: [(&str, &[f64]); 1] = [("RS", &values)];
    let figure = Figure::new(&path, "");

    let inverted = histograms_vs_density(&figure, "x", &samples, &normal_density, (1.0, -1.0), 10);
    let message = inverted.unwrap_err().to_string();
    assert!(message.contains("range (1, -1)"), "{message}");
    assert!(message.contains("never.png"), "{message}");

    let no_bins = histograms_vs_density(&figure, "x", &samples, &normal_density, (0.0, 1.0), 0);
    assert!(matches!(no_bins, Err(PlotError::InvalidInput { .. })));
    assert!(!path.exists());
}

#[test]
fn grouped_bars_linear_and_log() {
    let out = Output::new();
    let alphas: Vec<String> = ["0.1", "0.2", "0.5", "1", "2"]
        .iter()
        .map(|a| format!("alpha = {a}"))
        .collect();
    let groups = [
        ("RS", vec![812.0, 203.0, 33.0, 8.1, 2.2]),
        ("LCB", vec![41.0, 19.0, 6.3, 2.9, 1.4]),
        ("best-of-N", vec![16.0, 16.0, 16.0, 16.0, 16.0]),
    ];

    let linear = out.path("bars-linear.png");
    grouped_bars(
        &Figure::new(&linear, "Proposals per sample"),
        "",
        "proposals per sample",
        &alphas,
        &groups,
        false,
    )
    .unwrap();
    let image = assert_png(&linear, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    assert!(image.count_color(BLUE) > 500, "RS bars missing");
    assert!(image.count_color(GREEN) > 500, "best-of-N bars missing");

    let log = out.path("bars-log.png");
    grouped_bars(
        &Figure::new(&log, "Proposals per sample (log scale)"),
        "alpha",
        "proposals per sample",
        &alphas,
        &groups,
        true,
    )
    .unwrap();
    let image = assert_png(&log, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    assert!(image.count_color(VERMILLION) > 500, "LCB bars missing");
}

#[test]
fn grouped_bars_reject_bad_input() {
    let out = Output::new();
    let path = out.path("never.png");
    let categories = vec!["a".to_string(), "b".to_string()];
    let figure = Figure::new(&path, "");

    let short = grouped_bars(&figure, "", "y", &categories, &[("RS", vec![1.0])], false);
    let message = short.unwrap_err().to_string();
    assert!(
        message.contains("group \"RS\" has 1 values for 2 categories"),
        "{message}"
    );

    let negative = grouped_bars(
        &figure,
        "",
        "y",
        &categories,
        &[("RS", vec![1.0, -2.0])],
        true,
    );
    let message = negative.unwrap_err().to_string();
    assert!(message.contains("value -2"), "{message}");
    assert!(message.contains("\"b\""), "{message}");
    assert!(!path.exists());
}

#[test]
fn grouped_bars_handle_nan_and_empty() {
    let out = Output::new();
    let categories = vec!["x".to_string(), "y".to_string()];
    let path = out.path("bars-nan.png");
    grouped_bars(
        &Figure::new(&path, "NaN bar"),
        "",
        "y",
        &categories,
        &[("RS", vec![f64::NAN, 3.0])],
        false,
    )
    .unwrap();
    assert_png(&path, DEFAULT_SIZE.0, DEFAULT_SIZE.1);

    let empty = out.path("bars-empty.png");
    grouped_bars(
        &Figure::new(&empty, "No categories"),
        "",
        "y",
        &[],
        &[],
        true,
    )
    .unwrap();
    assert_png(&empty, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
}

#[test]
fn line_chart_with_error_bars_and_log_axes() {
    let out = Output::new();
    let path = out.path("scaling.png");
    let inverse_alpha = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];
    let rs = Series::new("RS", inverse_alpha.iter().map(|&a| (a, 3.0 * a)).collect())
        .with_markers()
        .with_error_bars(inverse_alpha.iter().map(|&a| 0.9 * a).collect());
    let lcb = Series::new(
        "LCB",
        inverse_alpha.iter().map(|&a| (a, 2.0 * a.sqrt())).collect(),
    )
    .with_markers()
    .with_error_bars(vec![0.5; inverse_alpha.len()]);
    let panel = Panel::new("", "1 / alpha", "proposals per sample", vec![rs, lcb])
        .log_x()
        .log_y();

    line_chart(
        &Figure::new(&path, "Proposals against 1 / alpha").with_size(800, 600),
        &panel,
    )
    .unwrap();

    let image = assert_png(&path, 800, 600);
    assert!(image.count_color(BLUE) > 100, "RS line missing");
    assert!(image.count_color(VERMILLION) > 100, "LCB line missing");
}

#[test]
fn line_panels_trajectories_row_and_column() {
    let out = Output::new();
    let steps = 50;
    let mut series = Vec::new();
    for (trajectory, phase) in [(0, 0.0), (1, 1.3)] {
        let value: Vec<(f64, f64)> = (0..=steps)
            .map(|t| {
                (
                    t as f64,
                    2.0 * (1.0 - t as f64 / steps as f64) + 0.3 * (0.2 * t as f64 + phase).sin(),
                )
            })
            .collect();
        let envelope = value
            .iter()
            .map(|&(t, v)| (t, v + 0.25 + 0.1 * (1.0 - t / steps as f64)))
            .collect();
        let label = format!("trajectory {}", trajectory + 1);
        series.push(Series::new(format!("{label}: b + tau"), envelope).with_color(trajectory));
        series.push(
            Series::new(format!("{label}: V_t"), value)
                .dotted()
                .with_color(trajectory),
        );
    }
    series.push(
        Series::new("RS global bound", vec![(0.0, 3.2), (steps as f64, 3.2)])
            .dashed()
            .with_color(6),
    );
    let trajectories = Panel::new("Envelope along trajectories", "step t", "log units", series);

    let path = out.path("trajectories.png");
    line_chart(
        &Figure::new(&path, "Learned envelope against the exact soft value"),
        &trajectories,
    )
    .unwrap();
    let image = assert_png(&path, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    assert!(image.count_color(BLUE) > 100);
    assert!(image.count_color(VERMILLION) > 100);

    let deltas = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
    let reward = Panel::new(
        "reward mean",
        "delta",
        "reward",
        vec![
            Series::new("LCB", deltas.iter().map(|&d| (d, 1.0 - 0.3 * d)).collect())
                .with_markers()
                .with_error_bars(vec![0.02; deltas.len()]),
        ],
    )
    .log_x();
    let effective_n = Panel::new(
        "effective N",
        "delta",
        "effective N",
        vec![
            Series::new(
                "LCB",
                deltas.iter().map(|&d| (d, 900.0 * (1.0 - d))).collect(),
            )
            .with_markers(),
        ],
    )
    .log_x();
    let panels = [reward, effective_n];

    let row = out.path("delta-row.png");
    line_panels(&Figure::new(&row, "Delta sweep"), &panels, Layout::Row).unwrap();
    assert_png(&row, DEFAULT_SIZE.0, DEFAULT_SIZE.1);

    let column = out.path("delta-column.png");
    line_panels(
        &Figure::new(&column, "Delta sweep").with_size(700, 900),
        &panels,
        Layout::Column,
    )
    .unwrap();
    assert_png(&column, 700, 900);
}

#[test]
fn line_chart_handles_empty_nan_and_constant() {
    let out = Output::new();
    let cases = [
        ("lines-empty.png", Panel::new("", "x", "y", vec![])),
        (
            "lines-empty-series.png",
            Panel::new("", "x", "y", vec![Series::new("empty", vec![])]).log_y(),
        ),
        (
            "lines-nan.png",
            Panel::new(
                "",
                "x",
                "y",
                vec![
                    Series::new(
                        "gap",
                        vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, 2.5)],
                    )
                    .with_error_bars(vec![0.1, 0.1, f64::NAN, 0.2]),
                ],
            ),
        ),
        (
            "lines-constant.png",
            Panel::new(
                "",
                "x",
                "y",
                vec![Series::new("flat", vec![(0.0, 7.0), (1.0, 7.0)])],
            ),
        ),
        (
            "lines-single-point.png",
            Panel::new("", "x", "y", vec![Series::new("one", vec![(3.0, 3.0)])])
                .log_x()
                .log_y(),
        ),
    ];
    for (name, panel) in cases {
        let path = out.path(name);
        line_chart(&Figure::new(&path, name), &panel).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_png(&path, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    }
}

#[test]
fn line_chart_rejects_bad_input() {
    let out = Output::new();
    let path = out.path("never.png");
    let figure = Figure::new(&path, "");

    let zero_on_log = Panel::new(
        "sweep",
        "x",
        "y",
        vec![Series::new("RS", vec![(1.0, 2.0), (0.0, 3.0)])],
    )
    .log_x();
    let message = line_chart(&figure, &zero_on_log).unwrap_err().to_string();
    assert!(
        message.contains("x = 0 at point 1 of series \"RS\" in panel \"sweep\""),
        "{message}"
    );

    let mismatched = Panel::new(
        "",
        "x",
        "y",
        vec![Series::new("RS", vec![(1.0, 2.0)]).with_error_bars(vec![])],
    );
    let message = line_chart(&figure, &mismatched).unwrap_err().to_string();
    assert!(message.contains("0 error bars for 1 points"), "{message}");

    let negative = Panel::new(
        "",
        "x",
        "y",
        vec![Series::new("RS", vec![(1.0, 2.0)]).with_error_bars(vec![-1.0])],
    );
    let message = line_chart(&figure, &negative).unwrap_err().to_string();
    assert!(message.contains("half-width -1"), "{message}");

    let no_panels = line_panels(&figure, &[], Layout::Row);
    assert!(matches!(no_panels, Err(PlotError::InvalidInput { .. })));
    assert!(!path.exists());
}

#[test]
fn distributions_discrete_and_continuous() {
    let out = Output::new();
    let step_rs: Vec<f64> = (0..1000).map(|i| f64::from(i % 5 == 0)).collect();
    let step_lcb: Vec<f64> = (0..1000).map(|i| f64::from(i % 2 == 0)).collect();
    let smooth_rs = gaussian(0.2, 0.3, 2000, 5);
    let smooth_lcb = gaussian(0.6, 0.2, 2000, 6);
    let smooth_best = gaussian(0.9, 0.1, 500, 7);
    let panels = [
        DistributionPanel {
            title: "alpha = 0.5 (step reward)".to_string(),
            samples: vec![("RS", &step_rs), ("LCB", &step_lcb)],
        },
        DistributionPanel {
            title: "alpha = 1".to_string(),
            samples: vec![
                ("RS", &smooth_rs),
                ("LCB", &smooth_lcb),
                ("best-of-N", &smooth_best),
            ],
        },
        DistributionPanel {
            title: "alpha = 2".to_string(),
            samples: vec![("LCB", &smooth_lcb), ("best-of-N", &smooth_best)],
        },
    ];

    let path = out.path("distributions.png");
    distributions(
        &Figure::new(&path, "Reward distributions"),
        "reward",
        &panels,
    )
    .unwrap();
    let image = assert_png(&path, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    assert!(image.count_color(BLUE) > 200, "RS missing");
    assert!(image.count_color(VERMILLION) > 200, "LCB missing");
    assert!(image.count_color(GREEN) > 50, "best-of-N missing");
}

#[test]
fn distributions_handle_empty_nan_and_many_panels() {
    let out = Output::new();
    let empty: Vec<f64> = Vec::new();
    let nan = vec![f64::NAN, 1.0, 1.0];
    let constant = vec![0.5; 100];
    let smooth = gaussian(0.0, 1.0, 300, 8);
    let panels: Vec<DistributionPanel> = (0..5)
        .map(|i| DistributionPanel {
            title: format!("alpha = {i}"),
            samples: [
                ("RS", &empty),
                ("LCB", &nan),
                ("best-of-N", &constant),
                ("DPS", &smooth),
            ]
            .into_iter()
            .map(|(method, rewards)| (method, rewards.as_slice()))
            .skip(i % 4)
            .collect(),
        })
        .collect();

    let path = out.path("distributions-edge.png");
    distributions(
        &Figure::new(&path, "Edge cases").with_size(1200, 800),
        "reward",
        &panels,
    )
    .unwrap();
    assert_png(&path, 1200, 800);

    let none = distributions(&Figure::new(out.path("never.png"), ""), "reward", &[]);
    assert!(matches!(none, Err(PlotError::InvalidInput { .. })));
}

#[test]
fn figure_size_is_validated() {
    let out = Output::new();
    let path = out.path("never.png");
    let panel = Panel::new("", "x", "y", vec![]);
    for (width, height) in [(10, 10), (960, 0), (9000, 640)] {
        let result = line_chart(&Figure::new(&path, "").with_size(width, height), &panel);
        let message = result.unwrap_err().to_string();
        assert!(message.contains(&format!("{width}x{height}")), "{message}");
    }
    assert!(!path.exists());
}

#[test]
fn write_under_a_file_fails_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let blocker = out.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("plot.png");

    let result = line_chart(&Figure::new(&path, "t"), &Panel::new("", "x", "y", vec![]));

    let error = result.unwrap_err();
    assert!(matches!(error, PlotError::Write { .. }), "{error:?}");
    assert!(
        error.to_string().contains("not-a-folder/plot.png"),
        "{error}"
    );
    let entries: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec!["not-a-folder"]);
}

#[test]
fn failed_rename_leaves_no_temporary_file() {
    let out = tempfile::tempdir().unwrap();
    // A folder at the target path makes the final rename fail after the PNG was written.
    let path = out.path().join("plot.png");
    std::fs::create_dir(&path).unwrap();

    let result = line_chart(&Figure::new(&path, "t"), &Panel::new("", "x", "y", vec![]));

    let error = result.unwrap_err();
    assert!(matches!(error, PlotError::Write { .. }), "{error:?}");
    assert!(error.to_string().contains("plot.png"), "{error}");
    let entries: HashSet<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, HashSet::from(["plot.png".into()]));
    assert!(path.is_dir());
}

#[test]
fn rewrite_replaces_existing_plot() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("nested/folder/plot.png");
    let panel = Panel::new(
        "",
        "x",
        "y",
        vec![Series::new("a", vec![(0.0, 0.0), (1.0, 1.0)])],
    );

    line_chart(&Figure::new(&path, "first").with_size(400, 300), &panel).unwrap();
    line_chart(&Figure::new(&path, "second").with_size(500, 400), &panel).unwrap();

    assert_png(&path, 500, 400);
    let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}
