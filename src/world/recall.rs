//! The miniature's stand-in for LLM pretraining: text-only associative-recall conversations.
//! The real LCL fine-tunes LLaMA-7B, whose pretraining already taught it to find a key in its
//! context and copy what follows; a mini LLaMA trained from scratch on captions never needs
//! to. Each conversation lists invented names for invented words, then asks for several of
//! them (every answer is supervised), with names drawn like the LCL sampler's invented labels.
//! No picture and no world name appears: nothing here can leak the evaluation concepts.

use lcl_model::rng::Rng;

use crate::data::conversation::{Conversation, Turn};
use crate::data::draw::random_label;

/// Conversations in `text/recall.json`.
pub const RECALL_CONVERSATIONS: usize = 10_000;
/// Questions asked after the list, per conversation.
const QUESTIONS: usize = 4;

/// `count` recall conversations, a pure function of `seed`.
pub fn recall_conversations(seed: u64, count: usize) -> Vec<Conversation> {
    (0..count)
        .map(|index| {
            let mut rng = Rng::derive(seed, &[30, index as u64]);
            let pairs = 2 + rng.below(7);
            let mut keys: Vec<String> = Vec::with_capacity(pairs);
            while keys.len() < pairs {
                let key = key(&mut rng);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            let values: Vec<String> = (0..pairs).map(|_| random_label(&mut rng)).collect();
            let listed: Vec<String> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| format!("\"{k}\" is \"{v}\"."))
                .collect();
            let mut turns = Vec::with_capacity(2 * QUESTIONS);
            for q in 0..QUESTIONS {
                let asked = rng.below(pairs);
                let question = format!("What is \"{}\"?", keys[asked]);
                turns.push(Turn {
                    from: "human".into(),
                    value: if q == 0 {
                        format!("Remember: {} {question}", listed.join(" "))
                    } else {
                        question
                    },
                });
                turns.push(Turn {
                    from: "gpt".into(),
                    value: format!("it is \"{}\".", values[asked]),
                });
            }
            Conversation {
                id: None,
                image: None,
                conversations: turns,
            }
        })
        .collect()
}

/// A word of 2 to 5 letters.
fn key(rng: &mut Rng) -> String {
    let len = 2 + rng.below(4);
    (0..len)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_is_the_value_listed_for_the_asked_key() {
        let conversations = recall_conversations(7, 50);
        assert_eq!(conversations, recall_conversations(7, 50));
        for conversation in &conversations {
            assert!(conversation.image.is_none());
            let turns = &conversation.conversations;
            assert_eq!(turns.len(), 2 * QUESTIONS);
            let listing = &turns[0].value;
            for pair in turns.chunks(2) {
                let key = pair[0].value.rsplit("What is ").next().unwrap();
                let key = key.trim_end_matches('?');
                let value = pair[1]
                    .value
                    .trim_start_matches("it is ")
                    .trim_end_matches('.');
                assert!(
                    listing.contains(&format!("{key} is {value}.")),
                    "{key} -> {value} not in {listing}"
                );
            }
        }
    }
}
