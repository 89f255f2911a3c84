//! PNG figures drawn from plain data: histograms against an exact density,
//! grouped bar charts, line charts with error bars, and reward distributions.
//!
//! Every function renders into memory with plotters' bitmap backend, encodes
//! the pixels as PNG and writes the file atomically (a temporary file in the
//! same folder, then a rename), so a failed call leaves no partial file. Text
//! uses DejaVu Sans embedded in the binary, so drawing needs no system fonts
//! and works on a headless machine.
//!
//! Non-finite values (NaN, infinities) are skipped, and a note under the
//! figure gives their count. Log axes reject non-positive values with an error
//! that names the value.
//!
//! # Example
//!
//! ```no_run
//! use lcb_bench::plots::{Figure, Panel, Series, line_chart};
//!
//! let envelope = Series::new("b + tau", vec![(0.0, 2.0), (1.0, 1.5), (2.0, 1.1)]);
//! let value = Series::new("V_t", vec![(0.0, 1.8), (1.0, 1.4), (2.0, 1.0)]).dotted();
//! let panel = Panel::new("", "step t", "log units", vec![envelope, value]);
//! line_chart(&Figure::new("trajectory.png", "Envelope along a trajectory"), &panel)?;
//! # Ok::<(), lcb_bench::plots::PlotError>(())
//! ```

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::element::{DashedPathElement, DottedPathElement};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};
use thiserror::Error;

/// DejaVu Sans 2.37 from Debian's fonts-dejavu-core, under the Bitstream Vera
/// licence in `assets/DejaVuSans-LICENSE`.
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Width and height in pixels of a figure whose caller sets no size.
pub const DEFAULT_SIZE: (u32, u32) = (960, 640);

/// Smallest figure in pixels that leaves room for axes, labels and a legend.
pub const MIN_SIZE: (u32, u32) = (320, 240);

/// Largest figure side in pixels, which bounds the RGB buffer at 192 MiB.
pub const MAX_SIDE: u32 = 8192;

/// Largest bin count accepted by [`histograms_vs_density`].
pub const MAX_HISTOGRAM_BINS: usize = 10_000;

/// Reward sets with at most this many distinct values are drawn by
/// [`distributions`] as bars of value frequencies instead of histograms.
pub const MAX_DISCRETE_VALUES: usize = 10;

/// Series colours in order: the Okabe-Ito palette, which stays distinguishable
/// under the common forms of colour blindness. Its yellow is left out because
/// it is hard to see on white, and its black because black marks exact curves.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(110, 110, 110),
];

/// Points at which [`histograms_vs_density`] evaluates the exact density.
const DENSITY_POINTS: usize = 401;

/// Maximum number of note lines under a figure. A longer note is cut with an ellipsis.
const MAX_NOTE_LINES: usize = 4;

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("invalid input for plot {}: {reason}", .path.display())]
    InvalidInput { path: PathBuf, reason: String },

    #[error("failed to load the embedded DejaVu Sans font for plot {}", .path.display())]
    Font { path: PathBuf },

    #[error("failed to draw plot {}: {message}", .path.display())]
    Draw { path: PathBuf, message: String },

    #[error("failed to encode plot {} as PNG: {source}", .path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: png::EncodingError,
    },

    #[error("failed to write plot {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Output file, title and pixel size of one figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// PNG file to write; missing parent folders are created.
    pub path: PathBuf,
    /// Title drawn above all panels, or empty for none.
    pub title: String,
    pub width: u32,
    pub height: u32,
}

impl Figure {
    /// Creates a figure of [`DEFAULT_SIZE`] that is written to `path`.
    pub fn new(path: impl Into<PathBuf>, title: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            title: title.into(),
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
        }
    }

    /// Sets the size in pixels, which must lie between [`MIN_SIZE`] and [`MAX_SIDE`].
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    fn invalid(&self, reason: impl Into<String>) -> PlotError {
        PlotError::InvalidInput {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn validate_size(&self) -> Result<(), PlotError> {
        let (width, height) = (self.width, self.height);
        if width < MIN_SIZE.0 || height < MIN_SIZE.1 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(self.invalid(format!(
                "figure size {width}x{height} is invalid: expected at least {}x{} and at most \
                 {MAX_SIDE} pixels a side",
                MIN_SIZE.0, MIN_SIZE.1
            )));
        }
        Ok(())
    }
}

/// Line pattern of a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineStyle {
    #[default]
    Solid,
    Dashed,
    Dotted,
}

/// One labelled line of a [`Panel`].
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry, or empty to leave the series out of the legend.
    pub label: String,
    /// `(x, y)` points in drawing order. A non-finite coordinate breaks the line.
    pub points: Vec<(f64, f64)>,
    /// Half-widths of vertical error bars, one per point. A NaN half-width draws no bar.
    pub error_bars: Option<Vec<f64>>,
    pub style: LineStyle,
    /// Index into the palette, or `None` for the series' position in its panel.
    /// Give several series one colour to mark them as the same trajectory.
    pub color: Option<usize>,
    /// Draws a filled circle at every point. Isolated points always get one.
    pub markers: bool,
}

impl Series {
    /// Creates a solid line in the colour of its position, without markers or error bars.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            error_bars: None,
            style: LineStyle::Solid,
            color: None,
            markers: false,
        }
    }

    pub fn dashed(mut self) -> Self {
        self.style = LineStyle::Dashed;
        self
    }

    pub fn dotted(mut self) -> Self {
        self.style = LineStyle::Dotted;
        self
    }

    /// Sets the palette index (taken modulo the palette length).
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    /// Sets the error-bar half-widths, one per point.
    pub fn with_error_bars(mut self, half_widths: Vec<f64>) -> Self {
        self.error_bars = Some(half_widths);
        self
    }

    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// One line chart: its own axes, title and legend.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// Caption above the chart, or empty for none.
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

impl Panel {
    /// Creates a panel with linear axes.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            series,
        }
    }

    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }
}

/// Arrangement of several panels in one figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Side by side, left to right.
    #[default]
    Row,
    /// Stacked, top to bottom.
    Column,
}

/// Rewards of several methods under one setting, such as `alpha = 0.5`.
#[derive(Clone, Debug)]
pub struct DistributionPanel<'a> {
    pub title: String,
    /// `(method, rewards)` pairs. A method keeps its colour across panels.
    pub samples: Vec<(&'a str, &'a [f64])>,
}

