//! Progress bars on stderr for long work. On a terminal the bar redraws in place; otherwise (a
//! log file, `nohup`) its state is written as a plain line every 30 seconds, and once more
//! when the work ends unless the bar is cleared, so a long run in the background still says
//! how far it got while short work stays quiet.

use std::fmt::Debug;
use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How often a bar drawn as log lines writes its state.
const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A bar of `len` steps drawn with `template` (indicatif syntax, `{bar:40}` for the bar).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    if !io::stderr().is_terminal() {
        bar.set_draw_target(log_lines(io::stderr(), LOG_INTERVAL));
    }
    bar
}

/// A draw target writing a bar's state to `out` as whole lines, every `interval` from the
/// start, and its last state when the bar is dropped (nothing more once it is cleared).
pub fn log_lines<W: Write + Send + Debug + 'static>(
    out: W,
    interval: Duration,
) -> ProgressDrawTarget {
    let lines = LogLines {
        interval,
        state: Mutex::new(LogState {
            out,
            pending: String::new(),
            latest: None,
            printed_at: Instant::now(),
        }),
    };
    ProgressDrawTarget::term_like_with_hz(Box::new(lines), 4)
}

#[derive(Debug)]
struct LogLines<W: Write + Send + Debug> {
    interval: Duration,
    state: Mutex<LogState<W>>,
}

#[derive(Debug)]
struct LogState<W> {
    out: W,
    /// What the bar is drawing now (indicatif writes a frame in pieces, then flushes).
    pending: String,
    /// The last complete frame not written yet.
    latest: Option<String>,
    /// When a line was last written (at first: when the bar started).
    printed_at: Instant,
}

impl<W: Write> LogState<W> {
    fn print_latest(&mut self) -> io::Result<()> {
        if let Some(line) = self.latest.take() {
            writeln!(self.out, "{line}")?;
            self.out.flush()?;
            self.printed_at = Instant::now();
        }
        Ok(())
    }
}

impl<W: Write + Send + Debug> LogLines<W> {
    fn with_state<T>(&self, f: impl FnOnce(&mut LogState<W>) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<W: Write + Send + Debug> TermLike for LogLines<W> {
    fn width(&self) -> u16 {
        160
    }

    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write_str(s)
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.with_state(|state| state.pending.push_str(s));
        Ok(())
    }

    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.with_state(|state| {
            let frame = std::mem::take(&mut state.pending);
            let frame = frame.trim_matches(|c: char| c == '\r' || c.is_whitespace());
            if frame.is_empty() {
                // a cleared bar (`finish_and_clear`) leaves nothing to report
                state.latest = None;
                return Ok(());
            }
            state.latest = Some(frame.to_string());
            if state.printed_at.elapsed() >= self.interval {
                state.print_latest()?;
            }
            Ok(())
        })
    }
}

impl<W: Write + Send + Debug> Drop for LogLines<W> {
    fn drop(&mut self) {
        let _ = self.with_state(LogState::print_latest);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer the test reads back.
    #[derive(Debug, Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The lines `work` writes through a log-lines target of `interval`.
    fn lines_of(interval: Duration, work: impl FnOnce(&ProgressBar)) -> Vec<String> {
        let out = Shared::default();
        let bar = ProgressBar::with_draw_target(Some(5), log_lines(out.clone(), interval))
            .with_style(ProgressStyle::with_template("work {pos}/{len}").unwrap());
        work(&bar);
        drop(bar);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn short_work_writes_only_its_last_state() {
        let lines = lines_of(LOG_INTERVAL, |bar| {
            for _ in 0..5 {
                bar.inc(1);
            }
            bar.finish();
        });
        assert_eq!(lines, ["work 5/5"]);
    }

    #[test]
    fn long_work_writes_its_state_as_it_goes() {
        // an interval already over at every frame: each drawn frame is written
        let lines = lines_of(Duration::ZERO, |bar| {
            for _ in 0..5 {
                bar.inc(1);
            }
            bar.finish();
        });
        assert_eq!(
            lines.first().map(String::as_str),
            Some("work 1/5"),
            "{lines:?}"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("work 5/5"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_cleared_bar_leaves_no_last_line() {
        let lines = lines_of(LOG_INTERVAL, |bar| {
            bar.inc(3);
            bar.finish_and_clear();
        });
        assert!(lines.is_empty(), "{lines:?}");
    }
}
