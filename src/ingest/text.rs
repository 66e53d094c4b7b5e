//! Plain-text splitter: paragraphs separated by blank lines are packed up to
//! the token limit; an oversized paragraph is cut at line, then word, then
//! char boundaries, with overlap. Chunks carry an empty heading path.

use super::chunk::{pack, MergeRule, Piece, Unit};
use super::{Chunk, IngestOptions, TokenCounter};

/// Byte ranges of blank-line separated paragraphs, tiling `start..end`: each
/// range runs from a paragraph's first line to the start of the next one.
pub(crate) fn paragraph_units(src: &str, start: usize, end: usize) -> Vec<Unit> {
    let mut starts = vec![start];
    let mut in_blank = false;
    let mut line_start = start;
    let region = &src[start..end];
    for (i, b) in region.bytes().enumerate() {
        if b == b'\n' {
            let abs_end = start + i + 1;
            let line = &src[line_start..abs_end];
            let blank = line.trim().is_empty();
            if blank {
                in_blank = true;
            } else if in_blank {
                starts.push(line_start);
                in_blank = false;
            }
            line_start = abs_end;
        }
    }
    if line_start < end && in_blank && !src[line_start..end].trim().is_empty() {
        starts.push(line_start);
    }
    starts.dedup();
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(end);
        if e > s {
            units.push(Unit {
                start: s,
                end: e,
                atomic: false,
            });
        }
    }
    units
}

/// Splits plain text into paragraph-packed chunks.
pub fn split(text: &str, opts: &IngestOptions, tokens: &dyn TokenCounter) -> Vec<Chunk> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let piece = Piece {
        start: 0,
        end: text.len(),
        heading_path: Vec::new(),
        units: paragraph_units(text, 0, text.len()),
        solo: false,
    };
    pack(text, &[piece], MergeRule::Never, opts, tokens)
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
    fn paragraphs_tile() {
        let s = "a\nb\n\n\nc\n  \nd";
        let u = paragraph_units(s, 0, s.len());
        let starts: Vec<usize> = u.iter().map(|u| u.start).collect();
        assert_eq!(starts, vec![0, 6, 11]);
        assert_eq!(u.last().map(|u| u.end), Some(s.len()));
    }

    #[test]
    fn small_text_is_one_chunk() {
        let s = "Title\n\nSome words here.\n";
        let c = split(s, &IngestOptions::default(), &ApproxTokens);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].text, "Title\n\nSome words here.");
        assert_eq!((c[0].line_start, c[0].line_end), (1, 3));
        assert!(c[0].heading_path.is_empty());
    }

    #[test]
    fn splits_at_paragraphs_with_crlf_and_no_trailing_newline() {
        let para = "word ".repeat(12);
        let s = format!("{para}\r\n\r\n{para}\r\n\r\n{para}");
        let c = split(&s, &opts(20, 0), &ApproxTokens);
        assert_eq!(c.len(), 3);
        for (i, ch) in c.iter().enumerate() {
            assert_eq!(ch.text, para.trim());
            assert_eq!(ch.line_start as usize, 1 + 2 * i);
            assert_eq!(ch.line_end, ch.line_start);
            assert_eq!(ch.ordinal as usize, i);
        }
    }

    #[test]
    fn huge_single_paragraph_splits_with_overlap() {
        let s = "lorem ipsum dolor sit amet ".repeat(400);
        let c = split(&s, &opts(50, 8), &ApproxTokens);
        assert!(c.len() > 10);
        for w in c.windows(2) {
            assert!(w[1].byte_start < w[0].byte_end);
            assert!(w[1].byte_start > w[0].byte_start);
        }
        assert_eq!(c.last().map(|c| c.byte_end), Some(s.trim_end().len()));
    }

    #[test]
    fn multibyte_near_boundaries() {
        let s = "ünïcödé ".repeat(50) + "\n\n" + &"🦀".repeat(100);
        let c = split(&s, &opts(16, 3), &ApproxTokens);
        for ch in &c {
            assert_eq!(ch.text, &s[ch.byte_start..ch.byte_end]);
        }
        assert!(c.len() > 5);
    }
}