/// Draws normalised histograms of `samples` over `range` with the exact
/// `density` as a black line on top.
///
/// A bin's height is `count / (n * width)`, where `n` counts every finite
/// sample of that method, so the bars integrate to the fraction of samples
/// inside `range` and match `density` when the sampler is exact. Samples
/// outside `range` are counted in a note. `density` is evaluated at 401
/// evenly spaced points, and points where it is not finite are skipped.
pub fn histograms_vs_density(
    figure: &Figure,
    x_label: &str,
    samples: &[(&str, &[f64])],
    density: &dyn Fn(f64) -> f64,
    range: (f64, f64),
    bins: usize,
) -> Result<(), PlotError> {
    let (lower, upper) = range;
    if !(lower.is_finite() && upper.is_finite() && lower < upper) {
        return Err(figure.invalid(format!(
            "histogram range ({lower}, {upper}) is invalid: expected finite bounds with lower < upper"
        )));
    }
    if bins == 0 || bins > MAX_HISTOGRAM_BINS {
        return Err(figure.invalid(format!(
            "bin count {bins} is invalid: expected 1 to {MAX_HISTOGRAM_BINS}"
        )));
    }

    let mut notes = Vec::new();
    let series = samples
        .iter()
        .enumerate()
        .map(|(index, &(label, values))| {
            let binned = Binned::new(values, lower, upper, bins);
            binned.add_notes(label, &mut notes);
            HistogramSeries {
                label: label.to_string(),
                color: palette(index),
                heights: binned.densities(),
            }
        })
        .collect();

    let step = (upper - lower) / (DENSITY_POINTS - 1) as f64;
    let curve_points = (0..DENSITY_POINTS).map(|i| {
        let x = lower + i as f64 * step;
        (x, density(x))
    });
    let (segments, skipped) = finite_segments(curve_points);
    if skipped > 0 {
        notes.push(format!(
            "exact density is not finite at {skipped} of {DENSITY_POINTS} points"
        ));
    }

    let panel = HistogramPanel {
        caption: String::new(),
        x_label: x_label.to_string(),
        y_label: "density".to_string(),
        lower,
        upper,
        series,
        curve: Some(Curve {
            label: "exact density".to_string(),
            segments,
        }),
    };
    render(figure, &notes, |area, text| {
        draw_histogram_panel(area, &panel, text)
    })
}

/// Draws one bar per category and group, the groups side by side within
/// each category, for example proposals per sample by method across alpha.
///
/// Each group needs one value per category; a NaN value draws no bar. With
/// `log_y` every finite value must be positive.
pub fn grouped_bars(
    figure: &Figure,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    groups: &[(&str, Vec<f64>)],
    log_y: bool,
) -> Result<(), PlotError> {
    let mut notes = Vec::new();
    if categories.is_empty() {
        notes.push("no categories to draw".to_string());
    }

    let mut bar_groups = Vec::with_capacity(groups.len());
    for (index, (label, values)) in groups.iter().enumerate() {
        if values.len() != categories.len() {
            return Err(figure.invalid(format!(
                "group {label:?} has {} values for {} categories; expected one value per category",
                values.len(),
                categories.len()
            )));
        }
        if log_y {
            let bad = values.iter().zip(categories).find(|(v, _)| **v <= 0.0);
            if let Some((value, category)) = bad {
                return Err(figure.invalid(format!(
                    "log-scale y axis cannot show value {value} of group {label:?} in category \
                     {category:?}; use a linear axis or drop non-positive values"
                )));
            }
        }
        let skipped = values.iter().filter(|v| !v.is_finite()).count();
        if skipped > 0 {
            notes.push(format!("{label}: {skipped} non-finite values not drawn"));
        }
        bar_groups.push(BarGroup {
            label: label.to_string(),
            color: palette(index),
            values: values.clone(),
        });
    }

    let panel = BarPanel {
        caption: String::new(),
        x_label: x_label.to_string(),
        y_label: y_label.to_string(),
        categories: categories.to_vec(),
        groups: bar_groups,
        log_y,
    };
    render(figure, &notes, |area, text| {
        draw_bar_panel(area, &panel, text)
    })
}

/// Draws one line chart. The panel title, if any, goes under the figure title.
pub fn line_chart(figure: &Figure, panel: &Panel) -> Result<(), PlotError> {
    line_panels(figure, std::slice::from_ref(panel), Layout::Row)
}

/// Draws several line charts in one figure, each with its own axes and legend.
///
/// Use it for a sweep with two measures (reward mean and effective N against
/// delta) or for trajectories, where an envelope (solid), the exact value
/// (dotted) and a global bound (dashed) share one colour per trajectory.
pub fn line_panels(figure: &Figure, panels: &[Panel], layout: Layout) -> Result<(), PlotError> {
    if panels.is_empty() {
        return Err(figure.invalid("no panels to draw: expected at least one"));
    }

    let mut notes = Vec::new();
    let prepared = panels
        .iter()
        .map(|panel| prepare_line_panel(figure, panel, &mut notes))
        .collect::<Result<Vec<_>, _>>()?;

    let shape = match layout {
        Layout::Row => (1, panels.len()),
        Layout::Column => (panels.len(), 1),
    };
    render(figure, &notes, |area, text| {
        for (cell, plot) in area.split_evenly(shape).iter().zip(&prepared) {
            draw_line_panel(cell, plot, text)?;
        }
        Ok(())
    })
}

