//! Shared size-limiting logic: turning splitter output (pieces made of units,
//! as byte ranges of the source) into [`Chunk`]s that respect the token limit,
//! merge small neighbours, split oversized pieces at unit / paragraph / line /
//! word boundaries with overlap, trim whitespace and compute line numbers.
//!
//! Every splitter except JSON ends here, which is what guarantees the common
//! invariants: chunk text is the exact source slice, ranges lie on UTF-8 char
//! boundaries, chunks are non-empty, ordered, and jointly cover every
//! non-whitespace byte of the pieces they were given.

use super::{Chunk, IngestOptions, TokenCounter};

/// A contiguous sub-range of a piece that the packer may put a chunk boundary
/// in front of. Atomic units (code blocks) are never cut; an atomic unit larger
/// than the limit becomes its own oversized chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    pub start: usize,
    pub end: usize,
    pub atomic: bool,
}

/// A logical section of the source (a markdown section, a Rust item, the whole
/// of a text file). Pieces handed to [`pack`] must be ordered and must not
/// overlap; units of a piece must tile `start..end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub start: usize,
    pub end: usize,
    pub heading_path: Vec<String>,
    pub units: Vec<Unit>,
    /// Never merged with neighbours (e.g. Rust module docs).
    pub solo: bool,
}

impl Piece {
    /// A piece made of one splittable unit.
    pub fn plain(start: usize, end: usize, heading_path: Vec<String>) -> Self {
        Piece {
            start,
            end,
            heading_path,
            units: vec![Unit {
                start,
                end,
                atomic: false,
            }],
            solo: false,
        }
    }
}

/// How consecutive small pieces may be merged into one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MergeRule {
    /// Never merge pieces.
    Never,
    /// Markdown: merge a section into the current chunk when the common prefix
    /// of their heading paths is the new section's parent (siblings and
    /// children under a shared heading, or top-level siblings), and the section
    /// either structures the discussion ("Example") or follows only a few lines
    /// (see `starts_topic`). The merged chunk's heading path is that common
    /// prefix; top-level siblings, which share none, get one element naming the
    /// first and last merged sections.
    Sections,
    /// Rust: merge items that live in the same container (all but the last
    /// path element equal). The merged chunk's path is the container plus one
    /// element listing the merged item labels, joined with ", ".
    SameContainer,
}

/// Heuristic "readable" token estimate shared by the packer.
fn fits(tokens: &dyn TokenCounter, src: &str, start: usize, end: usize, limit: usize) -> bool {
    tokens.count(&src[start..end]) <= limit
}

/// The size of a growing range `start..end`. An extension is counted on its own and added:
/// the tokens of a concatenation are about the sum of its parts' (a few fewer when a word is
/// joined across the seam), so the whole range is recounted only when the sum passes the
/// limit. This keeps packing linear in the text instead of recounting every prefix.
struct Run {
    start: usize,
    end: usize,
    tokens: usize,
}

impl Run {
    fn new(tokens: &dyn TokenCounter, src: &str, start: usize, end: usize) -> Run {
        Run {
            start,
            end,
            tokens: tokens.count(&src[start..end]),
        }
    }

    /// Extends the range to `end` when it stays within `limit`.
    fn extend(&mut self, counter: &dyn TokenCounter, src: &str, end: usize, limit: usize) -> bool {
        let mut t = self.tokens + counter.count(&src[self.end..end]);
        if t > limit {
            t = counter.count(&src[self.start..end]);
            if t > limit {
                return false;
            }
        }
        self.end = end;
        self.tokens = t;
        true
    }
}

/// A section whose heading names something of its own ("Monday", "The entry API") rather
/// than a part of the discussion above it ("Example", "See also"). A small model reports about
/// one finding per chunk, so sections on different topics go to different chunks once the
/// chunk holds more than a few lines.
fn starts_topic(section: &Piece) -> bool {
    section
        .heading_path
        .last()
        .is_some_and(|h| !crate::text::words::is_structure_heading(h))
}

