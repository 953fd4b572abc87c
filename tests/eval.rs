//! `lcl eval` end to end on the tiny model: an ISEKAI-format suite over the fixture images,
//! predictions / results / table files, resume after an interruption, batching that does not
//! change answers, and bad suites failing before any model work.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use lcl::eval::answerer::Answerer;
use lcl::eval::run::{Prediction, read_predictions};
use lcl::tokenizer::{IMAGE_PATCH, LclTokenizer};
use lcl_model::{GenerationConfig, LclModel, LoadOptions};

/// A 4-episode ISEKAI-style suite (the first two share a support set) whose images are the fixture images (copied beside it).
fn suite(dir: &Path) -> std::path::PathBuf {
    copy_tree(&fixture("images"), &dir.join("images"));
    let line = |query: &str, positive: &str, negative: &str| {
        serde_json::json!({
            "image_name": format!("images/{query}"),
            "positive_list": ["images/a.png", "images/c.png"],
            "negative_list": ["images/b.jpg", "images/d.png"],
            "positive_promt": positive,
            "negative_promt": negative,
            "label_name": positive,
        })
        .to_string()
    };
    let file = dir.join("tiny-isekai.jsonl");
    let text = [
        line("e_16bit.png", "cactihog", "hedgehog"),
        line("g_cmyk.jpg", "cactihog", "hedgehog"),
        line("f.webp", "Icemic", "mouse"),
        line("a.png", "sea lion", "lion"),
    ]
    .join("\n");
    std::fs::write(&file, text + "\n").unwrap();
    file
}

/// The tiny LCL fixture model (f32) and its tokenizer.
fn tiny_model(device: &burn::tensor::Device) -> (LclTokenizer, LclModel) {
    let tokenizer = LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap();
    let options = LoadOptions {
        image_patch_id: Some(tokenizer.special_id(IMAGE_PATCH).unwrap()),
        ..LoadOptions::default()
    };
    let model =
        LclModel::from_pretrained(&fixture("tiny-lcl"), &fixture("tiny-clip"), device, options)
            .unwrap();
    (tokenizer, model)
}

/// An answerer over the tiny model (16 patches of a 56-pixel tower).
fn tiny_answerer<'a>(
    model: &'a LclModel,
    tokenizer: &'a LclTokenizer,
    device: &'a burn::tensor::Device,
) -> Answerer<'a> {
    Answerer {
        model,
        tokenizer,
        patches: 16,
        image_size: 56,
        generation: GenerationConfig::default(),
        reuse_prefix: true,
        device,
    }
}

/// The table a successful `lcl eval` printed (the test fails with its stderr otherwise).
fn table_of(run: Output) -> String {
    assert!(run.status.success(), "{}", stderr(&run));
    String::from_utf8(run.stdout).unwrap()
}