/// Draws the reward distribution of each method, one panel per setting.
///
/// A panel whose finite rewards take at most [`MAX_DISCRETE_VALUES`]
/// distinct values (a 0/1 step reward, say) shows bars of each value's
/// frequency per method. Any other panel shows normalised histograms over
/// the range of its rewards, with `sqrt(n)` bins clamped to 10..=50. Legend
/// entries carry each method's mean reward.
pub fn distributions(
    figure: &Figure,
    x_label: &str,
    panels: &[DistributionPanel<'_>],
) -> Result<(), PlotError> {
    if panels.is_empty() {
        return Err(figure.invalid("no panels to draw: expected at least one"));
    }

    let mut methods: Vec<&str> = Vec::new();
    for panel in panels {
        for &(method, _) in &panel.samples {
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
    }
    let color_of = |method: &str| palette(methods.iter().position(|m| *m == method).unwrap_or(0));

    let mut notes = Vec::new();
    let prepared: Vec<DistributionPlot> = panels
        .iter()
        .map(|panel| prepare_distribution_panel(panel, x_label, &color_of, &mut notes))
        .collect();

    render(figure, &notes, |area, text| {
        for (cell, plot) in area
            .split_evenly(grid_shape(panels.len()))
            .iter()
            .zip(&prepared)
        {
            match plot {
                DistributionPlot::Bars(bars) => draw_bar_panel(cell, bars, text)?,
                DistributionPlot::Histogram(histogram) => {
                    draw_histogram_panel(cell, histogram, text)?
                }
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Rendering, encoding and writing.

type Area<'b> = DrawingArea<Canvas<'b>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, Canvas<'b>, Cartesian2d<TickedRange, TickedRange>>;
type RenderResult<T> = Result<T, Box<dyn StdError>>;

/// Text heights in pixels, scaled with the figure from a 960x640 base.
struct TextSizes {
    scale: f64,
    title: f64,
    caption: f64,
    axis: f64,
    tick: f64,
    legend: f64,
    note: f64,
}

impl TextSizes {
    fn for_size(width: u32, height: u32) -> Self {
        let scale = (f64::from(width) / 960.0)
            .min(f64::from(height) / 640.0)
            .clamp(0.6, 4.0);
        Self {
            scale,
            title: 24.0 * scale,
            caption: 18.0 * scale,
            axis: 16.0 * scale,
            tick: 14.0 * scale,
            legend: 14.0 * scale,
            note: 13.0 * scale,
        }
    }
}

fn text_style<'a>(size: f64) -> TextStyle<'a> {
    TextStyle::from((FontFamily::SansSerif, size).into_font())
}

fn palette(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Parses the embedded font and registers it as plotters' "sans-serif"
/// family, once per process. plotters measures text with the registered
/// font, and [`Canvas`] draws the glyphs with the parsed one.
fn embedded_font(path: &Path) -> Result<&'static FontRef<'static>, PlotError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    let font = FONT.get_or_init(|| {
        let family = FontFamily::SansSerif.as_str();
        plotters::style::register_font(family, FontStyle::Normal, FONT_BYTES).ok()?;
        FontRef::try_from_slice(FONT_BYTES).ok()
    });
    font.as_ref().ok_or_else(|| PlotError::Font {
        path: path.to_path_buf(),
    })
}

/// plotters' bitmap backend with its own glyph placement.
///
/// plotters 0.3.7 draws each ab_glyph outline at the pen position and drops
/// the glyph's left side bearing, so narrow letters such as `i` and `t` sit
/// too far left ("densi ty"). This backend draws every glyph at its true
/// bounds inside the text box that plotters measured, so layout is
/// unchanged. It always uses the embedded font, whatever family a style names.
struct Canvas<'a> {
    bitmap: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

type CanvasResult<'a> =
    Result<(), DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.bitmap.get_size()
    }

    fn ensure_prepared(&mut self) -> CanvasResult<'a> {
        self.bitmap.ensure_prepared()
    }

    fn present(&mut self) -> CanvasResult<'a> {
        self.bitmap.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> CanvasResult<'a> {
        self.bitmap.draw_pixel(point, color)
    }

    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> CanvasResult<'a> {
        self.bitmap.draw_line(from, to, style)
    }

    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> CanvasResult<'a> {
        self.bitmap.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> CanvasResult<'a> {
        self.bitmap.draw_path(path, style)
    }

    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> CanvasResult<'a> {
        self.bitmap.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> CanvasResult<'a> {
        self.bitmap.fill_polygon(vertices, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> CanvasResult<'a> {
        self.bitmap.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> CanvasResult<'a> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }

        // Anchor plotters' text box at `pos`, exactly as its default draw_text does.
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|error| DrawingErrorKind::FontError(Box::new(error)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();

        // plotters measures with as_scaled(size), so the advances here match its box width.
        let font = self.font.as_scaled(style.size() as f32);
        let cap_height = font
            .outline_glyph(font.scaled_glyph('H'))
            .map_or(0.7 * style.size() as f32, |outline| {
                outline.px_bounds().height()
            });
        // Capital letters are centred vertically in the box.
        let baseline = 0.5 * (height as f32 + cap_height);

        let mut caret = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                caret += font.kern(previous, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), point(caret, baseline));
            caret += font.h_advance(id);

            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if result.is_err() {
                    return;
                }
                let x = bounds.min.x as i32 + gx as i32 + dx - min_x;
                let y = bounds.min.y as i32 + gy as i32 + dy - min_y;
                let (tx, ty) = transform.transform(x, y);
                let pixel = BackendColor {
                    alpha: color.alpha * f64::from(coverage),
                    rgb: color.rgb,
                };
                result = self.bitmap.draw_pixel((pos.0 + tx, pos.1 + ty), pixel);
            });
            result?;
        }
        Ok(())
    }
}

