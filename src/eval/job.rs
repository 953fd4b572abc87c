//! `lcl eval`: a suite at several shot counts (and optionally an ablation) through a
//! checkpoint, with resume from `predictions.jsonl`, `results.json` and a Markdown table.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use lcl_model::{ClipVisionConfig, GenerationConfig};

use crate::data::eval_episodes::{Ablation, EvalEpisode, episode_images};
use crate::eval::answerer::Answerer;
use crate::eval::inputs::InputsRecord;
use crate::eval::plot::{Figure, Line, Panel, plot as plot_figure};
use crate::eval::report::Results;
use crate::eval::request::{AblationKind, EvalRequest};
use crate::eval::run::{RunCache, ScoreMode, read_predictions, run_episodes};
use crate::eval::suite::{Suite, check_images};
use crate::model_folder::{load_model_with_weights, resolve_vision_dir};
use crate::tokenizer::LclTokenizer;

/// The episodes of each shot count of one row.
type Columns = Vec<(usize, Vec<EvalEpisode>)>;

/// One row of the table: a name, a scoring mode and its columns.
struct RowPlan {
    name: String,
    /// The row's name without its scoring mode (the same for every mode).
    label: String,
    mode: ScoreMode,
    /// The corrupted position of a position-ablation row.
    position: Option<usize>,
    columns: Columns,
}

fn plan(request: &EvalRequest, suite: &Suite) -> Result<Vec<RowPlan>> {
    let columns = |shots: &[usize], ablation: Option<Ablation>| -> Result<Vec<_>> {
        shots
            .iter()
            .map(|&n| {
                let episodes = suite.episodes(n, ablation, request.seed)?;
                Ok((n, spread(episodes, request.limit)))
            })
            .collect()
    };
    let rows: Vec<(String, Option<usize>, Columns)> = match request.ablation {
        None => vec![(suite.name.clone(), None, columns(&request.shots, None)?)],
        Some(AblationKind::FalseRatio) => request
            .false_ratios
            .iter()
            .map(|&ratio| {
                Ok((
                    format!("{} false {:.0}%", suite.name, ratio * 100.0),
                    None,
                    columns(&request.shots, Some(Ablation::FalseRatio(ratio)))?,
                ))
            })
            .collect::<Result<_>>()?,
        Some(AblationKind::Position) => (1..=request.position_shots)
            .map(|position| {
                Ok((
                    format!("{} position {position}", suite.name),
                    Some(position),
                    columns(
                        &[request.position_shots],
                        Some(Ablation::Position(position)),
                    )?,
                ))
            })
            .collect::<Result<_>>()?,
    };
    let mut plans = Vec::new();
    for mode in &request.scores {
        for (name, position, columns) in &rows {
            plans.push(RowPlan {
                label: name.clone(),
                name: match mode {
                    ScoreMode::Generate => name.clone(),
                    ScoreMode::Likelihood => format!("{name} likelihood"),
                    ScoreMode::Prototype => format!("{name} prototype"),
                },
                mode: *mode,
                position: *position,
                columns: columns.clone(),
            });
        }
    }
    Ok(plans)
}

/// At most `limit` of `episodes`, evenly spaced (so every class of the suite keeps its share).
fn spread(episodes: Vec<EvalEpisode>, limit: Option<usize>) -> Vec<EvalEpisode> {
    match limit {
        Some(limit) if limit < episodes.len() => {
            let len = episodes.len();
            (0..limit)
                .map(|i| episodes[i * len / limit].clone())
                .collect()
        }
        _ => episodes,
    }
}

