//! Completion indexes of Indexed Jobs: the `batch.kubernetes.io/job-completion-index`
//! annotation of pods and the compressed interval lists of
//! `status.completedIndexes` / `status.failedIndexes` ("0-2,4,6,7").

use std::fmt;

use serde_json::Value;

use crate::controllers::objects;

pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

/// The completion index of a pod (annotation, else label); None when missing
/// or not a non-negative number.
pub fn completion_index(pod: &Value) -> Option<i64> {
    let text = objects::annotation(pod, INDEX_KEY).or_else(|| {
        objects::labels(pod)
            .and_then(|l| l.get(INDEX_KEY))
            .and_then(Value::as_str)
    })?;
    text.parse::<i64>().ok().filter(|i| *i >= 0)
}

/// Sorted, disjoint, non-adjacent inclusive intervals (upstream orderedIntervals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// Parses a status list, keeping indexes below `completions`; malformed
    /// parts are skipped, as upstream does.
    pub fn parse(text: &str, completions: i64) -> Self {
        let mut out = Intervals::default();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
                None => (part.parse::<i64>(), part.parse::<i64>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                continue;
            };
            if first < 0 || last < first || first >= completions {
                continue;
            }
            out.push(first, last.min(completions - 1));
        }
        out
    }

    /// Appends an interval starting after every one held, merging adjacency.
    fn push(&mut self, first: i64, last: i64) {
        match self.0.last_mut() {
            Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
            _ => self.0.push((first, last)),
        }
    }

    /// The union with `indexes` (any order, duplicates allowed).
    pub fn with_indexes(&self, indexes: impl IntoIterator<Item = i64>) -> Self {
        let mut all: Vec<(i64, i64)> = self.0.clone();
        all.extend(indexes.into_iter().filter(|i| *i >= 0).map(|i| (i, i)));
        all.sort_unstable();
        let mut out = Intervals::default();
        for (a, b) in all {
            out.push(a, b);
        }
        out
    }

    pub fn has(&self, ix: i64) -> bool {
        let pos = self.0.partition_point(|(_, last)| *last < ix);
        self.0.get(pos).is_some_and(|(first, _)| *first <= ix)
    }

    pub fn total(&self) -> i64 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// Up to `count` indexes below `completions` not held, lowest first.
    pub fn first_missing(&self, count: usize, completions: i64) -> Vec<i64> {
        let mut out = Vec::with_capacity(count);
        let mut candidate = 0;
        for (first, last) in &self.0 {
            while candidate < completions && out.len() < count && candidate < *first {
                out.push(candidate);
                candidate += 1;
            }
            candidate = candidate.max(last + 1);
        }
        while candidate < completions && out.len() < count {
            out.push(candidate);
            candidate += 1;
        }
        out
    }
}

/// Upstream's text form: two adjacent indexes are written "3,4", longer
/// runs "0-2".
impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (first, last)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{first}")?;
            if last > first {
                let sep = if *last == first + 1 { "," } else { "-" };
                write!(f, "{sep}{last}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranges_compress_as_upstream() {
        let ix = Intervals::default().with_indexes([4, 0, 2, 1, 6, 7]);
        assert_eq!(ix.to_string(), "0-2,4,6,7");
        assert_eq!(ix.total(), 6);
        assert!(ix.has(1) && ix.has(7) && !ix.has(3) && !ix.has(5) && !ix.has(8));
        assert_eq!(Intervals::default().to_string(), "");
    }

    #[test]
    fn parsing_drops_junk_and_out_of_range_indexes() {
        let ix = Intervals::parse("0-2,x,4,6-9,20", 8);
        assert_eq!(ix.to_string(), "0-2,4,6,7");
        assert_eq!(Intervals::parse("0,1,2", 10).to_string(), "0-2");
        let merged = ix.with_indexes([3, 5]);
        assert_eq!(merged.to_string(), "0-7");
    }

    #[test]
    fn pending_indexes_fill_the_gaps_first() {
        let done = Intervals::parse("0,2-3", 10);
        assert_eq!(done.first_missing(3, 10), vec![1, 4, 5]);
        assert_eq!(done.first_missing(10, 6), vec![1, 4, 5]);
        assert!(done.first_missing(0, 10).is_empty());
    }

    #[test]
    fn completion_index_from_annotation_or_label() {
        let pod = json!({"metadata": {"annotations": {INDEX_KEY: "3"}}});
        assert_eq!(completion_index(&pod), Some(3));
        let pod = json!({"metadata": {"labels": {INDEX_KEY: "2"}}});
        assert_eq!(completion_index(&pod), Some(2));
        let pod = json!({"metadata": {"annotations": {INDEX_KEY: "-1"}}});
        assert_eq!(completion_index(&pod), None);
    }
}