/// Draws the title and the notes, hands the rest of the figure to
/// `draw_body`, then encodes the pixels and writes the PNG atomically.
fn render(
    figure: &Figure,
    notes: &[String],
    draw_body: impl FnOnce(&Area<'_>, &TextSizes) -> RenderResult<()>,
) -> Result<(), PlotError> {
    figure.validate_size()?;
    let font = embedded_font(&figure.path)?;

    let (width, height) = (figure.width, figure.height);
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    draw_figure(&mut pixels, font, figure, notes, draw_body).map_err(|error| PlotError::Draw {
        path: figure.path.clone(),
        message: error.to_string(),
    })?;

    let png = encode_png(&pixels, width, height).map_err(|source| PlotError::Encode {
        path: figure.path.clone(),
        source,
    })?;
    write_atomic(&figure.path, &png)
}

fn draw_figure(
    pixels: &mut [u8],
    font: &'static FontRef<'static>,
    figure: &Figure,
    notes: &[String],
    draw_body: impl FnOnce(&Area<'_>, &TextSizes) -> RenderResult<()>,
) -> RenderResult<()> {
    let text = TextSizes::for_size(figure.width, figure.height);
    let canvas = Canvas {
        bitmap: BitMapBackend::with_buffer(pixels, (figure.width, figure.height)),
        font,
    };
    let root = canvas.into_drawing_area();
    root.fill(&WHITE)?;

    let mut body = if figure.title.is_empty() {
        root.clone()
    } else {
        root.titled(&figure.title, text_style(text.title))?
    };

    if !notes.is_empty() {
        let lines = wrap_note(notes, figure.width, text.note);
        let line_height = text.note * 1.35;
        let strip = (lines.len() as f64 * line_height + 10.0 * text.scale) as i32;
        let body_height = body.dim_in_pixel().1 as i32;
        let (upper, lower) = body.split_vertically(body_height - strip);
        let style = text_style(text.note).color(&RGBColor(80, 80, 80));
        for (i, line) in lines.iter().enumerate() {
            let y = (4.0 * text.scale + i as f64 * line_height) as i32;
            lower.draw(&Text::new(
                line.as_str(),
                ((12.0 * text.scale) as i32, y),
                &style,
            ))?;
        }
        body = upper;
    }

    draw_body(&body, &text)?;
    root.present()?;
    Ok(())
}

/// Joins the notes into one "Note: ..." sentence wrapped to the figure width.
fn wrap_note(notes: &[String], width: u32, size: f64) -> Vec<String> {
    // Characters of DejaVu Sans average about 0.45 of the text size in these
    // notes (an estimate from rendered figures), so 0.5 leaves some slack.
    let max_chars = ((f64::from(width) - 24.0) / (0.5 * size)).max(20.0) as usize;
    let sentence = format!("Note: {}.", notes.join("; "));

    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in sentence.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max_chars {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);

    if lines.len() > MAX_NOTE_LINES {
        lines.truncate(MAX_NOTE_LINES);
        if let Some(last) = lines.last_mut() {
            last.push_str(" …");
        }
    }
    lines
}

fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it
/// over `path`. On failure the temporary file is removed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let to_error = |source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(to_error)?;
    lcb_learn::files::write_atomic(dir, path, bytes).map_err(|err| to_error(err.source))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Axes: ranges, ticks and tick labels.

/// One axis in plot space: data values on a linear axis, their base-10
/// logarithms on a log axis, or category indices `0, 1, ...`.
#[derive(Clone)]
struct Axis {
    label: String,
    log: bool,
    categorical: bool,
    lo: f64,
    hi: f64,
    /// Ticks with labels and grid lines, in plot space.
    ticks: Vec<f64>,
    tick_labels: Vec<String>,
    /// Ticks with only faint grid lines (log axes: 2 to 9 times a power of 10).
    minor_ticks: Vec<f64>,
}

impl Axis {
    fn new(label: &str, log: bool, (lo, hi): (f64, f64)) -> Self {
        if log {
            Self::log(label, lo, hi)
        } else {
            Self::linear(label, lo, hi)
        }
    }

    fn linear(label: &str, lo: f64, hi: f64) -> Self {
        let (ticks, step) = linear_ticks(lo, hi);
        let tick_labels = ticks.iter().map(|&t| format_tick(t, step)).collect();
        Self {
            label: label.to_string(),
            log: false,
            categorical: false,
            lo,
            hi,
            ticks,
            tick_labels,
            minor_ticks: Vec::new(),
        }
    }

    /// Builds a log axis over `10^lo ..= 10^hi`: ticks at powers of 10, or at 1, 2
    /// and 5 times them (failing that, 1 to 9 times them) when fewer than
    /// three powers of 10 fall in the range.
    fn log(label: &str, lo: f64, hi: f64) -> Self {
        let in_range = |t: f64| t >= lo - 1e-9 && t <= hi + 1e-9;
        let first = lo.floor() as i64;
        let last = hi.ceil() as i64;
        let multiples = |factors: &[f64]| -> Vec<f64> {
            (first..=last)
                .flat_map(|k| {
                    factors
                        .iter()
                        .map(move |m| (m * 10f64.powi(k as i32)).log10())
                })
                .filter(|&t| in_range(t))
                .collect()
        };

        let decades = multiples(&[1.0]);
        let all_multiples = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let (ticks, minor_ticks) = if decades.len() >= 3 {
            let stride = decades.len().div_ceil(8);
            let ticks: Vec<f64> = decades.iter().copied().step_by(stride).collect();
            let minor = if stride == 1 && decades.len() <= 7 {
                all_multiples
                    .into_iter()
                    .filter(|t| !ticks.contains(t))
                    .collect()
            } else {
                Vec::new()
            };
            (ticks, minor)
        } else {
            let one_two_five = multiples(&[1.0, 2.0, 5.0]);
            if one_two_five.len() >= 2 {
                let minor = all_multiples
                    .into_iter()
                    .filter(|t| !one_two_five.contains(t))
                    .collect();
                (one_two_five, minor)
            } else if all_multiples.len() >= 2 {
                (all_multiples, Vec::new())
            } else {
                let (values, _) = linear_ticks(10f64.powf(lo), 10f64.powf(hi));
                (
                    values
                        .into_iter()
                        .filter(|&v| v > 0.0)
                        .map(f64::log10)
                        .collect(),
                    Vec::new(),
                )
            }
        };

        let tick_labels = ticks.iter().map(|&t| format_value(10f64.powf(t))).collect();
        Self {
            label: label.to_string(),
            log: true,
            categorical: false,
            lo,
            hi,
            ticks,
            tick_labels,
            minor_ticks,
        }
    }

    fn categories(label: &str, names: &[String]) -> Self {
        Self {
            label: label.to_string(),
            log: false,
            categorical: true,
            lo: -0.5,
            hi: names.len().max(1) as f64 - 0.5,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            tick_labels: names.to_vec(),
            minor_ticks: Vec::new(),
        }
    }

    /// Returns the same axis with its upper bound moved to `hi`, with new ticks.
    fn with_upper_bound(&self, hi: f64) -> Self {
        Self::new(&self.label, self.log, (self.lo, hi))
    }

    fn ranged(&self) -> TickedRange {
        TickedRange {
            linear: (self.lo..self.hi).into(),
            ticks: self.ticks.clone(),
            minor_ticks: self.minor_ticks.clone(),
        }
    }

    /// Returns the label of the tick at `t`, or `t` itself formatted.
    fn format(&self, t: f64) -> String {
        let tolerance = 1e-9 * (self.hi - self.lo).abs().max(f64::MIN_POSITIVE);
        self.ticks
            .iter()
            .position(|&tick| (tick - t).abs() <= tolerance)
            .map(|i| self.tick_labels[i].clone())
            .unwrap_or_else(|| format_value(t))
    }
}

/// A linear plotters range that draws exactly the ticks of an [`Axis`].
struct TickedRange {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
    minor_ticks: Vec<f64>,
}

impl Ranged for TickedRange {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor_ticks.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// Smallest and largest finite values seen, in plot space.
#[derive(Clone, Copy, Debug)]
struct Extent {
    min: f64,
    max: f64,
}

impl Extent {
    fn new() -> Self {
        Self {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, value: f64) {
        if value.is_finite() {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
    }

    /// Returns the range widened by `margin` of its span on each side. A
    /// single value gets half a unit (on a log axis: half a decade) or 10 %
    /// of itself around it, and an empty extent gives `(0, 1)`.
    fn bounds(&self, margin: f64, log: bool) -> (f64, f64) {
        if self.min > self.max {
            return (0.0, 1.0);
        }
        let span = self.max - self.min;
        let magnitude = self.min.abs().max(self.max.abs());
        if span <= 1e-9 * magnitude || span == 0.0 {
            let pad = if log || magnitude == 0.0 {
                0.5
            } else {
                0.1 * magnitude
            };
            return (self.min - pad, self.max + pad);
        }
        (self.min - margin * span, self.max + margin * span)
    }

    /// Like [`Extent::bounds`] on a linear axis, but starting at 0 when no
    /// value is negative, as bars and histograms need.
    fn bounds_from_zero(&self, margin: f64) -> (f64, f64) {
        let mut with_zero = *self;
        with_zero.add(0.0);
        let (lo, hi) = with_zero.bounds(margin, false);
        if with_zero.min >= 0.0 {
            (0.0, hi)
        } else {
            (lo, hi)
        }
    }
}

/// Returns ticks at multiples of a step of 1, 2 or 5 times a power of 10
/// that gives about six ticks over `[lo, hi]`, and that step.
fn linear_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (Vec::new(), 1.0);
    }
    let raw = span / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let factor = match raw / magnitude {
        r if r <= 1.0 => 1.0,
        r if r <= 2.0 => 2.0,
        r if r <= 5.0 => 5.0,
        _ => 10.0,
    };
    let step = factor * magnitude;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

/// Formats a linear tick with as many decimals as its step needs, or in
/// scientific notation for very large or very small numbers.
fn format_tick(value: f64, step: f64) -> String {
    if value == 0.0 || value.abs() < step * 1e-6 {
        return "0".to_string();
    }
    if value.abs() >= 1e6 || step < 1e-3 {
        return format_scientific(value);
    }
    let decimals = (-step.log10() - 1e-6).ceil().max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// Formats a value with up to four significant digits, in scientific
/// notation outside `[1e-3, 1e6)`.
fn format_value(value: f64) -> String {
    if value == 0.0 {
        // Negative zero, from a sum of no terms, prints as 0 too.
        return "0".to_string();
    }
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    if !(1e-3..1e6).contains(&magnitude) {
        return format_scientific(value);
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn format_scientific(value: f64) -> String {
    let text = format!("{value:.3e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

fn to_plot(log: bool, value: f64) -> f64 {
    if log { value.log10() } else { value }
}

/// Splits points into runs of finite points. Returns the runs and the
/// number of points dropped.
fn finite_segments(points: impl Iterator<Item = (f64, f64)>) -> (Vec<Vec<(f64, f64)>>, usize) {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    let mut skipped = 0;
    for (x, y) in points {
        if x.is_finite() && y.is_finite() {
            current.push((x, y));
        } else {
            skipped += 1;
            if !current.is_empty() {
                segments.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    (segments, skipped)
}

// ---------------------------------------------------------------------------
// Charts, legends and the legend's corner.

/// Pixels around the plotting area of a chart: the y label area on the
/// left, the x label area below, the caption above, and the margin on every side.
struct Insets {
    y_labels: f64,
    x_labels: f64,
    caption: f64,
    margin: f64,
}

impl Insets {
    fn new(y: &Axis, has_caption: bool, text: &TextSizes) -> Self {
        // Digits and signs of DejaVu Sans are at most 0.55 of the text size wide
        // (checked by a test), so 0.6 leaves some slack.
        let widest_y_label = y
            .tick_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1);
        Self {
            y_labels: widest_y_label as f64 * 0.6 * text.tick + 1.8 * text.axis + 12.0,
            x_labels: 1.5 * text.tick + 1.8 * text.axis + 8.0,
            caption: if has_caption { 1.6 * text.caption } else { 0.0 },
            margin: 12.0 * text.scale,
        }
    }

    /// Estimates the size in pixels of the plotting area of a chart on `area`.
    fn plotting_size(&self, area: &Area<'_>) -> (f64, f64) {
        let (width, height) = area.dim_in_pixel();
        (
            (f64::from(width) - self.y_labels - 2.0 * self.margin).max(1.0),
            (f64::from(height) - self.x_labels - self.caption - 2.0 * self.margin).max(1.0),
        )
    }
}

fn build_chart<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    x: &Axis,
    y: &Axis,
    text: &TextSizes,
) -> RenderResult<Chart<'a, 'b>> {
    let insets = Insets::new(y, !caption.is_empty(), text);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(insets.margin as u32)
        .x_label_area_size(insets.x_labels as u32)
        .y_label_area_size(insets.y_labels as u32);
    if !caption.is_empty() {
        builder.caption(caption, text_style(text.caption));
    }
    let mut chart = builder.build_cartesian_2d(x.ranged(), y.ranged())?;

    let x_format = |t: &f64| x.format(*t);
    let y_format = |t: &f64| y.format(*t);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x.label.as_str())
        .y_desc(y.label.as_str())
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .label_style(text_style(text.tick))
        .axis_desc_style(text_style(text.axis))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05));
    if x.categorical {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    Ok(chart)
}

/// Legend entries of one chart and the paths drawn under them, used to put
/// the legend where it hides no data.
#[derive(Default)]
struct Legend {
    labels: Vec<String>,
    /// Drawn paths in plot space.
    paths: Vec<Vec<(f64, f64)>>,
}

impl Legend {
    fn add_label(&mut self, label: &str) {
        self.labels.push(label.to_string());
    }

    fn add_path(&mut self, path: &[(f64, f64)]) {
        self.paths.push(path.to_vec());
    }

    /// Chooses the legend's corner: the first of upper right, upper left,
    /// lower right and lower left whose legend-sized box covers no drawn
    /// point. When every corner covers some, the y axis is raised so the
    /// data stay below a legend in the upper right. A legend taller than
    /// 45 % of the chart is not worth that, so it goes to the corner that
    /// covers the fewest points. Returns the y axis to draw and the corner.
    fn place(
        &self,
        area: &Area<'_>,
        caption: &str,
        x: &Axis,
        y: Axis,
        text: &TextSizes,
    ) -> (Axis, SeriesLabelPosition) {
        if self.labels.is_empty() {
            return (y, SeriesLabelPosition::UpperRight);
        }

        // Estimated legend size: the sample line, the widest label and the
        // margins. At 0.6 of the text size a character, wider than DejaVu
        // Sans's average, the estimate errs on the wide side.
        let widest = self
            .labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        let legend_width = 0.6 * text.legend * widest as f64 + 70.0 * text.scale;
        let legend_height = self.labels.len() as f64 * 1.3 * text.legend + 30.0 * text.scale;
        let (plot_width, plot_height) =
            Insets::new(&y, !caption.is_empty(), text).plotting_size(area);
        let w = legend_width / plot_width;
        let h = legend_height / plot_height;

        let counts = self.corner_counts(x, &y, w, h);
        let fewest = counts.iter().copied().min().unwrap_or(0);
        if fewest == 0 || h > 0.45 {
            let corner = match counts.iter().position(|&n| n == fewest) {
                Some(1) => SeriesLabelPosition::UpperLeft,
                Some(2) => SeriesLabelPosition::LowerRight,
                Some(3) => SeriesLabelPosition::LowerLeft,
                _ => SeriesLabelPosition::UpperRight,
            };
            return (y, corner);
        }

        // On the raised axis every point has v <= 1 - h, below the legend box.
        let raised = y.with_upper_bound(y.lo + (y.hi - y.lo) / (1.0 - h));
        (raised, SeriesLabelPosition::UpperRight)
    }

    /// Counts the points inside a `w` by `h` box (fractions of the plotting
    /// area) in the upper right, upper left, lower right and lower left
    /// corners, taking a point every 0.5 % of the plotting area along each path.
    fn corner_counts(&self, x: &Axis, y: &Axis, w: f64, h: f64) -> [usize; 4] {
        let scale =
            |(px, py): (f64, f64)| ((px - x.lo) / (x.hi - x.lo), (py - y.lo) / (y.hi - y.lo));
        let mut counts = [0; 4];
        let mut count = |(u, v): (f64, f64)| {
            let (right, left, top, bottom) = (u >= 1.0 - w, u <= w, v >= 1.0 - h, v <= h);
            let inside = [right && top, left && top, right && bottom, left && bottom];
            for (corner, inside) in inside.into_iter().enumerate() {
                counts[corner] += usize::from(inside);
            }
        };

        for path in &self.paths {
            let scaled: Vec<(f64, f64)> = path.iter().map(|&p| scale(p)).collect();
            for pair in scaled.windows(2) {
                let ((u0, v0), (u1, v1)) = (pair[0], pair[1]);
                let steps = ((u1 - u0).hypot(v1 - v0) / 0.005).ceil().clamp(1.0, 400.0) as usize;
                for k in 0..steps {
                    let t = k as f64 / steps as f64;
                    count((u0 + t * (u1 - u0), v0 + t * (v1 - v0)));
                }
            }
            if let Some(&last) = scaled.last() {
                count(last);
            }
        }
        counts
    }

    fn draw<'a, 'b: 'a>(
        &self,
        chart: &mut Chart<'a, 'b>,
        corner: SeriesLabelPosition,
        text: &TextSizes,
    ) -> RenderResult<()> {
        if self.labels.is_empty() {
            return Ok(());
        }
        chart
            .configure_series_labels()
            .position(corner)
            .margin((10.0 * text.scale) as u32)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(text_style(text.legend))
            .draw()?;
        Ok(())
    }
}

/// Rows and columns for `count` panels: one row up to three, then at most
/// four columns.
fn grid_shape(count: usize) -> (usize, usize) {
    if count <= 3 {
        return (1, count.max(1));
    }
    let columns = count.div_ceil(2).min(4);
    (count.div_ceil(columns), columns)
}

// ---------------------------------------------------------------------------
// Histogram panels.

/// Counts of finite samples in equal-width bins over `[lower, upper]`.
struct Binned {
    counts: Vec<usize>,
    width: f64,
    total: usize,
    finite: usize,
    outside: usize,
    lower: f64,
    upper: f64,
}

impl Binned {
    fn new(values: &[f64], lower: f64, upper: f64, bins: usize) -> Self {
        let width = (upper - lower) / bins as f64;
        let mut counts = vec![0; bins];
        let mut finite = 0;
        let mut outside = 0;
        for &value in values.iter().filter(|v| v.is_finite()) {
            finite += 1;
            if value < lower || value > upper {
                outside += 1;
                continue;
            }
            // The upper bound itself falls in the last bin.
            let index = (((value - lower) / width) as usize).min(bins - 1);
            counts[index] += 1;
        }
        Self {
            counts,
            width,
            total: values.len(),
            finite,
            outside,
            lower,
            upper,
        }
    }

    /// Returns `count / (finite samples * bin width)` per bin, or an empty
    /// vector when there are no finite samples.
    fn densities(&self) -> Vec<f64> {
        if self.finite == 0 {
            return Vec::new();
        }
        let scale = 1.0 / (self.finite as f64 * self.width);
        self.counts.iter().map(|&c| c as f64 * scale).collect()
    }

    fn add_notes(&self, label: &str, notes: &mut Vec<String>) {
        if self.total == 0 {
            notes.push(format!("{label}: no samples"));
        }
        let non_finite = self.total - self.finite;
        if non_finite > 0 {
            notes.push(format!("{label}: {non_finite} non-finite samples skipped"));
        }
        if self.outside > 0 {
            notes.push(format!(
                "{label}: {} of {} samples outside [{}, {}] not drawn",
                self.outside,
                self.finite,
                format_value(self.lower),
                format_value(self.upper)
            ));
        }
    }
}

struct HistogramPanel {
    caption: String,
    x_label: String,
    y_label: String,
    lower: f64,
    upper: f64,
    series: Vec<HistogramSeries>,
    curve: Option<Curve>,
}

/// Bin heights over the panel's range, empty when there is nothing to draw.
struct HistogramSeries {
    label: String,
    color: RGBColor,
    heights: Vec<f64>,
}

/// An exact curve drawn in black, broken where it is not finite.
struct Curve {
    label: String,
    segments: Vec<Vec<(f64, f64)>>,
}

fn draw_histogram_panel(
    area: &Area<'_>,
    panel: &HistogramPanel,
    text: &TextSizes,
) -> RenderResult<()> {
    let drawn: Vec<&HistogramSeries> = panel
        .series
        .iter()
        .filter(|s| !s.heights.is_empty())
        .collect();
    let outlines: Vec<Vec<(f64, f64)>> = drawn
        .iter()
        .map(|s| step_outline(panel.lower, bin_width(panel, s), &s.heights))
        .collect();

    let mut legend = Legend::default();
    let mut y_extent = Extent::new();
    for (series, outline) in drawn.iter().zip(&outlines) {
        legend.add_label(&series.label);
        legend.add_path(outline);
        series.heights.iter().for_each(|&h| y_extent.add(h));
    }
    if let Some(curve) = &panel.curve {
        if !curve.segments.is_empty() {
            legend.add_label(&curve.label);
        }
        for segment in &curve.segments {
            legend.add_path(segment);
            segment.iter().for_each(|&(_, y)| y_extent.add(y));
        }
    }

    let x = Axis::linear(&panel.x_label, panel.lower, panel.upper);
    let (y_lo, y_hi) = y_extent.bounds_from_zero(0.08);
    let y = Axis::linear(&panel.y_label, y_lo, y_hi);
    let (y, corner) = legend.place(area, &panel.caption, &x, y, text);
    let mut chart = build_chart(area, &panel.caption, &x, &y, text)?;

    for (series, outline) in drawn.iter().zip(outlines) {
        let width = bin_width(panel, series);
        let fill = series.color.mix(0.15).filled();
        chart.draw_series(series.heights.iter().enumerate().map(|(i, &h)| {
            let left = panel.lower + i as f64 * width;
            Rectangle::new([(left, 0.0), (left + width, h)], fill)
        }))?;

        let stroke = series.color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(outline, stroke))?
            .label(series.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], stroke));
    }

    if let Some(curve) = &panel.curve {
        let stroke = BLACK.stroke_width(2);
        for (i, segment) in curve.segments.iter().enumerate() {
            let annotation = chart.draw_series(LineSeries::new(segment.iter().copied(), stroke))?;
            if i == 0 {
                annotation
                    .label(curve.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], stroke));
            }
        }
    }

    legend.draw(&mut chart, corner, text)
}

fn bin_width(panel: &HistogramPanel, series: &HistogramSeries) -> f64 {
    (panel.upper - panel.lower) / series.heights.len() as f64
}

/// Returns the outline of a histogram: up from 0 at the left edge, across
/// each bin's top, and down to 0 at the right edge.
fn step_outline(lower: f64, width: f64, heights: &[f64]) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(2 * heights.len() + 2);
    points.push((lower, 0.0));
    for (i, &h) in heights.iter().enumerate() {
        let left = lower + i as f64 * width;
        points.push((left, h));
        points.push((left + width, h));
    }
    points.push((lower + heights.len() as f64 * width, 0.0));
    points
}

// ---------------------------------------------------------------------------
// Bar panels.

struct BarPanel {
    caption: String,
    x_label: String,
    y_label: String,
    categories: Vec<String>,
    groups: Vec<BarGroup>,
    log_y: bool,
}

/// One value per category. A non-finite value draws no bar.
struct BarGroup {
    label: String,
    color: RGBColor,
    values: Vec<f64>,
}

fn draw_bar_panel(area: &Area<'_>, panel: &BarPanel, text: &TextSizes) -> RenderResult<()> {
    let mut y_extent = Extent::new();
    for group in &panel.groups {
        group
            .values
            .iter()
            .for_each(|&v| y_extent.add(to_plot(panel.log_y, v)));
    }
    let x = Axis::categories(&panel.x_label, &panel.categories);
    let y = if panel.log_y {
        let (lo, hi) = y_extent.bounds(0.08, true);
        Axis::log(&panel.y_label, lo, hi)
    } else {
        let (lo, hi) = y_extent.bounds_from_zero(0.08);
        Axis::linear(&panel.y_label, lo, hi)
    };
    // Log bars rise from the bottom of the axis, linear bars from zero.
    let base = if panel.log_y { y.lo } else { 0.0 };

    // The groups of a category share 80 % of its width, with a thin gap between bars.
    let bar_width = 0.8 / panel.groups.len().max(1) as f64;
    let gap = 0.06 * bar_width;
    let mut legend = Legend::default();
    let mut bars_by_group = Vec::with_capacity(panel.groups.len());
    for (j, group) in panel.groups.iter().enumerate() {
        let mut bars = Vec::new();
        for (i, &value) in group.values.iter().enumerate() {
            let top = to_plot(panel.log_y, value);
            if !top.is_finite() {
                continue;
            }
            let left = i as f64 - 0.4 + j as f64 * bar_width + gap;
            let right = left + bar_width - 2.0 * gap;
            for edge in [left, 0.5 * (left + right), right] {
                legend.add_path(&[(edge, base), (edge, top)]);
            }
            bars.push([(left, base.min(top)), (right, base.max(top))]);
        }
        legend.add_label(&group.label);
        bars_by_group.push(bars);
    }

    let (y, corner) = legend.place(area, &panel.caption, &x, y, text);
    let mut chart = build_chart(area, &panel.caption, &x, &y, text)?;
    for (group, bars) in panel.groups.iter().zip(bars_by_group) {
        let fill = group.color.filled();
        chart
            .draw_series(
                bars.into_iter()
                    .map(|corners| Rectangle::new(corners, fill)),
            )?
            .label(group.label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], fill));
    }

    legend.draw(&mut chart, corner, text)
}

