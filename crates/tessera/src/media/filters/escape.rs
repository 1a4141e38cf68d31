//! Escaping for ffmpeg filter graphs, so that no value (a path, an
//! expression) can end its option, its filter or its chain.
//!
//! A value passes two parsers (see "Notes on filtergraph escaping" in
//! ffmpeg-filters(1)): the filter's option parser, where `\`, `'` and `:`
//! are special, then the graph parser, where `\`, `'`, `[`, `]`, `,` and `;`
//! are. Escaping for the first and then for the second gives a value that
//! arrives at the filter unchanged.

/// `value` escaped to be one option value inside a filter graph.
pub(crate) fn filter_value(value: &str) -> String {
    escape(
        &escape(value, &['\\', '\'', ':']),
        &['\\', '\'', '[', ']', ',', ';'],
    )
}

fn escape(value: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A number for a filter option: finite, without exponent notation.
pub(crate) fn num(value: f64) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" || text.is_empty() {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Seconds from milliseconds, for filter options.
pub(crate) fn secs(ms: f64) -> String {
    num(ms / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_unchanged() {
        assert_eq!(filter_value("/tmp/x/text-1.txt"), "/tmp/x/text-1.txt");
    }

    #[test]
    fn every_special_character_is_escaped_for_both_levels() {
        assert_eq!(
            filter_value("a'b:c\\d,e[f]g;h"),
            "a\\\\\\'b\\\\:c\\\\\\\\d\\,e\\[f\\]g\\;h"
        );
    }

    #[test]
    fn numbers_have_no_exponent_and_no_trailing_zeros() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(-35.0), "-35");
        assert_eq!(num(1e-9), "0");
        assert_eq!(num(1e12), "1000000000000");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(secs(1500.0), "1.5");
        assert_eq!(secs(33.3333), "0.033333");
    }
}
