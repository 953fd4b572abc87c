//! Evaluation: suites, the original's scorer, running episodes with resume, and reports.

pub mod answerer;
pub mod default;
pub mod inputs;
pub mod job;
pub mod likelihood;
pub mod plot;
pub mod prototype;
pub mod report;
pub mod request;
pub mod run;
pub mod score;
pub mod suite;
