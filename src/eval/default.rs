//! The default evaluation (`lcl eval` with no `--model`): the shipped miniature models
//! (`checkpoints/mini`: the vanilla captioner and its LCL fine-tune over the mini CLIP) on the
//! generated world, which is drawn first when absent. Suites: ISEKAI-10 and ISEKAI-pair on the
//! novel world, the held-out real species as ImageNet-100 (support and query from classes
//! neither model saw), and the false-label ablation; one table and two plots for all of them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;

use crate::data::eval_episodes::draw_test_classes;
use crate::data::image_folder::ImageFolder;
use crate::data::split::ClassSplit;
use crate::eval::job::evaluate;
use crate::eval::plot::{Figure, Line, Panel, plot};
use crate::eval::request::{AblationKind, EvalRequest};
use crate::eval::run::ScoreMode;
use crate::model_folder::Precision;
use crate::world::{WorldSpec, generate};

/// The shipped miniature checkpoints, relative to the project folder.
pub const CHECKPOINTS: &str = "checkpoints/mini";
/// The models compared, as (folder under [`CHECKPOINTS`], row label).
pub const MODELS: [(&str, &str); 2] = [("vanilla", "vanilla"), ("lcl", "LCL [2-way-weight]")];
/// Row label of the vision-only baseline (`--score prototype` on the LCL model's CLIP).
pub const VISION_ONLY: &str = "vision only (prototype)";
/// The suites, as (name or file under the world, row label).
const SUITES: [(&str, &str); 3] = [
    ("isekai-10", "ISEKAI-10"),
    ("isekai-pair", "ISEKAI-pair"),
    (HELDOUT_SUITE, "held-out species"),
];
/// The ImageNet-100-style file of held-out real species, written into the world.
const HELDOUT_SUITE: &str = "real/heldout-test.jsonl";
/// Context images per held-out species (8 per class: up to 16 shots in all).
const HELDOUT_CONTEXT: usize = 8;
/// Most query images per held-out species.
const HELDOUT_QUERIES: usize = 16;

/// Everything the default evaluation needs.
#[derive(Debug, Clone)]
pub struct DefaultEvalRequest {
    /// Folder holding `vanilla/`, `lcl/` (and their shared CLIP).
    pub checkpoints: PathBuf,
    /// The generated world (drawn with seed 42 when it has no `world.json`).
    pub world: PathBuf,
    /// Output folder: one sub-folder per model and suite, then `results.md` and plots.
    pub out: PathBuf,
    /// Support images in all, per column.
    pub shots: Vec<usize>,
    /// Support images of the false-label ablation.
    pub ablation_shots: usize,
    /// False-label ratios of the ablation.
    pub false_ratios: Vec<f64>,
    /// Most episodes per column of every suite.
    pub limit: usize,
    /// Episodes per batch.
    pub batch_size: usize,
    /// Weight precision.
    pub precision: Precision,
    /// Discard sub-runs' predictions made with other inputs.
    pub overwrite: bool,
}

impl DefaultEvalRequest {
    /// The defaults, with the models in `checkpoints` (the shipped ones: [`CHECKPOINTS`],
    /// found by [`crate::assets::find`]) and outputs under `runs`.
    pub fn new(checkpoints: &Path, runs: &Path) -> Self {
        Self {
            checkpoints: checkpoints.to_path_buf(),
            world: runs.join("mini-world"),
            out: runs.join("eval-default"),
            shots: vec![0, 2, 4, 8, 16],
            ablation_shots: 8,
            false_ratios: vec![0.0, 0.5, 1.0],
            limit: 80,
            batch_size: 8,
            precision: Precision::F32,
            overwrite: false,
        }
    }
}

/// Accuracy of one model on one suite.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteRow {
    /// Model label.
    pub model: String,
    /// Suite label.
    pub suite: String,
    /// (shots, accuracy) per column.
    pub accuracy: Vec<(usize, f64)>,
}

/// Accuracy of one model under the false-label ablation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FalseLabelRow {
    /// Model label.
    pub model: String,
    /// (share of false labels, accuracy) per column.
    pub accuracy: Vec<(f64, f64)>,
}

/// Accuracy of every model on every suite, and of the ablation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DefaultResults {
    /// One row per model and suite.
    pub suites: Vec<SuiteRow>,
    /// One row per model.
    pub false_labels: Vec<FalseLabelRow>,
}