fn common_prefix(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Packs pieces into chunks (ordinals are assigned at the end, from 0).
pub(crate) fn pack(
    src: &str,
    pieces: &[Piece],
    rule: MergeRule,
    opts: &IngestOptions,
    tokens: &dyn TokenCounter,
) -> Vec<Chunk> {
    let limit = opts.chunk_tokens.max(1);
    let mut out = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        let p = &pieces[i];
        let mut run = Run::new(tokens, src, p.start, p.end);
        if run.tokens <= limit {
            let mut j = i + 1;
            let mut path = p.heading_path.clone();
            let mut labels: Vec<String> = p.heading_path.last().cloned().into_iter().collect();
            while j < pieces.len() {
                let q = &pieces[j];
                let allowed = !p.solo
                    && !q.solo
                    && match rule {
                        MergeRule::Never => false,
                        MergeRule::Sections => {
                            let c = common_prefix(&path, &q.heading_path);
                            c + 1 == q.heading_path.len()
                                && (run.tokens < limit / 8 || !starts_topic(q))
                        }
                        MergeRule::SameContainer => {
                            !p.heading_path.is_empty()
                                && !q.heading_path.is_empty()
                                && p.heading_path[..p.heading_path.len() - 1]
                                    == q.heading_path[..q.heading_path.len() - 1]
                        }
                    };
                if !allowed || !run.extend(tokens, src, q.end, limit) {
                    break;
                }
                match rule {
                    MergeRule::Sections => {
                        let c = common_prefix(&path, &q.heading_path);
                        path.truncate(c);
                    }
                    _ => {
                        if let Some(l) = q.heading_path.last() {
                            labels.push(l.clone());
                        }
                    }
                }
                j += 1;
            }
            if rule == MergeRule::SameContainer && j > i + 1 {
                path.pop();
                path.push(labels.join(", "));
            } else if rule == MergeRule::Sections && path.is_empty() {
                let mut tops: Vec<&String> = pieces[i..j]
                    .iter()
                    .filter_map(|p| p.heading_path.first())
                    .collect();
                tops.dedup();
                match tops[..] {
                    [] | [_] => {}
                    [first, last] => path.push(format!("{first}, {last}")),
                    [first, .., last] => path.push(format!("{first} … {last}")),
                }
            }
            push_chunk(&mut out, src, p.start, pieces[j - 1].end, &path);
            i = j;
        } else {
            split_piece(&mut out, src, p, limit, opts.overlap_tokens, tokens);
            i += 1;
        }
    }
    finish(src, &mut out);
    out
}

/// Assigns ordinals 0..n in order and the 1-based line ranges (one pass over
/// the source to index newlines, then a binary search per chunk).
pub(crate) fn finish(src: &str, chunks: &mut [Chunk]) {
    let newlines: Vec<usize> = src
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line =
        |pos: usize| u32::try_from(newlines.partition_point(|&n| n < pos) + 1).unwrap_or(u32::MAX);
    for (n, c) in chunks.iter_mut().enumerate() {
        c.ordinal = u32::try_from(n).unwrap_or(u32::MAX);
        c.line_start = line(c.byte_start);
        c.line_end = line(c.byte_end.saturating_sub(1).max(c.byte_start));
    }
}

/// Splits one oversized piece along its units, with overlap between chunks.
fn split_piece(
    out: &mut Vec<Chunk>,
    src: &str,
    p: &Piece,
    limit: usize,
    overlap: usize,
    tokens: &dyn TokenCounter,
) {
    let path = &p.heading_path;
    // Where the next chunk may start early to overlap the previous one.
    let mut overlap_start: Option<usize> = None;
    // The chunk being built.
    let mut cur: Option<Run> = None;
    // Last unit added to `cur`.
    let mut last_unit: Option<&Unit> = None;
    let mut k = 0;
    while k < p.units.len() {
        let u = &p.units[k];
        match cur {
            None => {
                let start = overlap_start.take().unwrap_or(u.start);
                let with_overlap = Run::new(tokens, src, start, u.end);
                let alone = || Run::new(tokens, src, u.start, u.end);
                if with_overlap.tokens <= limit {
                    cur = Some(with_overlap);
                    last_unit = Some(u);
                } else if let Some(r) = Some(alone()).filter(|r| r.tokens <= limit) {
                    // Fits only without the overlap.
                    cur = Some(r);
                    last_unit = Some(u);
                } else if u.atomic {
                    push_chunk(out, src, u.start, u.end, path);
                    last_unit = Some(u);
                } else {
                    let ov = if start < u.start { Some(start) } else { None };
                    overlap_start =
                        split_range(out, src, u.start, u.end, ov, limit, overlap, tokens, path);
                    last_unit = None;
                }
                k += 1;
            }
            Some(ref mut run) => {
                if run.extend(tokens, src, u.end, limit) {
                    last_unit = Some(u);
                    k += 1;
                } else {
                    let (s, e) = (run.start, run.end);
                    cur = None;
                    push_chunk(out, src, s, e, path);
                    let first = trim_range(src, s, e).map_or(s, |(t, _)| t);
                    overlap_start = match last_unit {
                        Some(l) if !l.atomic => {
                            overlap_point(src, l.start.max(first + 1), e, overlap, tokens)
                        }
                        _ => None,
                    };
                }
            }
        }
    }
    if let Some(run) = cur {
        push_chunk(out, src, run.start, run.end, path);
    }
}

