//! The shipped TOML configs and the config reader's errors.

mod common;

use common::*;
use lcl::config::{RunConfig, Strategy, read_questions};
use lcl::data::draw::{NegativeLabel, ShotSchedule, ShotSplit};
use lcl::episode::Supervision;

fn shipped() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_config_parses_with_the_original_defaults() {
    let files = shipped();
    assert_eq!(files.len(), 5);
    for file in &files {
        let config = RunConfig::from_file(file).unwrap();
        let mut expected = RunConfig::default();
        expected.sampler.strategy = config.sampler.strategy;
        expected.mix.sources = config.mix.sources.clone();
        if file.ends_with("lcl-2way-weight-lora.toml") {
            assert!(config.training.lora.enabled && config.training.gradient_checkpointing);
            assert_eq!(config.model.dtype, lcl::model_folder::Precision::Bf16);
            expected.model.dtype = config.model.dtype;
            expected.training.learning_rate = config.training.learning_rate;
            expected.training.gradient_checkpointing = true;
            expected.training.lora.enabled = true;
        }
        assert_eq!(
            config,
            expected,
            "{} spells out the defaults",
            file.display()
        );
    }
    let config = |name: &str| {
        RunConfig::from_file(files.iter().find(|f| f.ends_with(name)).unwrap()).unwrap()
    };
    let weight = config("lcl-2way-weight.toml");
    assert_eq!(weight.sampler.strategy, Strategy::TwoWayWeight);
    assert_eq!(
        weight.sampler.schedule(),
        ShotSchedule::Weighted { max: 8, scale: 2.0 }
    );
    let random = config("lcl-2way-random.toml");
    assert_eq!(
        random.sampler.schedule(),
        ShotSchedule::UniformTotal { min: 2, max: 16 }
    );
    assert_eq!(random.sampler.fixed_schedule(), ShotSchedule::Fixed(8));
    let mix = config("lcl-mix.toml");
    assert_eq!(
        config("lcl-2way.toml").sampler.schedule(),
        ShotSchedule::Fixed(8)
    );
    assert_eq!(mix.mix.probabilities(), [0.5, 0.5]);
}

#[test]
fn unknown_and_ill_typed_fields_are_named() {
    let err = RunConfig::parse("[sampler]\nstrategy = \"2way\"\nshots = 4\n").unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("shots") && message.contains("line 3"),
        "{message}"
    );
    let err = RunConfig::parse("[sampler]\nseed = \"forty-two\"\n").unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("seed") || message.contains("line 2"),
        "{message}"
    );
    let err = RunConfig::parse("[sampler]\nstrategy = \"3way\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("3way"), "{err:#}");
    let err = RunConfig::parse("[sampler]\nstrategy = \"mix\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("mix.sources"), "{err:#}");
    let err = RunConfig::parse("[sampler]\nnegative_label = \"fake\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("fake"), "{err:#}");
    let invented = RunConfig::parse("[sampler]\nnegative_label = \"invented\"\n").unwrap();
    assert_eq!(invented.sampler.negative_label, NegativeLabel::Invented);
    assert_eq!(invented.sampler.ways, 2, "2-way unless asked");
    let every = RunConfig::parse("[training]\nsupervise = \"all-answers\"\n").unwrap();
    assert_eq!(every.training.supervise, Supervision::AllAnswers);
    let err = RunConfig::parse("[training]\nsupervise = \"all\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("all-answers"), "{err:#}");
    let eight = RunConfig::parse("[sampler]\nways = 8\n").unwrap();
    assert_eq!(eight.sampler.rules().ways, 8);
    let err = RunConfig::parse("[sampler]\nways = 1\n").unwrap_err();
    assert!(format!("{err:#}").contains("sampler.ways"), "{err:#}");
    let split = RunConfig::parse("[sampler]\nshot_split = \"independent\"\nlabel_letters = 1\n");
    let rules = split.unwrap().sampler.rules();
    assert_eq!(
        (rules.shot_split, rules.label_letters),
        (ShotSplit::Independent, 1)
    );
    assert_eq!(
        invented.sampler.rules().shot_split,
        ShotSplit::Even,
        "even unless asked"
    );
    let err = RunConfig::parse("[sampler]\nlabel_letters = 0\n").unwrap_err();
    assert!(format!("{err:#}").contains("label_letters"), "{err:#}");
    let err = RunConfig::parse("[evaluation]\nshots = [0, 3]\n").unwrap_err();
    assert!(format!("{err:#}").contains("3 is odd"), "{err:#}");
    let dir = scratch("configs");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[neighbours]\n").unwrap();
    let err = RunConfig::from_file(&file).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("bad.toml") && message.contains("neighbours"),
        "{message}"
    );
}

#[test]
fn the_shipped_training_questions_each_hold_one_image() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/query-questions.json");
    let questions = read_questions(&path).unwrap();
    assert_eq!(questions.len(), 66);
    assert_eq!(
        questions[0],
        "Based on the previous examples, what do you think is in the image <image>?"
    );
    let dir = scratch("questions");
    std::fs::write(
        dir.join("q.json"),
        r#"["what is <image>?", "no image here"]"#,
    )
    .unwrap();
    let err = read_questions(&dir.join("q.json")).unwrap_err();
    assert!(err.to_string().contains("question 2"), "{err}");
}

#[test]
fn the_miniature_configs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mini");
    let caption = RunConfig::from_file(&dir.join("caption.toml")).unwrap();
    assert_eq!(caption.sampler.strategy, Strategy::Instructions);
    let lcl = RunConfig::from_file(&dir.join("lcl-2way-weight.toml")).unwrap();
    assert_eq!(lcl.sampler.strategy, Strategy::TwoWayWeight);
    assert_eq!(lcl.sampler.negative_label, NegativeLabel::Invented);
    assert_eq!(
        (lcl.sampler.shot_split, lcl.sampler.label_letters),
        (ShotSplit::Independent, 12)
    );
    let research = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("research/configs");
    let link = RunConfig::from_file(&research.join("link-identical.toml")).unwrap();
    assert_eq!(link.sampler.ways, 4);
    assert_eq!(link.sampler.negative_label, NegativeLabel::Invented);
    assert_eq!(link.training.supervise, Supervision::RepeatedLabels);
    let recognition = RunConfig::from_file(&dir.join("recognition.toml")).unwrap();
    assert_eq!(recognition.sampler.strategy, Strategy::Instructions);
    assert_eq!(recognition.mix.sources.len(), 2);
    let mix = RunConfig::from_file(&dir.join("link-mix.toml")).unwrap();
    assert_eq!(mix.sampler.strategy, Strategy::Mix);
    assert_eq!(mix.mix.sources, recognition.mix.sources);
    assert_eq!(mix.sampler.negative_label, NegativeLabel::Invented);
    let letters = RunConfig::from_file(&dir.join("link-letters.toml")).unwrap();
    let rules = letters.sampler.rules();
    assert_eq!(
        (rules.shot_split, rules.label_letters),
        (ShotSplit::Independent, 1)
    );
    let clip = lcl_model::ClipConfig::from_file(&dir.join("clip.json")).unwrap();
    let llama = lcl_model::LlamaConfig::from_file(&dir.join("llama.json")).unwrap();
    assert_eq!(clip.vision_config.num_patches(), 16);
    assert!(llama.hidden_size.is_multiple_of(llama.num_attention_heads));
}