/// Runs the evaluation and returns the results of everything in `predictions.jsonl`.
pub fn evaluate(request: &EvalRequest, device: &Device) -> Result<Results> {
    let suite = Suite::load(
        &request.suite,
        request.data.as_deref(),
        request.images.as_deref(),
    )?;
    let runs = plan(request, &suite)?;
    let all: Vec<EvalEpisode> = runs
        .iter()
        .flat_map(|r| r.columns.iter().flat_map(|(_, e)| e.iter().cloned()))
        .collect();
    if all.is_empty() {
        bail!("{}: the suite has no episodes", suite.file.display());
    }
    check_images(&episode_images(&all), 20)?;

    std::fs::create_dir_all(&request.out)
        .with_context(|| format!("{}: cannot create", request.out.display()))?;
    InputsRecord::of(request, &suite)?.claim(&request.out, request.overwrite)?;
    let predictions_path = request.out.join("predictions.jsonl");
    let mut predictions = read_predictions(&predictions_path)?;
    let done: HashSet<_> = predictions.iter().map(|p| p.key()).collect();
    let mut remaining = 0;
    for run in &runs {
        for (shots, episodes) in &run.columns {
            remaining += episodes
                .iter()
                .filter(|e| !done.contains(&(run.name.clone(), *shots, e.id.clone())))
                .count();
        }
    }
    if remaining > 0 {
        if !predictions.is_empty() {
            eprintln!(
                "resuming: {} episodes already in {}, {remaining} to go",
                predictions.len(),
                predictions_path.display()
            );
        }
        let tokenizer = LclTokenizer::from_dir(&request.model)?;
        let vision_dir = resolve_vision_dir(&request.model, request.vision.as_deref())?;
        let vision = ClipVisionConfig::from_file(&vision_dir.join("config.json"))?;
        let model = load_model_with_weights(
            &request.model,
            &vision_dir,
            &tokenizer,
            device,
            request.precision,
            request.weights.as_deref(),
        )?;
        let answerer = Answerer {
            model: &model,
            tokenizer: &tokenizer,
            patches: vision.num_patches(),
            image_size: vision.image_size,
            generation: GenerationConfig {
                max_new_tokens: request.max_new_tokens,
                eos_token_id: tokenizer.eos_id(),
                pad_token_id: tokenizer.pad_id(),
                ..GenerationConfig::default()
            },
            reuse_prefix: request.prefix_reuse,
            device,
        };
        let mut cache = RunCache::new(request.cached_images);
        let bar = crate::progress::bar(
            remaining as u64,
            "{msg} [{bar:40}] {pos}/{len} episodes {per_sec} ETA {eta}",
        );
        for run in &runs {
            for (shots, episodes) in &run.columns {
                bar.set_message(format!("{} {shots}-shot", run.name));
                let scored = run_episodes(
                    &answerer,
                    &mut cache,
                    &run.name,
                    *shots,
                    episodes,
                    &done,
                    run.mode,
                    request.batch_size,
                    &predictions_path,
                    &mut |n| bar.inc(n as u64),
                )?;
                predictions.extend(scored);
            }
        }
        bar.finish_and_clear();
    }
    let results = Results::from_predictions(&predictions);
    let json = serde_json::to_string_pretty(&results)?;
    std::fs::write(request.out.join("results.json"), json + "\n")
        .with_context(|| format!("{}: cannot write results.json", request.out.display()))?;
    std::fs::write(request.out.join("results.md"), results.markdown())
        .with_context(|| format!("{}: cannot write results.md", request.out.display()))?;
    plot(request, &suite, &runs, &results)?;
    Ok(results)
}

/// The run's plot: accuracy against shots, one panel per scoring mode and one line per row
/// (suite or false-label ratio); for the position ablation accuracy against the corrupted
/// position, one line per scoring mode.
fn plot(request: &EvalRequest, suite: &Suite, runs: &[RowPlan], results: &Results) -> Result<()> {
    let accuracy = |name: &str, shots: usize| {
        results
            .runs
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.shots.get(&shots))
            .map(|cell| cell.accuracy)
    };
    let mode_name = |mode: &ScoreMode| format!("{mode:?}").to_lowercase();
    let (figure, file) = match request.ablation {
        Some(AblationKind::Position) => {
            let lines = request
                .scores
                .iter()
                .map(|mode| Line {
                    name: mode_name(mode),
                    points: runs
                        .iter()
                        .filter(|r| r.mode == *mode)
                        .filter_map(|r| {
                            let position = r.position? as f64;
                            Some((position, accuracy(&r.name, request.position_shots)?))
                        })
                        .collect(),
                })
                .collect();
            let figure = Figure {
                title: format!(
                    "{}: one corrupted label in {} shots",
                    suite.name, request.position_shots
                ),
                x_label: "corrupted position".into(),
                panels: vec![Panel {
                    title: suite.name.clone(),
                    lines,
                }],
            };
            (figure, "position.png")
        }
        ablation => {
            let panels = request
                .scores
                .iter()
                .map(|mode| Panel {
                    title: mode_name(mode),
                    lines: runs
                        .iter()
                        .filter(|r| r.mode == *mode)
                        .map(|r| Line {
                            name: r.label.clone(),
                            points: r
                                .columns
                                .iter()
                                .filter_map(|(n, _)| Some((*n as f64, accuracy(&r.name, *n)?)))
                                .collect(),
                        })
                        .collect(),
                })
                .collect();
            let (title, file) = if ablation.is_some() {
                (
                    format!("{}: false-label ratio", suite.name),
                    "false-ratio.png",
                )
            } else {
                (suite.name.clone(), "accuracy.png")
            };
            let figure = Figure {
                title,
                x_label: "shots".into(),
                panels,
            };
            (figure, file)
        }
    };
    plot_figure(&figure, &request.out.join(file))
}
