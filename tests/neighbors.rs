//! Image folders, class splits and the neighbour tool: the score matrix against the
//! transformers reference (`ref/neighbors.json`, from `gen_data_fixtures.py`), and `lcl
//! neighbors` end to end on the tiny image folder with the tiny CLIP, including resume
//! from its feature cache and bad input.

mod common;

use std::path::Path;
use std::process::Output;

use burn::tensor::DType;
use common::*;
use lcl::data::class_file;
use lcl::data::image_folder::ImageFolder;
use lcl::neighbors::{ClipEncoder, NeighborSettings, score_matrix};
use lcl::tokenizer::ClipTokenizer;
use lcl_model::ClipModel;

fn reference_scores() -> (Vec<String>, Vec<Vec<f32>>) {
    let reference = json("ref/neighbors.json");
    let classes = reference["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let scores = reference["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    (classes, scores)
}

#[test]
fn the_image_folder_reads_loc_synset_names_and_sorted_images() {
    let folder = ImageFolder::scan(&fixture("folder"), None).unwrap();
    assert_eq!(folder.classes.len(), 6);
    assert_eq!(folder.classes[0].id, "n01440764");
    assert_eq!(folder.classes[0].name, "tench");
    assert_eq!(folder.classes[2].name, "great white shark");
    assert_eq!(
        folder.classes[0].images,
        [
            "n01440764/n01440764_0.png",
            "n01440764/n01440764_1.png",
            "n01440764/n01440764_2.png"
        ]
    );
    assert!(
        folder
            .names_file
            .unwrap()
            .ends_with("LOC_synset_mapping.txt")
    );
}

#[test]
fn class_scores_match_transformers() {
    let device = device();
    let clip = fixture("tiny-clip-text");
    let model = ClipModel::from_pretrained(&clip, &device, DType::F32).unwrap();
    let tokenizer = ClipTokenizer::from_dir(&clip, 32).unwrap();
    let encoder = ClipEncoder {
        model: &model,
        tokenizer: &tokenizer,
        image_size: 32,
        device: &device,
    };
    // the reference feeds CLIP the whole LOC_synset_mapping names: give them as id<TAB>name
    let dir = scratch("full-names");
    let loc = std::fs::read_to_string(fixture("folder/LOC_synset_mapping.txt")).unwrap();
    let tsv: String = loc
        .lines()
        .map(|l| l.replacen(' ', "\t", 1) + "\n")
        .collect();
    std::fs::write(dir.join("names.tsv"), tsv).unwrap();
    let folder = ImageFolder::scan(&fixture("folder"), Some(&dir.join("names.tsv"))).unwrap();
    assert_eq!(folder.classes[1].name, "goldfish, Carassius auratus");
    let settings = NeighborSettings::default();
    let features: Vec<_> = folder
        .classes
        .iter()
        .map(|class| {
            encoder
                .class_features(&folder.root, class, &class.images, &settings)
                .unwrap()
        })
        .collect();
    let ours = score_matrix(&features);
    let (classes, expected) = reference_scores();
    assert_eq!(
        classes,
        folder
            .classes
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    );
    let ours: Vec<f32> = ours.into_iter().flatten().collect();
    let expected: Vec<f32> = expected.into_iter().flatten().collect();
    assert_close("neighbour scores", &ours, &expected, f32_tolerance());
}

fn run_neighbors(data: &Path, out: &Path, extra: &[&str]) -> Output {
    run_neighbors_with(&fixture("tiny-clip-text"), data, out, extra)
}

fn run_neighbors_with(clip: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "neighbors",
        "--clip",
        clip.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tiers",
        "2",
        "--samples",
        "2",
        "--images-per-class",
        "2",
    ];
    args.extend_from_slice(extra);
    run_lcl(&args)
}