// ---------------------------------------------------------------------------
// Line panels.

/// A [`Panel`] checked and moved to plot space.
struct LinePlot {
    caption: String,
    x: Axis,
    y: Axis,
    traces: Vec<Trace>,
}

struct Trace {
    label: String,
    color: RGBColor,
    style: LineStyle,
    markers: bool,
    segments: Vec<Vec<(f64, f64)>>,
    /// `(x, low, y, high)` tuples, where `low` is `None` when it falls below zero on a log axis.
    error_bars: Vec<(f64, Option<f64>, f64, f64)>,
}

fn prepare_line_panel(
    figure: &Figure,
    panel: &Panel,
    notes: &mut Vec<String>,
) -> Result<LinePlot, PlotError> {
    let name = if panel.title.is_empty() {
        String::new()
    } else {
        format!(" in panel {:?}", panel.title)
    };
    let mut x_extent = Extent::new();
    let mut y_extent = Extent::new();
    let mut traces = Vec::with_capacity(panel.series.len());

    for (index, series) in panel.series.iter().enumerate() {
        let label = &series.label;
        if let Some(half_widths) = &series.error_bars
            && half_widths.len() != series.points.len()
        {
            return Err(figure.invalid(format!(
                "series {label:?}{name} has {} error bars for {} points; expected one half-width per point",
                half_widths.len(),
                series.points.len()
            )));
        }
        if series.points.is_empty() {
            notes.push(format!("series {label:?}{name} has no points"));
        }

        for (i, &(x, y)) in series.points.iter().enumerate() {
            for (axis, log, value) in [("x", panel.log_x, x), ("y", panel.log_y, y)] {
                if log && value <= 0.0 {
                    return Err(figure.invalid(format!(
                        "log-scale {axis} axis cannot show {axis} = {value} at point {i} of series \
                         {label:?}{name}; use a linear axis or drop non-positive values"
                    )));
                }
            }
        }

        let plot_points = series
            .points
            .iter()
            .map(|&(x, y)| (to_plot(panel.log_x, x), to_plot(panel.log_y, y)));
        let (segments, skipped) = finite_segments(plot_points);
        if skipped > 0 {
            notes.push(format!(
                "series {label:?}{name}: {skipped} non-finite points skipped"
            ));
        }
        for &(x, y) in segments.iter().flatten() {
            x_extent.add(x);
            y_extent.add(y);
        }

        let mut error_bars = Vec::new();
        for (i, &half_width) in series.error_bars.iter().flatten().enumerate() {
            let (x, y) = series.points[i];
            if half_width < 0.0 {
                return Err(figure.invalid(format!(
                    "error bar half-width {half_width} at point {i} of series {label:?}{name} is \
                     negative; expected a value >= 0 or NaN for no bar"
                )));
            }
            if !(half_width.is_finite() && x.is_finite() && y.is_finite()) {
                continue;
            }
            let high = to_plot(panel.log_y, y + half_width);
            let low = (!panel.log_y || y - half_width > 0.0)
                .then(|| to_plot(panel.log_y, y - half_width));
            y_extent.add(high);
            if let Some(low) = low {
                y_extent.add(low);
            }
            error_bars.push((to_plot(panel.log_x, x), low, to_plot(panel.log_y, y), high));
        }

        traces.push(Trace {
            label: label.clone(),
            color: palette(series.color.unwrap_or(index)),
            style: series.style,
            markers: series.markers,
            segments,
            error_bars,
        });
    }

    Ok(LinePlot {
        caption: panel.title.clone(),
        x: Axis::new(
            &panel.x_label,
            panel.log_x,
            x_extent.bounds(0.03, panel.log_x),
        ),
        y: Axis::new(
            &panel.y_label,
            panel.log_y,
            y_extent.bounds(0.06, panel.log_y),
        ),
        traces,
    })
}