/// Splits `start..end` (a non-atomic run of text) into chunks of at most
/// `limit` tokens, breaking after blank lines, else line ends, else
/// whitespace, else at a char boundary. `first_overlap` is an earlier start for
/// the first chunk (overlap with what came before). Returns the overlap start
/// for whatever follows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn split_range(
    out: &mut Vec<Chunk>,
    src: &str,
    start: usize,
    end: usize,
    first_overlap: Option<usize>,
    limit: usize,
    overlap: usize,
    tokens: &dyn TokenCounter,
    path: &[String],
) -> Option<usize> {
    let mut pos = start;
    let mut ostart = first_overlap;
    let mut next_overlap = None;
    while pos < end {
        if src[pos..end].trim().is_empty() {
            break;
        }
        let mut cstart = ostart.take().unwrap_or(pos);
        let mut max_end = max_fitting_end(src, cstart, pos, end, limit, tokens);
        if max_end <= pos && cstart < pos {
            cstart = pos;
            max_end = max_fitting_end(src, cstart, pos, end, limit, tokens);
        }
        if max_end <= pos {
            // Not even one char fits: take one char to make progress.
            max_end = next_boundary(src, pos);
        }
        let brk = if max_end >= end {
            end
        } else {
            best_break(src, pos, max_end)
        };
        push_chunk(out, src, cstart, brk, path);
        // The next chunk must start after this one's first non-blank byte.
        let first = trim_range(src, cstart, brk).map_or(cstart, |(s, _)| s);
        ostart = overlap_point(src, first.max(pos) + 1, brk, overlap, tokens);
        next_overlap = ostart;
        pos = brk;
    }
    next_overlap
}

fn next_boundary(src: &str, pos: usize) -> usize {
    let mut p = pos + 1;
    while p < src.len() && !src.is_char_boundary(p) {
        p += 1;
    }
    p.min(src.len())
}

fn floor_boundary(src: &str, mut p: usize) -> usize {
    while p > 0 && !src.is_char_boundary(p) {
        p -= 1;
    }
    p
}

/// Largest char boundary `m` in `pos..=end` with `src[cstart..m]` within the
/// limit (assuming the counter grows with the text). Exponential then binary
/// search keeps the cost proportional to the chunk size.
fn max_fitting_end(
    src: &str,
    cstart: usize,
    pos: usize,
    end: usize,
    limit: usize,
    tokens: &dyn TokenCounter,
) -> usize {
    let mut lo = pos; // known to fit (or == pos)
    let mut step = 256usize;
    let mut hi;
    loop {
        let probe = floor_boundary(src, (pos + step).min(end));
        if probe >= end {
            // Only reached once a probe at half the distance fitted, so
            // counting the rest stays proportional to the chunk size.
            if fits(tokens, src, cstart, end, limit) {
                return end;
            }
            hi = end;
            break;
        }
        if !fits(tokens, src, cstart, probe, limit) {
            hi = probe;
            break;
        }
        lo = probe;
        step = step.saturating_mul(2);
    }
    // Invariant: lo fits (or is pos), hi does not.
    loop {
        let mut mid = floor_boundary(src, lo + (hi - lo) / 2);
        if mid <= lo {
            mid = next_boundary(src, lo);
        }
        if mid >= hi {
            break;
        }
        if fits(tokens, src, cstart, mid, limit) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Best break position in `(pos, max_end]`: after the last blank line, else
/// after the last newline, else after the last whitespace run, else `max_end`.
fn best_break(src: &str, pos: usize, max_end: usize) -> usize {
    let window = &src[pos..max_end];
    // After a blank line: "\n" followed by optional spaces/\r then "\n".
    let bytes = window.as_bytes();
    let mut last_nl: Option<usize> = None;
    let mut last_blank: Option<usize> = None;
    let mut prev_nl: Option<usize> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            if let Some(pn) = prev_nl {
                if window[pn + 1..i].trim().is_empty() {
                    last_blank = Some(i + 1);
                }
            }
            prev_nl = Some(i);
            last_nl = Some(i + 1);
        }
    }
    let candidate = last_blank
        .or(last_nl)
        .filter(|&c| c > 0 && !window[..c].trim().is_empty());
    if let Some(c) = candidate {
        return pos + c;
    }
    // Last whitespace char followed by non-whitespace.
    let mut best = None;
    let mut prev_ws = false;
    for (i, ch) in window.char_indices() {
        if ch.is_whitespace() {
            prev_ws = true;
        } else {
            if prev_ws && i > 0 && !window[..i].trim().is_empty() {
                best = Some(i);
            }
            prev_ws = false;
        }
    }
    match best {
        Some(b) => pos + b,
        None => max_end,
    }
}

