//! Training episodes: rendering and labels against transformers 4.29's slow tokenizer
//! (goldens from `tests/fixtures/gen_data_fixtures.py`), padding in the Burn batcher, and the
//! training set served through Burn's multi-worker data loader.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use common::*;
use lcl::data::batch::{EpisodeBatcher, EpisodeItem, Padding};
use lcl::data::class_file::{ClassEntry, Neighbor};
use lcl::data::draw::ShotSchedule;
use lcl::data::train_set::{EpochEpisodes, TrainSet, TrainSetSpec};
use lcl::episode::{Episode, IGNORE_INDEX, Shot, Supervision};
use lcl::tokenizer::LclTokenizer;

fn tokenizer() -> LclTokenizer {
    LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap()
}

fn golden_episode(case: &serde_json::Value) -> Episode {
    let support = case["support"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, label)| Shot {
            image: PathBuf::from(format!("shot{i}.png")),
            label: label.as_str().unwrap().to_string(),
        })
        .collect();
    Episode {
        support,
        query: "query.png".into(),
        question: case["question"].as_str().unwrap().to_string(),
        answer: Some(case["answer"].as_str().unwrap().to_string()),
    }
}

#[test]
fn training_episodes_match_the_slow_tokenizer_and_supervise_only_the_answer() {
    let tokenizer = tokenizer();
    let cases = json("ref/train_episodes.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let episode = golden_episode(case);
        let patches = case["patches"].as_u64().unwrap() as usize;
        let texts: Vec<String> = case["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(episode.render(patches), texts, "rendered text");
        let encoded = episode.encode(&tokenizer, patches).unwrap();
        assert_eq!(
            encoded.ids,
            ids(&case["ids"]),
            "ids of {:?}",
            case["support"]
        );
        let labels = labels(&case["labels"]);
        assert_eq!(encoded.labels, labels, "labels of {:?}", case["support"]);
        let supervised = labels.iter().filter(|&&l| l != IGNORE_INDEX).count();
        assert_eq!(supervised, case["answer_pieces"].as_array().unwrap().len());
        assert_eq!(encoded.images.len(), episode.support.len() + 1);
        assert_eq!(encoded.images.last().unwrap(), &PathBuf::from("query.png"));
    }
}

#[test]
fn supervision_adds_the_answers_of_repeated_labels_or_of_every_shot() {
    let tokenizer = tokenizer();
    let shot = |i: usize, label: &str| Shot {
        image: PathBuf::from(format!("shot{i}.png")),
        label: label.into(),
    };
    let episode = Episode {
        support: vec![
            shot(0, "wug"),
            shot(1, "cat"),
            shot(2, "wug"),
            shot(3, "dax"),
            shot(4, "cat"),
        ],
        query: "query.png".into(),
        question: lcl::template::QUERY_QUESTION.into(),
        answer: Some("wug".into()),
    };
    let decode_supervised = |supervision| {
        let encoded = episode
            .encode_supervised(&tokenizer, 4, supervision)
            .unwrap();
        let mut runs = Vec::new();
        let mut run = Vec::new();
        for (&id, &label) in encoded.ids.iter().zip(&encoded.labels) {
            if label == IGNORE_INDEX {
                if !run.is_empty() {
                    let text = tokenizer.decode(&std::mem::take(&mut run), false);
                    runs.push(text.trim_start().to_string());
                }
            } else {
                assert_eq!(label, i64::from(id));
                run.push(id);
            }
        }
        runs.push(tokenizer.decode(&run, false).trim_start().to_string());
        (encoded, runs)
    };
    let (plain, query_only) = decode_supervised(Supervision::Query);
    assert_eq!(plain, episode.encode(&tokenizer, 4).unwrap());
    assert_eq!(query_only, ["there is \"wug\" in the image.</s>"]);
    let (linked, runs) = decode_supervised(Supervision::RepeatedLabels);
    assert_eq!(linked.ids, plain.ids, "supervision changes labels only");
    assert_eq!(
        runs,
        [
            "there is \"wug\" in the image. [END EXAMPLE]",
            "there is \"cat\" in the image. [END EXAMPLE]",
            "there is \"wug\" in the image.</s>",
        ]
    );
    let (every, runs) = decode_supervised(Supervision::AllAnswers);
    assert_eq!(every.ids, plain.ids, "supervision changes labels only");
    let support_answers: Vec<String> = ["wug", "cat", "wug", "dax", "cat"]
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let end = if i == 0 { "</s>" } else { "" };
            format!("there is \"{label}\" in the image. [END EXAMPLE]{end}")
        })
        .collect();
    assert_eq!(runs[..5], support_answers[..]);
    assert_eq!(runs[5..], ["there is \"wug\" in the image.</s>"]);
}