fn draw_line_panel(area: &Area<'_>, plot: &LinePlot, text: &TextSizes) -> RenderResult<()> {
    // Error bars that reach below zero on a log axis end at the axis bottom.
    let y_floor = plot.y.lo;
    let mut legend = Legend::default();
    for trace in &plot.traces {
        if !trace.label.is_empty() && !trace.segments.is_empty() {
            legend.add_label(&trace.label);
        }
        for segment in &trace.segments {
            legend.add_path(segment);
        }
        for &(x, low, _, high) in &trace.error_bars {
            legend.add_path(&[(x, low.unwrap_or(y_floor)), (x, high)]);
        }
    }
    let (y, corner) = legend.place(area, &plot.caption, &plot.x, plot.y.clone(), text);
    let mut chart = build_chart(area, &plot.caption, &plot.x, &y, text)?;

    for trace in &plot.traces {
        let color = trace.color;
        let stroke = color.stroke_width(2);
        let dot = color.filled();

        for (i, segment) in trace.segments.iter().enumerate() {
            let points = segment.iter().copied();
            let annotation = match trace.style {
                LineStyle::Solid => chart.draw_series(LineSeries::new(points, stroke))?,
                LineStyle::Dashed => {
                    chart.draw_series(DashedLineSeries::new(points, 10, 6, stroke))?
                }
                LineStyle::Dotted => {
                    chart.draw_series(DottedLineSeries::new(points, 0, 6, move |c| {
                        Circle::new(c, 2, dot)
                    }))?
                }
            };
            if i > 0 || trace.label.is_empty() {
                continue;
            }
            annotation.label(trace.label.as_str());
            match trace.style {
                LineStyle::Solid => annotation
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], stroke)),
                LineStyle::Dashed => annotation.legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], 7, 4, stroke)
                }),
                LineStyle::Dotted => annotation.legend(move |(x, y)| {
                    DottedPathElement::new(vec![(x, y), (x + 24, y)], 0, 6, move |c| {
                        Circle::new(c, 2, dot)
                    })
                }),
            };
        }

        // A point between two non-finite ones has no line, so it always gets a marker.
        let marked = trace
            .segments
            .iter()
            .filter(|segment| trace.markers || segment.len() == 1)
            .flatten();
        chart.draw_series(marked.map(|&p| Circle::new(p, 3, dot)))?;
        chart.draw_series(trace.error_bars.iter().map(|&(x, low, y, high)| {
            ErrorBar::new_vertical(x, low.unwrap_or(y_floor), y, high, color.stroke_width(1), 8)
        }))?;
    }

    legend.draw(&mut chart, corner, text)
}

