//! The sentences a run reports in `status_message`.

use crate::domain::payload::{FinishedStatus, InputError};

pub(super) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub(super) fn ingest_message(total: usize, errors: &[InputError]) -> Option<String> {
    if errors.is_empty() {
        return None;
    }
    let mut msg = format!(
        "{} of {} could not be used",
        errors.len(),
        plural(total, "input")
    );
    for e in errors {
        msg.push_str(&format!("; input {}: {}", e.input_index, e.message));
    }
    Some(msg)
}

pub(super) fn finish_message(
    status: FinishedStatus,
    total: usize,
    succeeded: usize,
    outputs: usize,
    errors: &[InputError],
) -> String {
    let head = match status {
        FinishedStatus::Completed | FinishedStatus::PartialComplete => format!(
            "{succeeded} of {} processed; {} rendered",
            plural(total, "input"),
            plural(outputs, "output")
        ),
        FinishedStatus::Failed => {
            format!("no output was produced from {}", plural(total, "input"))
        }
    };
    errors.iter().fold(head, |mut msg, e| {
        msg.push_str(&format!("; input {}: {}", e.input_index, e.message));
        msg
    })
}