fn eval(suite: &Path, out: &Path, shots: &str, extra: &[&str]) -> Output {
    let model = fixture("tiny-lcl");
    let vision = fixture("tiny-clip");
    let mut args = vec![
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--vision",
        vision.to_str().unwrap(),
        "--suite",
        suite.to_str().unwrap(),
        "--shots",
        shots,
        "--max-new-tokens",
        "6",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_lcl(&args)
}

#[test]
fn eval_writes_predictions_results_and_table_and_resumes() {
    let dir = scratch("eval");
    let file = suite(&dir);
    let out = dir.join("out");
    let table = table_of(eval(&file, &out, "0,2,4", &["--batch-size", "3"]));
    assert!(table.contains("| run | 0 | 2 | 4 |"), "{table}");
    assert!(table.contains("| tiny-isekai |"), "{table}");
    let predictions = read_predictions(&out.join("predictions.jsonl")).unwrap();
    assert_eq!(predictions.len(), 12, "4 episodes x 3 shot counts");
    let zero: Vec<&Prediction> = predictions.iter().filter(|p| p.shots == 0).collect();
    let four: Vec<&Prediction> = predictions.iter().filter(|p| p.shots == 4).collect();
    assert!(zero[0].prompt_tokens < four[0].prompt_tokens);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runs"][0]["name"], "tiny-isekai");
    assert_eq!(results["runs"][0]["shots"]["2"]["total"], 4);
    assert!(out.join("results.md").is_file());
    let plot = image::open(out.join("accuracy.png")).expect("a PNG plot");
    assert_eq!(
        (plot.width(), plot.height()),
        (420 + 250, 460),
        "one panel (one scoring mode) and the legend beside it"
    );
    let rgb = plot.to_rgb8();
    assert!(
        rgb.pixels().any(|p| p.0 != [255, 255, 255]),
        "something is drawn"
    );

    // answering one episode at a time gives the same answers as the left-padded batch
    let single = dir.join("single");
    let run = eval(&file, &single, "0,2,4", &["--batch-size", "1"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        read_predictions(&single.join("predictions.jsonl")).unwrap(),
        predictions
    );

    // a finished run recomputes nothing
    let again = eval(&file, &out, "0,2,4", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(!stderr(&again).contains("loading"), "{}", stderr(&again));
    assert_eq!(
        read_predictions(&out.join("predictions.jsonl")).unwrap(),
        predictions
    );

    // an interrupted run (last line cut short) resumes and ends with the same predictions
    let path = out.join("predictions.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.len() - text.lines().last().unwrap().len() / 2 - 1;
    std::fs::write(&path, &text[..cut]).unwrap();
    let resumed = eval(&file, &out, "0,2,4", &[]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("resuming: 11 episodes"),
        "{}",
        stderr(&resumed)
    );
    let mut after = read_predictions(&path).unwrap();
    let mut before = predictions.clone();
    after.sort_by_key(Prediction::key);
    before.sort_by_key(Prediction::key);
    assert_eq!(after, before);
}

#[test]
fn the_false_label_ablation_gives_one_row_per_ratio() {
    let dir = scratch("eval-ablation");
    let file = suite(&dir);
    let out = dir.join("out");
    let table = table_of(eval(
        &file,
        &out,
        "4",
        &["--ablation", "false-ratio", "--batch-size", "3"],
    ));
    for ratio in ["0%", "25%", "50%", "75%", "100%"] {
        assert!(
            table.contains(&format!("| tiny-isekai false {ratio} |")),
            "{table}"
        );
    }
    assert!(image::open(out.join("false-ratio.png")).is_ok());

    let positions = dir.join("positions");
    let table = table_of(eval(
        &file,
        &positions,
        "4",
        &["--ablation", "position", "--position-shots", "4"],
    ));
    assert!(table.contains("| tiny-isekai position 4 |"), "{table}");
    assert!(!table.contains("position 5"), "{table}");
    assert!(image::open(positions.join("position.png")).is_ok());
}

#[test]
fn a_bad_suite_fails_before_loading_the_model_and_names_the_problem() {
    let dir = scratch("eval-bad");
    let file = suite(&dir);
    std::fs::remove_file(dir.join("images/f.webp")).unwrap();
    let run = eval(&file, &dir.join("out"), "2", &[]);
    assert!(!run.status.success());
    let message = stderr(&run);
    assert!(
        message.contains("missing") && message.contains("f.webp"),
        "{message}"
    );
    assert!(!message.contains("loading"), "{message}");

    std::fs::write(&file, "{\"image_name\": \"images/a.png\",\n").unwrap();
    let run = eval(&file, &dir.join("out"), "2", &[]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("tiny-isekai.jsonl:1"),
        "{}",
        stderr(&run)
    );

    let run = eval(Path::new("isekai-10"), &dir.join("out"), "2", &[]);
    assert!(stderr(&run).contains("--data"), "{}", stderr(&run));
}

#[test]
fn likelihood_scoring_sums_the_answer_log_probabilities() {
    use burn::tensor::activation::log_softmax;
    use lcl::data::isekai;
    use lcl::episode::IGNORE_INDEX;
    use lcl::eval::run::RunCache;
    use lcl_model::TokenBatch;

    let dir = scratch("eval-likelihood");
    let file = suite(&dir);
    let records = isekai::read(&file).unwrap();
    let episodes = lcl::data::eval_episodes::isekai_episodes(&records, &file, 2, &dir, 42).unwrap();
    let device = device();
    let (tokenizer, model) = tiny_model(&device);
    let answerer = tiny_answerer(&model, &tokenizer, &device);
    let mut cache = RunCache::new(64);
    let batched = answerer.likelihoods(&episodes, &mut cache).unwrap();
    assert_eq!(batched.len(), 4);
    // the same sums from full logits of one whole sequence at a time
    for (eval, candidates) in episodes.iter().zip(&batched) {
        for (label, expected) in [
            (&eval.positive, candidates.positive),
            (&eval.negative, candidates.negative),
        ] {
            let mut episode = eval.episode.clone();
            episode.answer = Some(label.clone());
            let encoded = episode.encode(&tokenizer, 16).unwrap();
            let features = cache
                .features(&model, &encoded.images, 56, &device)
                .unwrap();
            let logits = model
                .forward_logits(
                    &TokenBatch::left_padded(std::slice::from_ref(&encoded.ids), 0),
                    Some(features),
                )
                .unwrap();
            let vocab = logits.dims()[2];
            let log_probs = values(log_softmax(logits, 2));
            let total: f64 = (1..encoded.ids.len())
                .filter(|&p| encoded.labels[p] != IGNORE_INDEX)
                .map(|p| f64::from(log_probs[(p - 1) * vocab + encoded.ids[p] as usize]))
                .sum();
            assert!(
                (total - expected).abs() < 1e-3,
                "{}: {label}: {total} vs batched {expected}",
                eval.id
            );
            assert!(total < 0.0);
        }
        assert_eq!(
            candidates.prompt_tokens,
            eval.episode.encode(&tokenizer, 16).unwrap().ids.len()
        );
    }

    let out = dir.join("out");
    let table = table_of(eval(&file, &out, "2", &["--score", "generate,likelihood"]));
    assert!(table.contains("| tiny-isekai likelihood |"), "{table}");
    let predictions = read_predictions(&out.join("predictions.jsonl")).unwrap();
    let scored: Vec<&Prediction> = predictions
        .iter()
        .filter(|p| p.run.ends_with("likelihood"))
        .collect();
    assert_eq!(scored.len(), 4);
    for p in scored {
        let (positive, negative) = p.log_likelihoods.unwrap();
        assert_eq!(p.correct, positive > negative);
    }
}

#[test]
fn prototype_baseline_names_a_query_by_its_nearest_support_pictures() {
    use lcl::data::eval_episodes::EvalEpisode;
    use lcl::episode::{Episode, Shot};
    use lcl::eval::prototype::PooledFeatures;

    let dir = scratch("eval-prototype");
    let file = suite(&dir);
    let images = dir.join("images");
    let device = device();
    let (tokenizer, model) = tiny_model(&device);
    let answerer = tiny_answerer(&model, &tokenizer, &device);
    // a query that is one of the support pictures is nearest its own label's prototype
    // (similarity 1 with one shot per label), whichever label that is
    let episode = |query: &str, positive: &str, negative: &str| EvalEpisode {
        id: query.to_string(),
        support_key: String::new(),
        episode: Episode {
            support: vec![
                Shot {
                    image: images.join("a.png"),
                    label: "cactihog".into(),
                },
                Shot {
                    image: images.join("f.webp"),
                    label: "hedgehog".into(),
                },
            ],
            query: images.join(query),
            question: "What is in the image <image>?".into(),
            answer: None,
        },
        positive: positive.into(),
        negative: negative.into(),
    };
    let episodes = [
        episode("a.png", "cactihog", "hedgehog"),
        episode("f.webp", "hedgehog", "cactihog"),
    ];
    let mut pooled = PooledFeatures::default();
    let choices = answerer.prototype_choices(&episodes, &mut pooled).unwrap();
    for (choice, eval) in choices.iter().zip(&episodes) {
        assert_eq!(
            choice.label.as_deref(),
            Some(eval.positive.as_str()),
            "{}",
            eval.id
        );
        assert!((choice.similarity - 1.0).abs() < 1e-5, "{choice:?}");
    }

    // through the command line: its own rows, each verdict the chosen label's
    let out = dir.join("out");
    let table = table_of(eval(&file, &out, "0,2", &["--score", "prototype"]));
    assert!(table.contains("| tiny-isekai prototype |"), "{table}");
    let predictions = read_predictions(&out.join("predictions.jsonl")).unwrap();
    assert_eq!(predictions.len(), 8);
    for p in &predictions {
        let chose_positive = p.prediction == lcl::template::query_answer(&p.positive);
        assert_eq!(p.correct, chose_positive, "{p:?}");
        assert_eq!(p.prediction.is_empty(), p.shots == 0, "{p:?}");
    }
}

/// An output folder belongs to one evaluation: predictions of another model, weights or
/// setting in it are refused with what differs, until `--overwrite` discards them.
#[test]
fn an_output_folder_holding_another_evaluation_is_refused_until_overwrite() {
    let dir = scratch("eval-inputs");
    let file = suite(&dir);
    let out = dir.join("out");
    table_of(eval(&file, &out, "2", &[]));
    let inputs = std::fs::read_to_string(out.join("inputs.json")).unwrap();
    assert!(
        inputs.contains("xxh3") && inputs.contains("tiny-isekai.jsonl"),
        "{inputs}"
    );

    let refused = eval(&file, &out, "2", &["--seed", "7"]);
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(
        text.contains(&format!(
            "{} holds predictions of another evaluation",
            out.display()
        )) && text.contains("seed: 42 -> 7")
            && text.contains("--overwrite"),
        "{text}"
    );

    // The same model folder with one weight byte changed is another model.
    let other = dir.join("other-model");
    copy_tree(&fixture("tiny-lcl"), &other);
    let shard = other.join("pytorch_model-00002-of-00002.bin");
    let mut bytes = std::fs::read(&shard).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let args = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--model",
            other.to_str().unwrap(),
            "--vision",
            fixture("tiny-clip").to_str().unwrap().to_string().leak(),
            "--suite",
            file.to_str().unwrap(),
            "--shots",
            "2",
            "--max-new-tokens",
            "6",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_lcl(&args)
    };
    let text = stderr(&args(&[]));
    assert!(
        text.contains("model[pytorch_model-00002-of-00002.bin].xxh3"),
        "{text}"
    );
    let overwritten = args(&["--overwrite"]);
    let text = stderr(&overwritten);
    assert!(overwritten.status.success(), "{text}");
    assert!(
        text.contains("loading") && !text.contains("resuming"),
        "recomputed from scratch: {text}"
    );
    assert_eq!(
        read_predictions(&out.join("predictions.jsonl"))
            .unwrap()
            .len(),
        4
    );

    // Predictions with no record of their inputs (an older lcl) are not trusted either.
    std::fs::remove_file(out.join("inputs.json")).unwrap();
    let text = stderr(&args(&[]));
    assert!(text.contains("no inputs.json"), "{text}");
}