// ---------------------------------------------------------------------------
// Distribution panels.

enum DistributionPlot {
    Bars(BarPanel),
    Histogram(HistogramPanel),
}

fn prepare_distribution_panel(
    panel: &DistributionPanel<'_>,
    x_label: &str,
    color_of: &dyn Fn(&str) -> RGBColor,
    notes: &mut Vec<String>,
) -> DistributionPlot {
    let mut finite_by_method = Vec::with_capacity(panel.samples.len());
    for &(method, rewards) in &panel.samples {
        let finite: Vec<f64> = rewards.iter().copied().filter(|r| r.is_finite()).collect();
        if rewards.is_empty() {
            notes.push(format!("{}: {method} has no samples", panel.title));
        } else if finite.len() < rewards.len() {
            notes.push(format!(
                "{}: {method}: {} non-finite rewards skipped",
                panel.title,
                rewards.len() - finite.len()
            ));
        }
        finite_by_method.push((method, finite));
    }

    let legend_label = |method: &str, finite: &[f64]| {
        if finite.is_empty() {
            method.to_string()
        } else {
            let mean = finite.iter().sum::<f64>() / finite.len() as f64;
            format!("{method} (mean {})", format_value(mean))
        }
    };

    let mut distinct: Vec<f64> = finite_by_method
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();

    if distinct.len() <= MAX_DISCRETE_VALUES {
        let groups = finite_by_method
            .iter()
            .map(|(method, finite)| BarGroup {
                label: legend_label(method, finite),
                color: color_of(method),
                values: distinct
                    .iter()
                    .map(|&value| {
                        let count = finite.iter().filter(|&&r| r == value).count();
                        if finite.is_empty() {
                            f64::NAN
                        } else {
                            count as f64 / finite.len() as f64
                        }
                    })
                    .collect(),
            })
            .collect();
        return DistributionPlot::Bars(BarPanel {
            caption: panel.title.clone(),
            x_label: x_label.to_string(),
            y_label: "fraction of samples".to_string(),
            categories: distinct.iter().map(|&v| format_value(v)).collect(),
            groups,
            log_y: false,
        });
    }

    // More than MAX_DISCRETE_VALUES distinct values, so the range is not empty.
    let (lower, upper) = (distinct[0], distinct[distinct.len() - 1]);
    let largest = finite_by_method
        .iter()
        .map(|(_, f)| f.len())
        .max()
        .unwrap_or(0);
    let bins = ((largest as f64).sqrt().round() as usize).clamp(10, 50);
    let series = finite_by_method
        .iter()
        .map(|(method, finite)| HistogramSeries {
            label: legend_label(method, finite),
            color: color_of(method),
            heights: Binned::new(finite, lower, upper, bins).densities(),
        })
        .collect();
    DistributionPlot::Histogram(HistogramPanel {
        caption: panel.title.clone(),
        x_label: x_label.to_string(),
        y_label: "density".to_string(),
        lower,
        upper,
        series,
        curve: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_fit_label_width_estimate() {
        let font = FontRef::try_from_slice(FONT_BYTES).unwrap();
        let scaled = font.as_scaled(100.0);
        for c in "0123456789-.e".chars() {
            let advance = scaled.h_advance(scaled.glyph_id(c));
            assert!(
                advance <= 55.0,
                "{c:?} advances {advance} px at text size 100"
            );
        }
    }

    #[test]
    fn linear_ticks_use_round_steps() {
        let (ticks, step) = linear_ticks(0.0, 1.0);
        assert_eq!(step, 0.2);
        assert_eq!(ticks.len(), 6);
        assert_eq!(format_tick(ticks[3], step), "0.6");

        let (ticks, step) = linear_ticks(-3.2, 47.0);
        assert_eq!(step, 10.0);
        assert_eq!(ticks, vec![0.0, 10.0, 20.0, 30.0, 40.0]);
    }

    #[test]
    fn log_axis_ticks_within_one_decade() {
        // 200 to 800 spans no power of 10, so ticks fall on 1, 2 and 5 or 1 to 9 multiples.
        let axis = Axis::log("", 200f64.log10(), 800f64.log10());
        assert!(axis.ticks.len() >= 2, "ticks {:?}", axis.tick_labels);
        assert!(
            axis.tick_labels.contains(&"500".to_string()),
            "ticks {:?}",
            axis.tick_labels
        );
    }

    #[test]
    fn log_axis_ticks_at_powers_of_ten() {
        let axis = Axis::log("", -3.2, 2.1);
        assert_eq!(
            axis.tick_labels,
            vec!["0.001", "0.01", "0.1", "1", "10", "100"]
        );
        assert!(!axis.minor_ticks.is_empty());
    }

    #[test]
    fn values_format_compactly() {
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(123.456), "123.5");
        assert_eq!(format_value(2.5e-5), "2.5e-5");
        assert_eq!(format_value(3.0e7), "3e7");
        assert_eq!(format_tick(0.30000000000000004, 0.1), "0.3");
    }

    #[test]
    fn constant_extent_gets_a_nonzero_range() {
        let mut extent = Extent::new();
        extent.add(5.0);
        extent.add(5.0);
        assert_eq!(extent.bounds(0.05, false), (4.5, 5.5));
        assert_eq!(extent.bounds(0.05, true), (4.5, 5.5));

        let mut zero = Extent::new();
        zero.add(0.0);
        assert_eq!(zero.bounds(0.05, false), (-0.5, 0.5));
        assert_eq!(zero.bounds_from_zero(0.05), (0.0, 0.5));
        assert_eq!(Extent::new().bounds(0.05, false), (0.0, 1.0));
    }

    #[test]
    fn finite_segments_break_at_nan() {
        let points = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 4.0)];
        let (segments, skipped) = finite_segments(points.into_iter());
        assert_eq!(skipped, 1);
        assert_eq!(
            segments,
            vec![vec![(0.0, 1.0)], vec![(2.0, 3.0), (3.0, 4.0)]]
        );
    }

    #[test]
    fn binned_densities_integrate_to_inside_fraction() {
        let values = [0.1, 0.2, 0.6, 0.9, 1.0, 2.0, f64::NAN];
        let binned = Binned::new(&values, 0.0, 1.0, 4);
        assert_eq!(binned.counts, vec![2, 0, 1, 2]);
        assert_eq!(binned.outside, 1);
        let area: f64 = binned.densities().iter().map(|h| h * binned.width).sum();
        assert!((area - 5.0 / 6.0).abs() < 1e-12, "area {area}");
    }

    #[test]
    fn note_wraps_and_truncates() {
        let notes: Vec<String> = (0..200)
            .map(|i| format!("series {i}: 3 non-finite points skipped"))
            .collect();
        let lines = wrap_note(&notes, 960, 13.0);
        assert_eq!(lines.len(), MAX_NOTE_LINES);
        assert!(lines[0].starts_with("Note: series 0"));
        assert!(lines[MAX_NOTE_LINES - 1].ends_with('…'));
    }
}
