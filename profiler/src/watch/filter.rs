//! Which containers `roprof watch` profiles: every `--label K=V` must be
//! among the container's labels and `--name GLOB` must match its name.

use std::collections::BTreeMap;

use super::WatchError;

/// The selection given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// `--label K=V` (all must match); `--label K` matches any value.
    pub labels: Vec<(String, Option<String>)>,
    /// `--name GLOB` (`*` any run, `?` one character).
    pub name: Option<String>,
}

impl Filter {
    /// Parses `--label` values and `--name`.
    pub fn parse(labels: &[String], name: Option<&str>) -> Result<Self, WatchError> {
        let labels = labels
            .iter()
            .map(|l| {
                let (k, v) = match l.split_once('=') {
                    Some((k, v)) => (k, Some(v.to_owned())),
                    None => (l.as_str(), None),
                };
                if k.is_empty() {
                    return Err(WatchError::Usage(format!(
                        "--label `{l}`: the key is empty (use KEY=VALUE or KEY)"
                    )));
                }
                Ok((k.to_owned(), v))
            })
            .collect::<Result<_, _>>()?;
        if name.is_some_and(str::is_empty) {
            return Err(WatchError::Usage("--name: the pattern is empty".into()));
        }
        Ok(Filter {
            labels,
            name: name.map(str::to_owned),
        })
    }

    /// True when a container named `name` with `labels` is selected.
    #[must_use]
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let labels_ok = self.labels.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        });
        labels_ok && self.name.as_deref().is_none_or(|g| glob(g, name))
    }
}

/// Shell-style glob over characters: `*` any run, `?` one character.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear
    // in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Filter, glob};

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("web-*", "web-1", true),
            ("web-*", "db-1", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*-api-*", "shop-api-7", true),
            ("exact", "exact", true),
            ("exact", "exact2", false),
            ("**x", "aax", true),
        ] {
            assert_eq!(glob(p, t), want, "glob {p} against {t}");
        }
    }

    #[test]
    fn labels_and_name_all_must_match() {
        let f = Filter::parse(&["roprof.watch=yes".into(), "tier".into()], Some("shop-*")).unwrap();
        let mut l = BTreeMap::new();
        l.insert("roprof.watch".to_owned(), "yes".to_owned());
        assert!(!f.matches("shop-1", &l), "label `tier` is missing");
        l.insert("tier".to_owned(), "web".to_owned());
        assert!(f.matches("shop-1", &l));
        assert!(!f.matches("other", &l), "the name does not match");
        l.insert("roprof.watch".to_owned(), "no".to_owned());
        assert!(!f.matches("shop-1", &l), "the label's value differs");
        assert!(Filter::default().matches("anything", &BTreeMap::new()));
        assert!(Filter::parse(&["=x".into()], None).is_err());
    }
}
