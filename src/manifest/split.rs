//! Splitting a YAML stream into documents the way kubectl does (`k8s.io/apimachinery` YAMLReader):
//! a line starting with `---` followed only by spaces or a comment separates documents.
//!
//! Splitting on text rather than inside the parser is what lets one broken document leave the
//! others in the same file loadable.

/// One document of a stream: its text and the line (1-based) where that text starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub text: &'a str,
    pub first_line: usize,
    /// Set when the separator line before this document carried content after `---`
    /// (kubectl refuses such streams); holds that line's number.
    pub bad_separator: Option<usize>,
}

impl Chunk<'_> {
    /// Only blank lines, comments and `...` end markers: kubectl skips such documents.
    pub fn is_blank(&self) -> bool {
        self.text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "..."
        })
    }
}

/// The documents of `text`, blank ones left out (a file of nothing but separators costs no memory).
pub fn split<'a>(text: &'a str) -> Vec<Chunk<'a>> {
    let mut chunks = Vec::new();
    let mut push = |chunk: Chunk<'a>| {
        if chunk.bad_separator.is_some() || !chunk.is_blank() {
            chunks.push(chunk);
        }
    };
    let mut start = 0;
    let mut first_line = 1;
    let mut bad_separator = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            push(Chunk {
                text: &text[start..offset],
                first_line,
                bad_separator,
            });
            bad_separator = (!rest.is_empty() && !rest.starts_with('#')).then_some(line_no);
            start = offset + line.len();
            first_line = line_no + 1;
        }
        offset += line.len();
    }
    push(Chunk {
        text: &text[start..],
        first_line,
        bad_separator,
    });
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_separator_lines_like_kubectl() {
        let text = "a: 1\n--- # two\nb: 2\n---\n---x\nc: 3\n----\n";
        let chunks = split(text);
        let summary: Vec<_> = chunks
            .iter()
            .map(|c| (c.text, c.first_line, c.bad_separator))
            .collect();
        assert_eq!(
            summary,
            [
                ("a: 1\n", 1, None),
                ("b: 2\n", 3, None),
                ("c: 3\n", 6, Some(5)),
                ("", 8, Some(7)),
            ]
        );
        assert!(chunks[3].is_blank());
    }

    #[test]
    fn a_separator_inside_an_indented_block_is_content() {
        let text = "a: |\n  ---\n  text\n";
        assert_eq!(split(text).len(), 1);
    }
}
