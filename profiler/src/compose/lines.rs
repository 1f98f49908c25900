//! Where keys are in the compose file's text: the line of a key path (for
//! error messages) and the extent of a block (for the textual patch).
//!
//! A small scanner of block-style YAML, not a parser: the YAML library has
//! already read the file, and this only finds keys it read. A key it cannot
//! place costs an error message its line (the parent's is given instead)
//! or sends the patch to its fallback; every patch is checked by parsing
//! its result again.

/// One mapping key of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Its path from the top (`["services", "web", "image"]`); a sequence
    /// item is the segment `-`.
    pub path: Vec<String>,
    /// Line index (0-based).
    pub line: usize,
    /// Column of the key.
    pub indent: usize,
    /// What follows the colon on the same line, comment removed.
    pub rest: String,
}

/// The scanned text.
pub struct Lines<'a> {
    lines: Vec<&'a str>,
    keys: Vec<Key>,
}

fn indent_of(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

fn is_content(l: &str) -> bool {
    let t = l.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// Splits `key: rest` (the key plain or quoted); `None` when the text is no
/// mapping key.
fn split_key(t: &str) -> Option<(String, String)> {
    let (key, after) = if let Some(q) = t.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = t[1..].find(q)? + 1;
        (t[1..end].to_owned(), &t[end + 1..])
    } else {
        let i = t
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| t[i + 1..].is_empty() || t[i + 1..].starts_with([' ', '\t']))?;
        if t[..i].starts_with(['[', '{', '"', '\'']) {
            return None;
        }
        (t[..i].trim_end().to_owned(), &t[i..])
    };
    let after = after.trim_start().strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = match after.find(" #") {
        Some(i) => &after[..i],
        None => after,
    };
    Some((key, rest.trim().to_owned()))
}

impl<'a> Lines<'a> {
    /// Scans `text`.
    #[must_use]
    pub fn new(text: &'a str) -> Self {
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let mut keys = Vec::new();
        let mut stack: Vec<(usize, String)> = Vec::new();
        // Lines more indented than this belong to a block scalar.
        let mut scalar_above: Option<usize> = None;
        for (n, l) in lines.iter().enumerate() {
            if !is_content(l) {
                continue;
            }
            let mut indent = indent_of(l);
            if let Some(s) = scalar_above {
                if indent > s {
                    continue;
                }
                scalar_above = None;
            }
            let mut t = l.trim();
            // `- key: v`: an item, then a key two columns in.
            while let Some(item) = t
                .strip_prefix("- ")
                .or(if t == "-" { Some("") } else { None })
            {
                while stack
                    .last()
                    .is_some_and(|(i, k)| *i > indent || (*i == indent && k == "-"))
                {
                    stack.pop();
                }
                stack.push((indent, "-".to_owned()));
                let trimmed = item.trim_start();
                indent += t.len() - trimmed.len();
                t = trimmed;
            }
            let Some((key, rest)) = split_key(t) else {
                continue;
            };
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key));
            if rest.starts_with(['|', '>']) {
                scalar_above = Some(indent);
            }
            keys.push(Key {
                path: stack.iter().map(|(_, k)| k.clone()).collect(),
                line: n,
                indent,
                rest,
            });
        }
        Lines { lines, keys }
    }

    /// The key at `path`.
    #[must_use]
    pub fn key(&self, path: &[&str]) -> Option<&Key> {
        self.keys.iter().find(|k| k.path == path)
    }

    /// The 1-based line of `path`, else of its nearest ancestor found (1
    /// when none is).
    #[must_use]
    pub fn line_of(&self, path: &[&str]) -> usize {
        (0..=path.len())
            .rev()
            .find_map(|n| self.key(&path[..n]))
            .map_or(1, |k| k.line + 1)
    }

    /// The keys directly under `path`.
    pub fn children<'s>(&'s self, path: &'s [&str]) -> impl Iterator<Item = &'s Key> + 's {
        self.keys
            .iter()
            .filter(move |k| k.path.len() == path.len() + 1 && k.path[..path.len()] == *path)
    }

    /// The last content line of the block of `key` (its own line when the
    /// block is empty): the lines after it that are more indented, or
    /// sequence items at its own column.
    #[must_use]
    pub fn block_end(&self, key: &Key) -> usize {
        let mut last = key.line;
        for (n, l) in self.lines.iter().enumerate().skip(key.line + 1) {
            if !is_content(l) {
                continue;
            }
            let i = indent_of(l);
            let item = l.trim_start().starts_with('-');
            if i > key.indent || (i == key.indent && item && key.rest.is_empty()) {
                last = n;
            } else {
                break;
            }
        }
        last
    }

    /// The column of the first sequence item under `key`, if its value is a
    /// block sequence.
    #[must_use]
    pub fn item_indent(&self, key: &Key) -> Option<usize> {
        self.lines
            .iter()
            .skip(key.line + 1)
            .find(|l| is_content(l))
            .filter(|l| l.trim_start().starts_with('-') && indent_of(l) >= key.indent)
            .map(|l| indent_of(l))
    }

    /// The text's lines (without line ends).
    #[must_use]
    pub fn lines(&self) -> &[&'a str] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    const FILE: &str = "\
# a comment
services:
  web:   # the front
    image: web:1
    command: |
      sh -c 'x: y'
    volumes:
    - ./a:/a
    - type: volume
      target: /b
    ports: [\"80:80\"]
  \"db\":
    image: db
volumes:
  data: {}
";

    #[test]
    fn keys_have_their_paths_and_lines() {
        let l = Lines::new(FILE);
        for (path, line) in [
            (&["services"][..], 2),
            (&["services", "web"], 3),
            (&["services", "web", "image"], 4),
            (&["services", "web", "volumes"], 7),
            (&["services", "web", "ports"], 11),
            (&["services", "db"], 12),
            (&["services", "db", "image"], 13),
            (&["volumes", "data"], 15),
        ] {
            assert_eq!(l.line_of(path), line, "{path:?}");
        }
        // The block scalar's `x: y` is no key, and items' keys are under `-`.
        assert!(l.key(&["services", "web", "x"]).is_none());
        assert!(
            l.key(&["services", "web", "volumes", "-", "target"])
                .is_some()
        );
        // Unknown keys fall back to the nearest ancestor.
        assert_eq!(l.line_of(&["services", "db", "build"]), 12);
    }

    #[test]
    fn blocks_end_at_their_last_content_line() {
        let l = Lines::new(FILE);
        let web = l.key(&["services", "web"]).unwrap();
        assert_eq!(l.block_end(web), 10);
        let vols = l.key(&["services", "web", "volumes"]).unwrap();
        assert_eq!(l.block_end(vols), 9);
        assert_eq!(l.item_indent(vols), Some(4));
        let db = l.key(&["services", "db"]).unwrap();
        assert_eq!(l.block_end(db), 12);
        assert_eq!(
            l.key(&["services", "web", "ports"]).unwrap().rest,
            "[\"80:80\"]"
        );
        let children: Vec<_> = l
            .children(&["services"])
            .map(|k| k.path[1].clone())
            .collect();
        assert_eq!(children, ["web", "db"]);
    }
}