/// Start of the overlap for the chunk following one that ends at `end`: the
/// earliest word start in `lo..end` such that `src[p..end]` stays within
/// `overlap` tokens. `None` when no overlap is wanted or possible.
pub(crate) fn overlap_point(
    src: &str,
    lo: usize,
    end: usize,
    overlap: usize,
    tokens: &dyn TokenCounter,
) -> Option<usize> {
    if overlap == 0 || lo >= end {
        return None;
    }
    let lo = {
        let mut l = lo;
        while l < end && !src.is_char_boundary(l) {
            l += 1;
        }
        l
    };
    let window = &src[lo..end];
    let mut best = None;
    // Tokens of src[best..end], summed word by word (see `Run`).
    let mut sum = 0;
    let mut seam = end;
    let mut iter = window.char_indices().rev().peekable();
    // Walk backwards; a word starts at i when window[i] is not whitespace and
    // the char before it is whitespace.
    while let Some((i, ch)) = iter.next() {
        if ch.is_whitespace() {
            continue;
        }
        let prev_ws = match iter.peek() {
            Some((_, p)) => p.is_whitespace(),
            None => false,
        };
        if prev_ws {
            let p = lo + i;
            if src[p..end].trim().is_empty() {
                continue;
            }
            sum += tokens.count(&src[p..seam]);
            seam = p;
            if sum > overlap {
                sum = tokens.count(&src[p..end]);
            }
            if sum <= overlap {
                best = Some(p);
            } else {
                break;
            }
        }
    }
    best
}