/// Runs the default evaluation (resumable: each sub-run keeps its `predictions.jsonl`).
pub fn evaluate_default(request: &DefaultEvalRequest, device: &Device) -> Result<DefaultResults> {
    ensure_world(&request.world)?;
    ensure_heldout_suite(&request.world)?;
    let mut results = DefaultResults {
        suites: Vec::new(),
        false_labels: Vec::new(),
    };
    for (folder, label) in MODELS {
        let model = request.checkpoints.join(folder);
        if !model.join("config.json").is_file() {
            anyhow::bail!(
                "{}: no model there (the shipped miniature checkpoints; see the README's \
                 miniature section to rebuild them)",
                model.display()
            );
        }
        for (suite, suite_label) in SUITES {
            let sub = sub_request(request, &model, suite, &request.shots, None);
            results
                .suites
                .push(suite_row(&sub, label, suite_label, device)?);
        }
        let ablation = evaluate(
            &sub_request(
                request,
                &model,
                "isekai-10",
                &[request.ablation_shots],
                Some(AblationKind::FalseRatio),
            ),
            device,
        )
        .with_context(|| format!("{label}: false-label ablation"))?;
        let by_ratio = request
            .false_ratios
            .iter()
            .filter_map(|&ratio| {
                let name = format!("isekai-10 false {:.0}%", ratio * 100.0);
                let run = ablation.runs.iter().find(|r| r.name == name)?;
                Some((ratio, run.shots.get(&request.ablation_shots)?.accuracy))
            })
            .collect();
        results.false_labels.push(FalseLabelRow {
            model: label.to_string(),
            accuracy: by_ratio,
        });
    }
    // The LCL model's vision tower alone (no language model): what linking each label to
    // its pictures can at best reach on each suite.
    let lcl = request.checkpoints.join(MODELS[1].0);
    for (suite, suite_label) in SUITES {
        let mut sub = sub_request(request, &lcl, suite, &request.shots, None);
        sub.scores = vec![ScoreMode::Prototype];
        sub.out = request
            .out
            .join("vision-only")
            .join(sub.out.file_name().unwrap_or_default());
        results
            .suites
            .push(suite_row(&sub, VISION_ONLY, suite_label, device)?);
    }
    write_report(request, &results)?;
    Ok(results)
}

/// Evaluates `sub` (one suite, one scoring) into a table row.
fn suite_row(
    sub: &EvalRequest,
    model_label: &str,
    suite_label: &str,
    device: &Device,
) -> Result<SuiteRow> {
    let run = evaluate(sub, device).with_context(|| format!("{model_label} on {suite_label}"))?;
    Ok(SuiteRow {
        model: model_label.to_string(),
        suite: suite_label.to_string(),
        accuracy: run
            .runs
            .first()
            .map(|r| r.shots.iter().map(|(&n, c)| (n, c.accuracy)).collect())
            .unwrap_or_default(),
    })
}

/// The `lcl eval` request of one model (`model` folder) on one suite of the default
/// evaluation, with its settings; outputs go to `OUT/<model>/<suite>`.
pub fn sub_request(
    request: &DefaultEvalRequest,
    model: &Path,
    suite: &str,
    shots: &[usize],
    ablation: Option<AblationKind>,
) -> EvalRequest {
    let model_name = model.file_name().unwrap_or_default();
    let suite_name = Path::new(suite).file_stem().unwrap_or_default();
    let run = match ablation {
        Some(_) => format!("{}-false-labels", suite_name.to_string_lossy()),
        None => suite_name.to_string_lossy().into_owned(),
    };
    let is_file = suite.ends_with(".jsonl");
    EvalRequest {
        model: model.to_path_buf(),
        vision: None,
        weights: None,
        suite: if is_file {
            request.world.join(suite).to_string_lossy().into_owned()
        } else {
            suite.to_string()
        },
        data: Some(request.world.clone()),
        images: is_file.then(|| request.world.join("real/images")),
        shots: shots.to_vec(),
        ablation,
        false_ratios: request.false_ratios.clone(),
        position_shots: 16,
        out: request.out.join(model_name).join(run),
        batch_size: request.batch_size,
        max_new_tokens: 20,
        seed: 42,
        precision: request.precision,
        cached_images: 1024,
        prefix_reuse: true,
        scores: vec![ScoreMode::Generate],
        limit: Some(request.limit),
        overwrite: request.overwrite,
    }
}