#[test]
fn an_evaluation_episode_has_no_supervised_token() {
    let tokenizer = tokenizer();
    let episode = Episode::evaluation(
        vec![Shot {
            image: "a.png".into(),
            label: "cactihog".into(),
        }],
        "b.png".into(),
    );
    let encoded = episode.encode(&tokenizer, 4).unwrap();
    assert!(encoded.labels.iter().all(|&l| l == IGNORE_INDEX));
    assert!(
        encoded
            .segments
            .last()
            .unwrap()
            .text
            .ends_with("ASSISTANT:")
    );
}

fn item(ids: Vec<u32>, labels: Vec<i64>, images: usize) -> EpisodeItem {
    EpisodeItem {
        ids,
        labels,
        pixels: vec![0.5; images * 3 * 4 * 4],
        images,
    }
}

#[test]
fn the_batcher_pads_ids_masks_and_labels_on_the_requested_side() {
    let items = vec![
        item(vec![1, 5, 6, 2], vec![-100, -100, 6, 2], 2),
        item(vec![1, 7], vec![-100, 2], 1),
    ];
    let device = device();
    for (padding, expected_ids, expected_labels) in [
        (
            Padding::Right,
            vec![1, 5, 6, 2, 1, 7, 0, 0],
            vec![-100, -100, 6, 2, -100, 2, -100, -100],
        ),
        (
            Padding::Left,
            vec![1, 5, 6, 2, 0, 0, 1, 7],
            vec![-100, -100, 6, 2, -100, -100, -100, 2],
        ),
    ] {
        let batcher = EpisodeBatcher {
            pad_id: 0,
            padding,
            image_size: 4,
        };
        let batch = batcher.batch(items.clone(), &device);
        assert_eq!(batch.input_ids.dims(), [2, 4]);
        let ids: Vec<i64> = batch
            .input_ids
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(ids, expected_ids, "{padding:?}");
        let labels: Vec<i64> = batch
            .labels
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(labels, expected_labels, "{padding:?}");
        let mask: Vec<bool> = batch.attention_mask.into_data().try_to_vec().unwrap();
        let expected_mask: Vec<bool> = expected_ids.iter().map(|&i| i != 0).collect();
        assert_eq!(mask, expected_mask);
        assert_eq!(batch.pixel_values.dims(), [3, 3, 4, 4]);
        assert_eq!(batch.images_per_row, vec![2, 1]);
    }
}

/// The tiny image folder as a per-class file: every class's neighbours are all others.
fn folder_classes() -> Vec<ClassEntry> {
    let root = fixture("folder");
    let mut wnids: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_dir()
                .then(|| e.file_name().into_string().unwrap())
        })
        .collect();
    wnids.sort();
    let samples = |w: &str| -> Vec<String> { (0..3).map(|i| format!("{w}/{w}_{i}.png")).collect() };
    wnids
        .iter()
        .map(|w| ClassEntry {
            class_id: w.clone(),
            class_name: format!("Name of {w}"),
            samples: samples(w),
            neighbors: wnids
                .iter()
                .filter(|n| *n != w)
                .map(|n| Neighbor(n.clone(), format!("Name of {n}"), samples(n)[0].clone()))
                .collect(),
        })
        .collect()
}

