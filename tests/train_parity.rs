//! One training step against transformers 4.29 on the tiny fixtures: the loss and the
//! gradients (tests/fixtures/gen_fixtures.py, `training_reference`). Runs on flex and, in
//! `cargo xtask test`, again on wgpu (autodiff on a GPU backend).

mod common;

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::train::TrainStep;
use common::*;
use lcl::data::batch::{EpisodeBatcher, EpisodeItem, Padding};
use lcl::model_folder::{Precision, load_model};
use lcl::tokenizer::LclTokenizer;
use lcl::train::LclTrainer;

/// A float array of `tests/fixtures/ref/<name>.npy`.
fn reference_values(name: &str) -> Vec<f32> {
    reference(name).data
}

#[test]
fn the_training_loss_and_gradients_match_transformers() {
    // The fixture episode with its query answered; only the answer and its </s> supervised.
    let meta = json("ref/train_episode.json");
    let item = EpisodeItem {
        ids: ids(&meta["input_ids"]),
        labels: labels(&meta["labels"]),
        pixels: reference_values("episode_pixel_values"),
        images: 3,
    };
    let tokenizer = LclTokenizer::from_dir(&fixture("tiny-lcl")).unwrap();
    let model = load_model(
        &fixture("tiny-lcl"),
        &fixture("tiny-clip"),
        &tokenizer,
        &device(),
        Precision::F32,
    )
    .unwrap();
    let trainer = LclTrainer::new(model).train();
    let batcher = EpisodeBatcher {
        pad_id: tokenizer.pad_id(),
        padding: Padding::Right,
        image_size: 56,
    };
    let batch = batcher.batch(vec![item], &device().autodiff());

    let (loss, _) = trainer.loss(&batch);
    let loss: f32 = loss.into_scalar();
    let expected_loss = meta["loss"].as_f64().unwrap() as f32;
    assert!(
        (loss - expected_loss).abs() <= 1e-4 * expected_loss.abs(),
        "loss {loss} vs transformers {expected_loss}"
    );

    let grads = TrainStep::step(&trainer, batch).grads;
    // transformers keeps nn.Linear weights as [out, in], Burn as [in, out].
    let projector_weight = grads
        .get::<2>(trainer.projector.weight.id)
        .unwrap()
        .transpose();
    let checks = [
        (
            "mm_projector.weight",
            values(projector_weight),
            "train_grad_projector_weight",
        ),
        (
            "mm_projector.bias",
            values(
                grads
                    .get::<1>(trainer.projector.bias.as_ref().unwrap().id)
                    .unwrap(),
            ),
            "train_grad_projector_bias",
        ),
        (
            // The release's pad_token_id -1 makes PyTorch leave <im_end>'s row (514) without
            // gradient; the reference has it all zero, and so must we.
            "embed_tokens.weight",
            values(grads.get::<2>(trainer.llm.embed_tokens.weight.id).unwrap()),
            "train_grad_embed_tokens",
        ),
    ];
    for (what, actual, reference_name) in checks {
        let expected = reference_values(reference_name);
        let scale = expected.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(scale > 0.0, "{what}: the reference gradient is all zero");
        // Relative to the largest entry: f32 sums over ~180 positions.
        assert_close(
            &format!("{what} gradient"),
            &actual,
            &expected,
            1e-4 * scale,
        );
    }
}