/// 1-based line number of the line holding byte `pos`.
#[cfg(test)]
pub(crate) fn line_of(src: &str, pos: usize) -> u32 {
    let n = src.as_bytes()[..pos.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

/// Trims `start..end` to its non-whitespace content; `None` when nothing is left.
pub(crate) fn trim_range(src: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = &src[start..end];
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    Some((start + lead, start + lead + t.len()))
}

/// Builds a chunk over `start..end` with arbitrary text (used by JSON).
/// Ordinal and lines are filled in by [`finish`].
pub(crate) fn chunk_with_text(
    start: usize,
    end: usize,
    heading_path: &[String],
    text: String,
) -> Chunk {
    Chunk {
        ordinal: 0,
        byte_start: start,
        byte_end: end,
        line_start: 0,
        line_end: 0,
        heading_path: heading_path.to_vec(),
        text,
        tokens: 0,
    }
}

/// Trims and pushes a chunk whose text is the source slice; skips blank ranges.
pub(crate) fn push_chunk(
    out: &mut Vec<Chunk>,
    src: &str,
    start: usize,
    end: usize,
    path: &[String],
) {
    if let Some((s, e)) = trim_range(src, start, end) {
        out.push(chunk_with_text(s, e, path, src[s..e].to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::ApproxTokens;

    fn opts(limit: usize, overlap: usize) -> IngestOptions {
        IngestOptions {
            chunk_tokens: limit,
            overlap_tokens: overlap,
            ..IngestOptions::default()
        }
    }

    #[test]
    fn line_numbers() {
        let s = "a\nb\r\nc";
        assert_eq!(line_of(s, 0), 1);
        assert_eq!(line_of(s, 2), 2);
        assert_eq!(line_of(s, 5), 3);
    }

    #[test]
    fn trim() {
        assert_eq!(trim_range("  ab \n", 0, 6), Some((2, 4)));
        assert_eq!(trim_range(" \n ", 0, 3), None);
    }

    #[test]
    fn split_huge_word_makes_progress() {
        let s = "x".repeat(1000);
        let p = Piece::plain(0, s.len(), vec![]);
        let chunks = pack(&s, &[p], MergeRule::Never, &opts(10, 3), &ApproxTokens);
        assert!(chunks.len() >= 25);
        assert_eq!(chunks.first().map(|c| c.byte_start), Some(0));
        assert_eq!(chunks.last().map(|c| c.byte_end), Some(1000));
        for w in chunks.windows(2) {
            assert_eq!(w[0].byte_end, w[1].byte_start, "no overlap inside one word");
        }
    }

    #[test]
    fn overlap_between_line_chunks() {
        let s: String = (0..200).map(|i| format!("word{i} ")).collect();
        let p = Piece::plain(0, s.len(), vec![]);
        let chunks = pack(&s, &[p], MergeRule::Never, &opts(20, 4), &ApproxTokens);
        assert!(chunks.len() > 3);
        for w in chunks.windows(2) {
            assert!(w[1].byte_start < w[0].byte_end, "chunks overlap");
            assert!(w[1].byte_start > w[0].byte_start, "chunks advance");
            assert!(ApproxTokens.count(&w[1].text) <= 20);
        }
    }

    #[test]
    fn overlap_never_restarts_at_previous_start() {
        // Found by proptest: an overlap start equal to the previous chunk's
        // (trimmed) start produced two chunks starting at the same byte.
        for (s, limit, overlap) in [
            ("a aaaa\r\naaaaaa  \n a  aaa a\n", 3, 2),
            ("{\n  \"\": -100000,\n  \"", 1, 8),
        ] {
            let p = Piece::plain(0, s.len(), vec![]);
            let chunks = pack(
                s,
                &[p],
                MergeRule::Never,
                &opts(limit, overlap),
                &ApproxTokens,
            );
            for w in chunks.windows(2) {
                assert!(w[1].byte_start > w[0].byte_start, "{chunks:#?}");
            }
        }
    }

    #[test]
    fn multibyte_never_cut() {
        let s = "é".repeat(500) + " " + &"日本".repeat(300);
        let p = Piece::plain(0, s.len(), vec![]);
        let chunks = pack(&s, &[p], MergeRule::Never, &opts(7, 2), &ApproxTokens);
        for c in &chunks {
            assert!(s.is_char_boundary(c.byte_start) && s.is_char_boundary(c.byte_end));
            assert_eq!(c.text, &s[c.byte_start..c.byte_end]);
        }
    }

    #[test]
    fn atomic_unit_kept_whole() {
        let s = format!("intro\n\n{}\n\nafter", "code ".repeat(100));
        let units = vec![
            Unit {
                start: 0,
                end: 7,
                atomic: false,
            },
            Unit {
                start: 7,
                end: 7 + 500 + 2,
                atomic: true,
            },
            Unit {
                start: 509,
                end: s.len(),
                atomic: false,
            },
        ];
        let p = Piece {
            start: 0,
            end: s.len(),
            heading_path: vec![],
            units,
            solo: false,
        };
        let chunks = pack(&s, &[p], MergeRule::Never, &opts(20, 5), &ApproxTokens);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].text, "code ".repeat(100).trim_end());
        assert_eq!(
            chunks[2].text, "after",
            "no overlap taken from an atomic unit"
        );
    }

    #[test]
    fn same_container_merge_labels() {
        let s = "struct A;\nstruct B;\n";
        let pieces = vec![
            Piece::plain(0, 10, vec!["struct A".into()]),
            Piece::plain(10, 20, vec!["struct B".into()]),
        ];
        let chunks = pack(
            s,
            &pieces,
            MergeRule::SameContainer,
            &opts(100, 0),
            &ApproxTokens,
        );
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            chunks[0].heading_path,
            vec!["struct A, struct B".to_string()]
        );
    }
}