/// Draws the world into `dir` unless a complete one (with `world.json`, written last) is there.
pub fn ensure_world(dir: &Path) -> Result<()> {
    let catalogue = dir.join("world.json");
    if catalogue.is_file() {
        let text = std::fs::read_to_string(&catalogue)
            .with_context(|| format!("{}: cannot read", catalogue.display()))?;
        let world: crate::world::World = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a world catalogue", catalogue.display()))?;
        if world.spec != WorldSpec::default() {
            eprintln!(
                "note: {} was drawn with another spec than the default world's ({:?}): the \
                 figures are for that world",
                dir.display(),
                world.spec
            );
        }
        return Ok(());
    }
    let spec = WorldSpec::default();
    eprintln!(
        "drawing the miniature world (seed {}) into {} (about 20 s, once) ...",
        spec.seed,
        dir.display()
    );
    let started = Instant::now();
    let bar = crate::progress::bar(0, "{msg} [{bar:40}] {pos}/{len} pictures ETA {eta}");
    bar.set_message("drawing");
    generate(&spec, dir, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!("drawn in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Writes the ImageNet-100-style file of the held-out species (8 context images and up to 16
/// queries per species) unless it is there.
fn ensure_heldout_suite(world: &Path) -> Result<()> {
    let file = world.join(HELDOUT_SUITE);
    if file.is_file() {
        return Ok(());
    }
    let real = world.join("real");
    let folder = ImageFolder::scan(&real.join("images"), None)?;
    let split = ClassSplit::from_file(&real.join("heldout-classes.txt"))?;
    let (_, heldout) = split.apply(&folder.classes)?;
    let fewest = heldout.iter().map(|c| c.images.len()).min().unwrap_or(0);
    let queries = fewest
        .saturating_sub(HELDOUT_CONTEXT)
        .clamp(1, HELDOUT_QUERIES);
    let classes = draw_test_classes(&heldout, HELDOUT_CONTEXT, queries, 42)?;
    crate::data::jsonl::write(&file, &classes)
}

fn write_report(request: &DefaultEvalRequest, results: &DefaultResults) -> Result<()> {
    let out = &request.out;
    std::fs::write(out.join("results.md"), markdown(request, results))
        .with_context(|| format!("{}: cannot write results.md", out.display()))?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(results)? + "\n",
    )
    .with_context(|| format!("{}: cannot write results.json", out.display()))?;
    let mut suites: Vec<&str> = Vec::new();
    for row in &results.suites {
        if !suites.contains(&row.suite.as_str()) {
            suites.push(&row.suite);
        }
    }
    let panels = suites
        .iter()
        .map(|suite| Panel {
            title: suite.to_string(),
            lines: results
                .suites
                .iter()
                .filter(|row| row.suite == *suite)
                .map(|row| Line {
                    name: row.model.clone(),
                    points: row.accuracy.iter().map(|&(n, a)| (n as f64, a)).collect(),
                })
                .collect(),
        })
        .collect();
    plot(
        &Figure {
            title: "miniature: vanilla vs LCL (and the vision tower alone)".into(),
            x_label: "shots".into(),
            panels,
        },
        &out.join("accuracy.png"),
    )?;
    let lines = results
        .false_labels
        .iter()
        .map(|row| Line {
            name: row.model.clone(),
            points: row.accuracy.iter().map(|&(r, a)| (r * 100.0, a)).collect(),
        })
        .collect();
    plot(
        &Figure {
            title: format!(
                "ISEKAI-10, {} shots: false-label ratio",
                request.ablation_shots
            ),
            x_label: "false labels (%)".into(),
            panels: vec![Panel {
                title: "ISEKAI-10".into(),
                lines,
            }],
        },
        &out.join("false-labels.png"),
    )
}

/// The two tables: accuracy per shot count, and per false-label ratio.
pub fn markdown(request: &DefaultEvalRequest, results: &DefaultResults) -> String {
    let mut text = String::from("| model | suite |");
    for n in &request.shots {
        text.push_str(&format!(" {n} |"));
    }
    text.push_str("\n|---|---|");
    text.push_str(&"---:|".repeat(request.shots.len()));
    text.push('\n');
    for row in &results.suites {
        text.push_str(&format!("| {} | {} |", row.model, row.suite));
        for n in &request.shots {
            match row.accuracy.iter().find(|(m, _)| m == n) {
                Some((_, accuracy)) => text.push_str(&format!(" {accuracy:.2} |")),
                None => text.push_str(" - |"),
            }
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "\nISEKAI-10 at {} shots with a share of the support labels replaced by invented ones:\n\n| model |",
        request.ablation_shots
    ));
    for ratio in &request.false_ratios {
        text.push_str(&format!(" {:.0}% false |", ratio * 100.0));
    }
    text.push_str("\n|---|");
    text.push_str(&"---:|".repeat(request.false_ratios.len()));
    text.push('\n');
    for row in &results.false_labels {
        text.push_str(&format!("| {} |", row.model));
        for (_, accuracy) in &row.accuracy {
            text.push_str(&format!(" {accuracy:.2} |"));
        }
        text.push('\n');
    }
    text
}
