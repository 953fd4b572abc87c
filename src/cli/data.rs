//! The data commands: `lcl neighbors`, `lcl episodes`, `lcl test-classes`, `lcl gen-world`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lcl::backend::{backend_name, device};
use lcl::config::RunConfig;
use lcl::data::eval_episodes::draw_test_classes;
use lcl::data::image_folder::ImageFolder;
use lcl::data::split::ClassSplit;
use lcl::data::train_set::EpochEpisodes;
use lcl::neighbors::{NeighborJob, NeighborSettings};

#[derive(Args)]
pub struct NeighborsArgs {
    /// Full CLIP checkpoint (both towers and tokenizer.json): a folder or a Hugging Face
    /// repo id, e.g. openai/clip-vit-base-patch16 as the original used.
    #[arg(long)]
    clip: PathBuf,
    #[command(flatten)]
    folder: FolderArgs,
    /// The per-class file to write (JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Feature cache folder; a rerun after an interruption resumes from it. Default:
    /// OUT.features/ beside the output.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Images averaged into a class's image feature.
    #[arg(long, default_value_t = 100)]
    images_per_class: usize,
    /// Neighbour tiers (one neighbour per tier).
    #[arg(long, default_value_t = 36)]
    tiers: usize,
    /// Sample images written per class.
    #[arg(long, default_value_t = 36)]
    samples: usize,
    /// Average raw image features before normalising, as the released script does, instead
    /// of normalised ones as the method describes.
    #[arg(long)]
    raw_image_mean: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
pub struct EpisodesArgs {
    /// Run configuration (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Sample the main phase of the strategy (default: the fixed phase).
    #[arg(long)]
    main_phase: bool,
    /// Epoch to sample.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
    /// First episode index.
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// Number of episodes.
    #[arg(long, default_value_t = 10)]
    count: usize,
}

#[derive(Args)]
pub struct TestClassesArgs {
    #[command(flatten)]
    folder: FolderArgs,
    /// Where to write the test file (JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Support images per class.
    #[arg(long, default_value_t = 32)]
    context: usize,
    /// Query images per class.
    #[arg(long, default_value_t = 50)]
    queries: usize,
    /// Seed of the draw.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// An image folder and its class split.
#[derive(Args)]
struct FolderArgs {
    /// Image-folder data root: ROOT/<class>/<images>.
    #[arg(long)]
    data: PathBuf,
    /// Class names file (LOC_synset_mapping.txt, map_clsloc.txt or id<TAB>name). Default:
    /// one found in ROOT or its parent, else the folder names.
    #[arg(long)]
    names: Option<PathBuf>,
    /// Held-out classes: `imagenet100` (the original's 100 test classes, in pair order),
    /// `none`, or a file listing test class ids one per line.
    #[arg(long, default_value = "imagenet100")]
    split: String,
}

impl FolderArgs {
    /// The split named by --split (`None` for `none`).
    fn split(&self) -> Result<Option<ClassSplit>> {
        Ok(match self.split.as_str() {
            "imagenet100" => Some(ClassSplit::imagenet100()),
            "none" => None,
            file => Some(ClassSplit::from_file(std::path::Path::new(file))?),
        })
    }
}

#[derive(Args)]
pub struct GenWorldArgs {
    /// Seed of every choice (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder to write (created; existing files are overwritten).
    #[arg(long, default_value = "world")]
    out: PathBuf,
    /// Real species.
    #[arg(long, default_value_t = 300)]
    species: usize,
    /// Real species held out of training (even).
    #[arg(long, default_value_t = 40)]
    heldout: usize,
    /// Pictures per real species.
    #[arg(long, default_value_t = 40)]
    images_per_species: usize,
    /// Novel concepts (hybrids of two real species).
    #[arg(long, default_value_t = 20)]
    concepts: usize,
    /// Pictures per concept and per look-alike parent in the novel folder.
    #[arg(long, default_value_t = 32)]
    concept_images: usize,
    /// Support pictures per class in the suites (the rest of a concept's are queries).
    #[arg(long, default_value_t = 8)]
    support_per_class: usize,
    /// Queries per ordered concept pair in isekai-pair.jsonl.
    #[arg(long, default_value_t = 2)]
    pair_queries: usize,
    /// Picture side in pixels.
    #[arg(long, default_value_t = 64)]
    image_size: u32,
}

pub fn neighbors(args: NeighborsArgs) -> Result<()> {
    let split = args.folder.split()?;
    let cache = args.cache.unwrap_or_else(|| {
        let mut name = args.out.file_name().unwrap_or_default().to_os_string();
        name.push(".features");
        args.out.with_file_name(name)
    });
    let job = NeighborJob {
        clip: lcl::model_folder::locate_clip(&args.clip)?,
        data: args.folder.data,
        names: args.folder.names,
        split,
        out: args.out,
        cache,
        settings: NeighborSettings {
            images_per_class: args.images_per_class,
            tiers: args.tiers,
            samples_per_class: args.samples,
            seed: args.seed,
            normalize_each_image: !args.raw_image_mean,
            batch_size: args.batch_size,
        },
    };
    eprintln!("backend: {}", backend_name());
    let count = lcl::neighbors::run(&job, &device()?)?;
    eprintln!("wrote {count} classes to {}", job.out.display());
    Ok(())
}

pub fn episodes(args: EpisodesArgs) -> Result<()> {
    let config = RunConfig::from_file(&args.config)?;
    let shots = if args.main_phase {
        config.sampler.schedule()
    } else {
        config.sampler.fixed_schedule()
    };
    let spec = config.train_set(shots)?;
    let sampler = EpochEpisodes::new(std::sync::Arc::new(spec), args.epoch)?;
    for index in args.start..(args.start + args.count).min(sampler.len()) {
        let episode = sampler.episode(index)?;
        let record = serde_json::json!({
            "epoch": args.epoch,
            "index": index,
            "support": episode.support.iter().map(|s| serde_json::json!([s.image, s.label])).collect::<Vec<_>>(),
            "query": episode.query,
            "question": episode.question,
            "answer": episode.answer,
        });
        println!("{record}");
    }
    Ok(())
}

pub fn test_classes(args: TestClassesArgs) -> Result<()> {
    let Some(split) = args.folder.split()? else {
        anyhow::bail!("test-classes needs held-out classes: --split imagenet100 or FILE");
    };
    let folder = ImageFolder::scan(&args.folder.data, args.folder.names.as_deref())?;
    let (_, test) = split.apply(&folder.classes)?;
    let classes = draw_test_classes(&test, args.context, args.queries, args.seed)?;
    lcl::data::jsonl::write(&args.out, &classes)?;
    eprintln!("wrote {} classes to {}", classes.len(), args.out.display());
    Ok(())
}

pub fn gen_world(args: GenWorldArgs) -> Result<()> {
    let spec = lcl::world::WorldSpec {
        seed: args.seed,
        species: args.species,
        heldout: args.heldout,
        images_per_species: args.images_per_species,
        concepts: args.concepts,
        concept_images: args.concept_images,
        support_per_class: args.support_per_class,
        pair_queries: args.pair_queries,
        image_size: args.image_size,
    };
    let started = std::time::Instant::now();
    let bar = lcl::progress::bar(0, "{msg} [{bar:40}] {pos}/{len} pictures ETA {eta}");
    bar.set_message("drawing");
    let world = lcl::world::generate(&spec, &args.out, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{}: {} species ({} held out), {} novel concepts, in {:.1} s",
        args.out.display(),
        world.species.len(),
        world.heldout.len(),
        world.concepts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