#[test]
fn neighbors_end_to_end_writes_the_per_class_file_and_resumes_from_its_cache() {
    let dir = scratch("neighbors");
    let out = dir.join("pairs.jsonl");
    let first = run_neighbors(&fixture("folder"), &out, &["--split", "none"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let entries = class_file::read(&out).unwrap();
    assert_eq!(entries.len(), 6);
    for entry in &entries {
        assert_eq!(entry.neighbors.len(), 2, "5 others in 2 tiers of 3");
        assert_eq!(entry.samples.len(), 2);
        assert!(entry.samples.iter().all(|s| s.starts_with(&entry.class_id)));
        assert!(entry.neighbors.iter().all(|n| n.id() != entry.class_id));
    }
    assert_eq!(entries[0].class_name, "tench");
    let written = std::fs::read(&out).unwrap();

    // a rerun reads every class from the cache and writes the same file
    let second = run_neighbors(&fixture("folder"), &out, &["--split", "none"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(std::fs::read(&out).unwrap(), written);
    // an interrupted run (one class's features missing, one half written) resumes
    let cache = dir.join("pairs.jsonl.features");
    std::fs::remove_file(cache.join("n01443537.f32")).unwrap();
    std::fs::write(cache.join("n02085620.f32"), [0u8; 7]).unwrap();
    let third = run_neighbors(&fixture("folder"), &out, &["--split", "none"]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(std::fs::read(&out).unwrap(), written);
    // other settings do not mix with the cached features
    let other = run_neighbors(
        &fixture("folder"),
        &out,
        &["--split", "none", "--seed", "7"],
    );
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("other settings") && stderr(&other).contains("seed: 42 -> 7"),
        "{}",
        stderr(&other)
    );
    // a renamed class (its text feature changes) is computed again, the others are not
    let names = dir.join("names.txt");
    let mapping = std::fs::read_to_string(fixture("folder/LOC_synset_mapping.txt")).unwrap();
    std::fs::write(&names, mapping.replace("tench, Tinca tinca", "tinca")).unwrap();
    let cached = |id: &str| std::fs::read(cache.join(format!("{id}.f32"))).unwrap();
    let (tench, goldfish) = (cached("n01440764"), cached("n01443537"));
    let renamed = run_neighbors(
        &fixture("folder"),
        &out,
        &["--split", "none", "--names", names.to_str().unwrap()],
    );
    assert!(renamed.status.success(), "{}", stderr(&renamed));
    assert_ne!(cached("n01440764"), tench, "recomputed");
    assert_eq!(cached("n01443537"), goldfish, "read from the cache");
    assert_eq!(class_file::read(&out).unwrap()[0].class_name, "tinca");
    // a CLIP folder whose weights changed is another CLIP
    let clip = dir.join("clip");
    copy_tree(&fixture("tiny-clip-text"), &clip);
    let weights = clip.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let other_clip = run_neighbors_with(&clip, &fixture("folder"), &out, &["--split", "none"]);
    assert!(!other_clip.status.success());
    assert!(
        stderr(&other_clip).contains("clip_files[model.safetensors].xxh3"),
        "{}",
        stderr(&other_clip)
    );
}

#[test]
fn held_out_classes_get_no_entry_and_are_nobodys_neighbour() {
    let dir = scratch("neighbors-split");
    let split = dir.join("test-classes.txt");
    std::fs::write(&split, "# held out\nn02086240\n").unwrap();
    let out = dir.join("pairs.jsonl");
    let run = run_neighbors(
        &fixture("folder"),
        &out,
        &["--split", split.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let entries = class_file::read(&out).unwrap();
    assert_eq!(entries.len(), 5);
    assert!(entries.iter().all(|e| e.class_id != "n02086240"
        && e.neighbors.iter().all(|n| n.id() != "n02086240")));
    // the default split is ImageNet-100, which this folder does not have
    let default = run_neighbors(&fixture("folder"), &dir.join("x.jsonl"), &[]);
    assert!(!default.status.success());
    assert!(stderr(&default).contains("--split"), "{}", stderr(&default));
}

#[test]
fn a_corrupt_image_or_a_class_without_a_name_is_an_error_naming_it() {
    let dir = scratch("neighbors-bad");
    let data = dir.join("data");
    copy_tree(&fixture("folder"), &data);
    std::fs::write(data.join("n01443537/n01443537_1.png"), b"not a png").unwrap();
    let run = run_neighbors(&data, &dir.join("pairs.jsonl"), &["--split", "none"]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("n01443537_1.png"), "{}", stderr(&run));

    std::fs::create_dir(data.join("n09999999")).unwrap();
    std::fs::write(data.join("n09999999/x.png"), b"").unwrap();
    let err = ImageFolder::scan(&data, None).unwrap_err();
    assert!(
        format!("{err:#}").contains("no name for class folder n09999999"),
        "{err:#}"
    );
    std::fs::remove_file(data.join("n09999999/x.png")).unwrap();
    let names = dir.join("names.tsv");
    std::fs::write(&names, "n09999999\tnew class\n").unwrap();
    let err = ImageFolder::scan(&data, Some(&names)).unwrap_err();
    assert!(
        format!("{err:#}").contains("no name for class folder n01440764"),
        "{err:#}"
    );
}

#[test]
fn episodes_and_test_classes_commands_work_on_the_tiny_folder() {
    let dir = scratch("episodes-cmd");
    let pairs = dir.join("pairs.jsonl");
    let made = run_neighbors(&fixture("folder"), &pairs, &["--split", "none"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let questions = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/query-questions.json");
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\nclass_file = {:?}\nimage_root = {:?}\nquestions = {:?}\n[sampler]\nfixed_shots_per_class = 1\nmax_total_shots = 2\n",
            pairs,
            fixture("folder"),
            questions
        ),
    )
    .unwrap();
    let args = [
        "episodes",
        "--config",
        config.to_str().unwrap(),
        "--count",
        "4",
        "--main-phase",
    ];
    let first = run_lcl(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = String::from_utf8(first.stdout.clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        assert_eq!(line["support"].as_array().unwrap().len(), 2);
        assert!(line["question"].as_str().unwrap().contains("<image>"));
    }
    assert_eq!(
        run_lcl(&args).stdout,
        first.stdout,
        "seeded: the same episodes"
    );

    let split = dir.join("test.txt");
    std::fs::write(&split, "n02085620\nn02086240\n").unwrap();
    let out = dir.join("test-classes.jsonl");
    let made = run_lcl(&[
        "test-classes",
        "--data",
        fixture("folder").to_str().unwrap(),
        "--split",
        split.to_str().unwrap(),
        "--context",
        "1",
        "--queries",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let classes: Vec<lcl::data::eval_episodes::TestClass> = lcl::data::jsonl::read(&out).unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0].class_name, "Chihuahua");
    assert_eq!(
        (
            classes[0].context_samples.len(),
            classes[0].test_samples.len()
        ),
        (1, 2)
    );
    assert!(
        !classes[0]
            .test_samples
            .contains(&classes[0].context_samples[0])
    );
}
