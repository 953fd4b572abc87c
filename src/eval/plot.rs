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
    /// Legend text (the same name has the same colour in every panel).
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// One frame of a figure: a title and its lines.
pub struct Panel {
    /// Caption above the frame.
    pub title: String,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// Panels side by side (small multiples) sharing the axes' meaning, one legend outside them.
pub struct Figure {
    /// Caption of the whole figure.
    pub title: String,
    /// What x is (`shots`, `false labels (%)`, ...); x ticks are whole numbers.
    pub x_label: String,
    /// The panels, left to right.
    pub panels: Vec<Panel>,
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

/// Line colours, in order of first appearance (Okabe and Ito's palette, told apart with
/// colour-blind eyes too).
const COLOURS: [(u8, u8, u8); 7] = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
];

/// Width of one panel and of the legend, in pixels.
const PANEL_WIDTH: u32 = 420;
const LEGEND_WIDTH: u32 = 250;
const HEIGHT: u32 = 460;

/// Draws `figure` (accuracy in 0..=1 against whole-number x) into a PNG at `path`.
pub fn plot(figure: &Figure, path: &Path) -> Result<()> {
    let panels = figure.panels.len().max(1) as u32;
    let (width, height) = (panels * PANEL_WIDTH + LEGEND_WIDTH, HEIGHT);
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    // One colour per line name, kept across panels.
    let mut names: Vec<&str> = Vec::new();
    for line in figure.panels.iter().flat_map(|p| &p.lines) {
        if !names.contains(&line.name.as_str()) {
            names.push(&line.name);
        }
    }
    let colour = |name: &str| {
        let index = names.iter().position(|n| *n == name).unwrap_or(0);
        let (r, g, b) = COLOURS[index % COLOURS.len()];
        RGBColor(r, g, b)
    };
    let xs = figure
        .panels
        .iter()
        .flat_map(|p| &p.lines)
        .flat_map(|l| l.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (x_min, x_max) = if x_min > x_max {
        (0.0, 1.0)
    } else if x_min == x_max {
        (x_min - 1.0, x_max + 1.0)
    } else {
        (x_min, x_max)
    };
    let margin = (x_max - x_min) * 0.04;
    let labelled = font_available();
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e:?}", path.display());
        root.fill(&WHITE).map_err(draw)?;
        let root = if labelled {
            root.titled(&figure.title, ("sans-serif", 22))
                .map_err(draw)?
        } else {
            root
        };
        let (frames, legend) = root.split_horizontally(width - LEGEND_WIDTH);
        for (panel, area) in figure
            .panels
            .iter()
            .zip(frames.split_evenly((1, panels as usize)))
        {
            let mut builder = ChartBuilder::on(&area);
            builder
                .margin(12)
                .x_label_area_size(if labelled { 40 } else { 8 })
                .y_label_area_size(if labelled { 50 } else { 8 });
            if labelled {
                builder.caption(&panel.title, ("sans-serif", 18));
            }
            let mut chart = builder
                .build_cartesian_2d((x_min - margin)..(x_max + margin), 0.0..1.02)
                .map_err(draw)?;
            let mut mesh = chart.configure_mesh();
            if labelled {
                mesh.x_desc(&figure.x_label)
                    .y_desc("accuracy")
                    .x_labels(((x_max - x_min).round() as usize + 1).min(11))
                    .x_label_formatter(&|x| whole_number(*x));
            } else {
                mesh.disable_x_axis().disable_y_axis();
            }
            mesh.draw().map_err(draw)?;
            for line in &panel.lines {
                let style = colour(&line.name).to_rgba().stroke_width(2);
                chart
                    .draw_series(LineSeries::new(line.points.iter().copied(), style))
                    .map_err(draw)?;
                chart
                    .draw_series(
                        line.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, colour(&line.name).filled())),
                    )
                    .map_err(draw)?;
            }
        }
        if labelled {
            for (i, name) in names.iter().enumerate() {
                let y = 60 + 26 * i as i32;
                let c = colour(name);
                legend
                    .draw(&PathElement::new(vec![(12, y), (40, y)], c.stroke_width(3)))
                    .map_err(draw)?;
                legend
                    .draw(&Text::new(
                        name.to_string(),
                        (48, y - 8),
                        ("sans-serif", 15),
                    ))
                    .map_err(draw)?;
            }
        }
        root.present().map_err(draw)?;
    }
    image::RgbImage::from_raw(width, height, pixels)
        .context("plot buffer size")?
        .save(path)
        .with_context(|| format!("{}: cannot write the plot", path.display()))
}

/// A tick label: the whole number `x` is close to, or nothing between whole numbers.
fn whole_number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{:.0}", x.round())
    } else {
        String::new()
    }
}