fn train_set(classes: Vec<ClassEntry>, seed: u64) -> TrainSet {
    let spec = TrainSetSpec {
        classes,
        image_root: fixture("folder"),
        shots: ShotSchedule::Weighted { max: 2, scale: 2.0 },
        questions: vec![
            "Based on the previous examples, what do you think is in the image <image>?".into(),
        ],
        episodes_per_class: 2,
        seed,
        rules: Default::default(),
    };
    let sampler = EpochEpisodes::new(Arc::new(spec), 0).unwrap();
    TrainSet::new(sampler, Arc::new(tokenizer()), 16, 56)
}

#[test]
fn training_episodes_are_a_function_of_seed_epoch_and_index() {
    let set = train_set(folder_classes(), 42);
    assert_eq!(set.len(), 12);
    assert_eq!(set.episode(3).unwrap(), set.episode(3).unwrap());
    assert_eq!(
        set.episode(3).unwrap(),
        train_set(folder_classes(), 42).episode(3).unwrap()
    );
    let epoch1 = set.at_epoch(1);
    let differs = (0..12).any(|i| set.episode(i).unwrap() != epoch1.episode(i).unwrap());
    assert!(differs, "another epoch draws other episodes");
    let other_seed = train_set(folder_classes(), 43);
    assert!((0..12).any(|i| set.episode(i).unwrap() != other_seed.episode(i).unwrap()));
    // index i's anchor is class i % 6: its images carry one invented label
    let episode = set.episode(7).unwrap();
    let anchor = "n01443537/";
    let anchor_labels: std::collections::BTreeSet<&str> = episode
        .support
        .iter()
        .filter(|s| s.image.starts_with(anchor))
        .map(|s| s.label.as_str())
        .collect();
    assert_eq!(anchor_labels.len(), 1);
    assert!(!anchor_labels.iter().next().unwrap().starts_with("name of"));
}

#[test]
fn the_data_loader_serves_padded_training_batches_from_worker_threads() {
    let set = train_set(folder_classes(), 7);
    let tokenizer = tokenizer();
    let batcher = EpisodeBatcher {
        pad_id: tokenizer.pad_id(),
        padding: Padding::Right,
        image_size: 56,
    };
    let loader = DataLoaderBuilder::new(batcher)
        .batch_size(4)
        .num_workers(2)
        .set_device(device())
        .build(set.clone());
    let mut episodes = 0;
    for batch in loader.iter() {
        let batch = batch.unwrap();
        let [rows, len] = batch.input_ids.dims();
        episodes += rows;
        assert_eq!(batch.labels.dims(), [rows, len]);
        let images: usize = batch.images_per_row.iter().sum();
        assert_eq!(batch.pixel_values.dims(), [images, 3, 56, 56]);
        let supervised: i64 = batch
            .labels
            .clone()
            .not_equal_elem(IGNORE_INDEX)
            .int()
            .sum()
            .into_scalar::<i64>();
        assert!(
            supervised >= (rows * 10) as i64,
            "answer tokens are supervised"
        );
    }
    assert_eq!(episodes, 12);
}

#[test]
fn a_missing_or_corrupt_image_fails_the_item_and_names_the_file() {
    let mut classes = folder_classes();
    classes[0].samples[1] = "n01440764/missing.png".into();
    classes[0].samples[2] = "../ref/episode.json".into();
    let set = train_set(classes, 1);
    let errors: Vec<String> = (0..set.len())
        .filter_map(|i| set.get(i).err().map(|e| e.to_string()))
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e.contains("missing.png") || e.contains("episode.json")),
        "{errors:?}"
    );
}

#[test]
fn a_class_too_small_for_the_schedule_is_refused_up_front() {
    let mut classes = folder_classes();
    classes[2].samples.truncate(2);
    let spec = TrainSetSpec {
        classes,
        image_root: fixture("folder"),
        shots: ShotSchedule::Fixed(2),
        questions: vec!["<image>?".into()],
        episodes_per_class: 1,
        seed: 0,
        rules: Default::default(),
    };
    let err = EpochEpisodes::new(Arc::new(spec), 0).expect_err("too few samples");
    assert!(err.to_string().contains("n01484850"), "{err}");
}

