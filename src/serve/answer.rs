//! One answer as it is generated: the text decoded so far, stop strings, and the part that
//! is safe to stream (never a piece a stop string or a later token could still take back).

/// Why an answer ended, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// `</s>` or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

impl FinishReason {
    /// The name in the API (`"stop"`, `"length"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// An answer being generated.
#[derive(Debug, Clone)]
pub struct AnswerStream {
    tokens: Vec<u32>,
    streamed: String,
    stop: Vec<String>,
    max_tokens: usize,
    eos: u32,
    finished: Option<(FinishReason, String)>,
}

/// What one token adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// New text that is safe to send.
    pub delta: String,
    /// Whether the answer goes on.
    pub goes_on: bool,
}

impl AnswerStream {
    /// An empty answer ending at `eos`, a `stop` string or `max_tokens`.
    pub fn new(stop: Vec<String>, max_tokens: usize, eos: u32) -> Self {
        Self {
            tokens: Vec::new(),
            streamed: String::new(),
            stop,
            max_tokens,
            eos,
            finished: None,
        }
    }

    /// Adds a generated token; `decode` turns ids into text (special tokens dropped).
    pub fn push(&mut self, token: u32, decode: &dyn Fn(&[u32]) -> String) -> Step {
        if self.finished.is_some() {
            return Step {
                delta: String::new(),
                goes_on: false,
            };
        }
        self.tokens.push(token);
        let text = decode(&self.tokens);
        let stopped_at = self.stop.iter().filter_map(|s| text.find(s.as_str())).min();
        let finish = if let Some(at) = stopped_at {
            Some((FinishReason::Stop, text[..at].to_string()))
        } else if token == self.eos {
            Some((FinishReason::Stop, text.clone()))
        } else if self.tokens.len() >= self.max_tokens {
            Some((FinishReason::Length, text.clone()))
        } else {
            None
        };
        match finish {
            Some((reason, text)) => {
                let delta = self.advance(&text, text.len());
                self.finished = Some((reason, text));
                Step {
                    delta,
                    goes_on: false,
                }
            }
            None => {
                let safe = text.len() - self.held_back(&text);
                Step {
                    delta: self.advance(&text, safe),
                    goes_on: true,
                }
            }
        }
    }

    /// Ends the answer where it stands if nothing ended it yet (the batch stopped); returns
    /// the rest of its text to send.
    pub fn close(&mut self, decode: &dyn Fn(&[u32]) -> String) -> String {
        if self.finished.is_some() {
            return String::new();
        }
        let text = decode(&self.tokens);
        let delta = self.advance(&text, text.len());
        self.finished = Some((FinishReason::Length, text));
        delta
    }

    /// The whole answer and why it ended, once it has.
    pub fn result(&self) -> Option<(FinishReason, &str)> {
        self.finished.as_ref().map(|(r, t)| (*r, t.as_str()))
    }

    /// Tokens generated so far (`</s>` included when produced).
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Sends `text[..upto]` past what was sent, when it extends it.
    fn advance(&mut self, text: &str, upto: usize) -> String {
        let upto = floor_char_boundary(text, upto);
        if upto <= self.streamed.len() || !text.starts_with(self.streamed.as_str()) {
            return String::new();
        }
        let delta = text[self.streamed.len()..upto].to_string();
        self.streamed.push_str(&delta);
        delta
    }

    /// Bytes at the end of `text` not yet safe to send: the longest tail that begins a stop
    /// string, or an unfinished character (a byte-fallback token waiting for the rest).
    fn held_back(&self, text: &str) -> usize {
        let partial_stop = self
            .stop
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .filter(|&k| s.is_char_boundary(k) && text.ends_with(&s[..k]))
                    .max()
            })
            .max()
            .unwrap_or(0);
        let unfinished = if text.ends_with('\u{FFFD}') {
            '\u{FFFD}'.len_utf8()
        } else {
            0
        };
        partial_stop.max(unfinished)
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token i decodes to the i-th character of the alphabet below.
    fn decode(ids: &[u32]) -> String {
        let alphabet: Vec<char> = "there is \"X\" in the image.".chars().collect();
        ids.iter()
            .filter(|&&i| i != 0)
            .map(|&i| alphabet[i as usize - 1])
            .collect()
    }

    fn run(
        stop: &[&str],
        max: usize,
        tokens: impl Iterator<Item = u32>,
    ) -> (Vec<String>, AnswerStream) {
        let mut answer = AnswerStream::new(stop.iter().map(|s| s.to_string()).collect(), max, 0);
        let mut deltas = Vec::new();
        for token in tokens {
            let step = answer.push(token, &decode);
            deltas.push(step.delta);
            if !step.goes_on {
                break;
            }
        }
        (deltas, answer)
    }

    #[test]
    fn the_streamed_pieces_add_up_to_the_answer_and_a_stop_string_is_cut_off() {
        let (deltas, answer) = run(&["\" in"], 100, 1..=26);
        let (reason, text) = answer.result().unwrap();
        assert_eq!((reason, text), (FinishReason::Stop, "there is \"X"));
        assert_eq!(deltas.concat(), text);
        // the `"` that might begin the stop string was held back until it did not
        assert!(deltas.iter().all(|d| !d.contains(" in")));
    }

    #[test]
    fn eos_and_max_tokens_end_an_answer_with_their_reasons() {
        let (_, answer) = run(&[], 100, [1, 2, 3, 0].into_iter());
        assert_eq!(answer.result().unwrap(), (FinishReason::Stop, "the"));
        assert_eq!(answer.token_count(), 4);
        let (deltas, answer) = run(&[], 5, 1..=26);
        assert_eq!(answer.result().unwrap(), (FinishReason::Length, "there"));
        assert_eq!(deltas.concat(), "there");
    }
}
