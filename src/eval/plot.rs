//! PNG plots of evaluation results with plotters: accuracy against shots (one line per run),
//! or, for the position ablation, accuracy against the corrupted position. Text is drawn
//! with a system TrueType font (DejaVu, Liberation, Arial, ...; `LCL_PLOT_FONT` names
//! another); without one the plot is drawn without labels and a warning says so.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// One line of a plot: a name and its `(x, accuracy)` points.
pub struct Line {
    /// Legend text.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// Font files tried in order (after `LCL_PLOT_FONT`).
const FONT_CANDIDATES: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a system font once as plotters' `sans-serif`; false when none is found.
fn font_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let from_env = std::env::var("LCL_PLOT_FONT").ok();
        let candidates = from_env
            .iter()
            .map(String::as_str)
            .chain(FONT_CANDIDATES.iter().copied());
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
                {
                    return true;
                }
            }
        }
        eprintln!(
            "warning: no TrueType font found (set LCL_PLOT_FONT=FILE.ttf); plots are drawn without labels"
        );
        false
    })
}

/// Draws `lines` (accuracy in 0..=1 against `x_label`) into a PNG at `path`.
pub fn plot_lines(lines: &[Line], title: &str, x_label: &str, path: &Path) -> Result<()> {
    let (width, height) = (900u32, 560u32);
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (x_min, x_max) = if x_min > x_max {
        (0.0, 1.0)
    } else if x_min == x_max {
        (x_min - 1.0, x_max + 1.0)
    } else {
        (x_min, x_max)
    };
    let labelled = font_available();
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e:?}", path.display());
        root.fill(&WHITE).map_err(draw)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .margin(20)
            .x_label_area_size(if labelled { 45 } else { 10 })
            .y_label_area_size(if labelled { 55 } else { 10 });
        if labelled {
            builder.caption(title, ("sans-serif", 24));
        }
        let mut chart = builder
            .build_cartesian_2d(x_min..x_max, 0.0..1.0)
            .map_err(draw)?;
        let mut mesh = chart.configure_mesh();
        if labelled {
            mesh.x_desc(x_label).y_desc("accuracy");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(draw)?;
        for (index, line) in lines.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba().stroke_width(2);
            let series = chart
                .draw_series(LineSeries::new(line.points.iter().copied(), colour))
                .map_err(draw)?;
            if labelled {
                series.label(line.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], Palette99::pick(index))
                });
            }
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, Palette99::pick(index).filled())),
                )
                .map_err(draw)?;
        }
        if labelled && !lines.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(draw)?;
        }
        root.present().map_err(draw)?;
    }
    image::RgbImage::from_raw(width, height, pixels)
        .context("plot buffer size")?
        .save(path)
        .with_context(|| format!("{}: cannot write the plot", path.display()))
}