#[test]
fn instruction_conversations_supervise_every_reply_and_its_end_token() {
    let dir = scratch("conversations");
    let file = dir.join("llava.json");
    std::fs::write(
        &file,
        r#"[{"id": 1, "image": "a.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat is in the image?"},
            {"from": "gpt", "value": "A red circle."},
            {"from": "human", "value": "And the colour of the square?"},
            {"from": "gpt", "value": "green"}]}]"#,
    )
    .unwrap();
    let records = lcl::data::conversation::read(&file).unwrap();
    let tokenizer = tokenizer();
    let encoded = records[0]
        .encode(&tokenizer, 4, &fixture("images"))
        .unwrap();
    assert_eq!(encoded.images, [fixture("images/a.png")]);
    let supervised: Vec<u32> = encoded
        .ids
        .iter()
        .zip(&encoded.labels)
        .filter(|(_, label)| **label != IGNORE_INDEX)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        tokenizer.decode(&supervised, false),
        " A red circle.</s> green</s>"
    );
    assert_eq!(encoded.ids[0], tokenizer.bos_id());
    assert_eq!(
        encoded
            .ids
            .iter()
            .filter(|&&id| id == tokenizer.bos_id())
            .count(),
        1
    );

    let lines = dir.join("shikra.jsonl");
    std::fs::write(
        &lines,
        "{\"image\": null, \"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"hello\"}]}\n{\"image\": \"x.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"no placeholder\"}, {\"from\": \"gpt\", \"value\": \"x\"}]}\n",
    )
    .unwrap();
    let err = lcl::data::conversation::read(&lines).unwrap_err();
    assert!(
        format!("{err:#}").contains("shikra.jsonl: record 2"),
        "{err:#}"
    );
    std::fs::write(&lines, "{\"image\": null, \"conversations\": [\n").unwrap();
    let err = lcl::data::conversation::read(&lines).unwrap_err();
    assert!(format!("{err:#}").contains("shikra.jsonl:1"), "{err:#}");
}

#[test]
fn the_mix_draws_its_sources_at_their_probabilities() {
    use lcl::data::mix::{InstructionSet, MixedSet};
    let lcl_set: Arc<dyn Dataset<EpisodeItem>> = Arc::new(train_set(folder_classes(), 3));
    let conversation = lcl::data::conversation::Conversation {
        id: None,
        image: Some("a.png".into()),
        conversations: vec![
            lcl::data::conversation::Turn {
                from: "human".into(),
                value: "<image> What is it?".into(),
            },
            lcl::data::conversation::Turn {
                from: "gpt".into(),
                value: "shapes".into(),
            },
        ],
    };
    // A relative image root (as configs give it) resolves once, not twice.
    let instructions: Arc<dyn Dataset<EpisodeItem>> = Arc::new(InstructionSet::new(
        vec![conversation],
        "tests/fixtures/images".into(),
        Arc::new(tokenizer()),
        16,
        56,
    ));
    assert_eq!(instructions.get(0).unwrap().images, 1);
    let mix = MixedSet::new(vec![lcl_set, instructions], vec![0.5, 0.5], 1, 0).unwrap();
    assert_eq!(
        mix.len(),
        24,
        "one pass over the 12 LCL episodes at p = 0.5"
    );
    let from_lcl = (0..4000).filter(|&i| mix.pick(i).0 == 0).count();
    // p = 0.5 over 4000 draws: within 4 standard deviations (126)
    assert!((from_lcl as i64 - 2000).abs() < 127, "{from_lcl}");
    let item = (0..24)
        .find(|&i| mix.pick(i).0 == 1)
        .map(|i| mix.get(i).unwrap())
        .unwrap();
    assert_eq!(item.images, 1);
    assert!(MixedSet::new(vec![], vec![], 0, 0).is_err());
}
