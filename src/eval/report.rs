//! Accuracy per run and shot count from the predictions: `results.json` and a Markdown
//! table (rows = runs, columns = shots).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::eval::run::Prediction;

/// Accuracy of one run at one shot count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Correct answers.
    pub correct: usize,
    /// Episodes scored.
    pub total: usize,
    /// `correct / total`.
    pub accuracy: f64,
}

/// Accuracy of one run at every shot count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    /// The run's name (suite, ablation).
    pub name: String,
    /// Shot count -> accuracy.
    pub shots: BTreeMap<usize, Cell>,
}

/// Accuracy of every run (in first-seen order) at every shot count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    /// The runs.
    pub runs: Vec<RunResult>,
}

impl Results {
    /// Tallies `predictions`.
    pub fn from_predictions(predictions: &[Prediction]) -> Self {
        let mut runs: Vec<RunResult> = Vec::new();
        for p in predictions {
            let index = match runs.iter().position(|r| r.name == p.run) {
                Some(i) => i,
                None => {
                    runs.push(RunResult {
                        name: p.run.clone(),
                        shots: BTreeMap::new(),
                    });
                    runs.len() - 1
                }
            };
            let cell = runs[index].shots.entry(p.shots).or_insert(Cell {
                correct: 0,
                total: 0,
                accuracy: 0.0,
            });
            cell.total += 1;
            cell.correct += usize::from(p.correct);
            cell.accuracy = cell.correct as f64 / cell.total as f64;
        }
        Self { runs }
    }

    /// The Markdown table: one row per run, one column per shot count, accuracy with two
    /// decimals as the paper prints it.
    pub fn markdown(&self) -> String {
        let mut shots: Vec<usize> = self
            .runs
            .iter()
            .flat_map(|r| r.shots.keys().copied())
            .collect();
        shots.sort_unstable();
        shots.dedup();
        let mut out = String::from("| run |");
        for n in &shots {
            out.push_str(&format!(" {n} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(shots.len()));
        out.push('\n');
        for run in &self.runs {
            out.push_str(&format!("| {} |", run.name));
            for n in &shots {
                match run.shots.get(n) {
                    Some(cell) => out.push_str(&format!(" {:.2} |", cell.accuracy)),
                    None => out.push_str(" - |"),
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(run: &str, shots: usize, correct: bool) -> Prediction {
        Prediction {
            run: run.into(),
            shots,
            episode: format!("{run}-{shots}"),
            prompt_tokens: 10,
            prediction: String::new(),
            positive: "a".into(),
            negative: "b".into(),
            correct,
            log_likelihoods: None,
        }
    }

    #[test]
    fn tallies_and_prints_one_row_per_run() {
        let results = Results::from_predictions(&[
            prediction("isekai-10", 2, true),
            prediction("isekai-10", 2, false),
            prediction("isekai-10", 4, true),
            prediction("isekai-10 false 100%", 2, false),
        ]);
        assert_eq!(results.runs[0].shots[&2].accuracy, 0.5);
        assert_eq!(
            results.markdown(),
            "| run | 2 | 4 |\n|---|---:|---:|\n| isekai-10 | 0.50 | 1.00 |\n| isekai-10 false 100% | 0.00 | - |\n"
        );
    }
}
