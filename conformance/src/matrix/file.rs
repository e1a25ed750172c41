//! The matrix file (`conformance/matrix.toml`): the implementations `cargo
//! xtask matrix` judges, how to set each up, its adapter's command, its
//! known deviations and their ground-truth script.
//!
//! ```toml
//! [[implementation]]
//! name = "haiway-0.48.0"
//! about = "Haiway 0.48.0, generation 5 (0.42.1 to 0.48.0)"
//! python = ["haiway==0.48.0"]
//! command = "{python} conformance/adapters/haiway/adapter.py"
//! expect = "conformance/expectations/haiway.toml"
//! ground_truth = "{python} conformance/expectations/haiway/ground_truth.py {expect}"
//! ```
//!
//! Invariants the reader checks, so a run never starts on a file that
//! cannot be right: names are unique and safe as directory names; every
//! package is pinned (`==` for pip, `@VERSION` for npm); placeholders are
//! only those known (`{python}` needs `python`, `{prefix}` needs `npm`,
//! `{expect}` needs `expect`); an expectations file with deviations has a
//! ground-truth script ("no script, no recorded deviation").

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One implementation, as the matrix file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listed {
    /// Its name in the matrix (a column of the page), `[A-Za-z0-9._-]+`.
    pub name: String,
    /// One line for readers: what it is, which version, why it is here.
    pub about: String,
    /// pip requirements, each pinned with `==`: a virtual environment under
    /// the target directory is made with them; `{python}` is its
    /// interpreter.
    #[serde(default)]
    pub python: Option<Vec<String>>,
    /// npm packages, each pinned with `@VERSION`: installed under the target
    /// directory; `{prefix}` is that directory (its `node_modules/`).
    #[serde(default)]
    pub npm: Option<Vec<String>>,
    /// What `--impl` takes: a built-in name (`reference`,
    /// `typeid-broadcast`, ...) or the adapter's command line, relative to
    /// the repository's root.
    pub command: String,
    /// Its known deviations (an expectations file), relative to the
    /// repository's root.
    #[serde(default)]
    pub expect: Option<PathBuf>,
    /// The command that shows each recorded deviation in plain code against
    /// the implementation's public API (PROTOCOL.md, "Ground truth").
    #[serde(default)]
    pub ground_truth: Option<String>,
    /// A command run once as the implementation is set up, before it is
    /// judged (building what `ground_truth` runs, so that its time limit
    /// is not spent compiling); its failure leaves the implementation not
    /// judged.
    #[serde(default)]
    pub build: Option<String>,
}

/// Whether `package` is `NAME<sep>VERSION` with one exact version: a name
/// of letters, digits, `.`, `_`, `-` or `/` (npm scopes), and a version of
/// digits, letters, `.`, `-` or `+` (no ranges, wildcards or options).
fn pinned(package: &str, sep: &str) -> bool {
    let Some((name, version)) = package.split_once(sep) else {
        return false;
    };
    let name_ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    let version_ok = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
    name_ok && version_ok
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// The implementations, in the order the page shows them.
    #[serde(rename = "implementation")]
    pub implementations: Vec<Listed>,
}

impl MatrixFile {
    /// Reads and checks a matrix file.
    ///
    /// # Errors
    /// What is wrong, naming the implementation and the field.
    pub fn read(path: &Path) -> Result<MatrixFile, String> {
        let text = scopebus_sim::input::read_text(path)
            .map_err(|e| format!("cannot read the matrix file {}: {e}", path.display()))?;
        let file: MatrixFile = toml::from_str(&text)
            .map_err(|e| format!("{}: not a matrix file: {e}", path.display()))?;
        file.check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.implementations.is_empty() {
            return Err("it lists no implementation".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for listed in &self.implementations {
            if !seen.insert(listed.name.as_str()) {
                return Err(format!("`{}` is listed twice", listed.name));
            }
            listed
                .check()
                .map_err(|e| format!("implementation `{}`: {e}", listed.name))?;
        }
        Ok(())
    }
}

impl Listed {
    fn check(&self) -> Result<(), String> {
        let safe = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if self.name.is_empty()
            || !self.name.chars().all(safe)
            || self.name.chars().all(|c| c == '.')
        {
            return Err(
                "`name` must be letters, digits, `.`, `_` or `-` (and not only dots)".to_owned(),
            );
        }
        for package in self.python.iter().flatten() {
            if !pinned(package, "==") {
                return Err(format!(
                    "python package `{package}` is not pinned to one version (NAME==VERSION)"
                ));
            }
        }
        for package in self.npm.iter().flatten() {
            let bare = package.strip_prefix('@').unwrap_or(package);
            if !pinned(bare, "@") {
                return Err(format!(
                    "npm package `{package}` is not pinned to one version (NAME@VERSION)"
                ));
            }
        }
        for (field, text) in [
            ("command", Some(&self.command)),
            ("ground_truth", self.ground_truth.as_ref()),
            ("build", self.build.as_ref()),
        ] {
            let Some(text) = text else { continue };
            self.placeholders_known(field, text)?;
        }
        if self.ground_truth.is_some() && self.expect.is_none() {
            return Err(
                "`ground_truth` without `expect`: there is nothing for it to show".to_owned(),
            );
        }
        Ok(())
    }

    fn placeholders_known(&self, field: &str, text: &str) -> Result<(), String> {
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{field}` has a `{{` with no `}}`"))?;
            let name = &rest[open + 1..open + close];
            let given = match name {
                "python" => self.python.is_some(),
                "prefix" => self.npm.is_some(),
                "expect" => self.expect.is_some(),
                _ => {
                    return Err(format!(
                        "`{field}` uses an unknown placeholder `{{{name}}}`; known: {{python}}, {{prefix}}, {{expect}}"
                    ));
                }
            };
            if !given {
                let needs = match name {
                    "python" => "`python`",
                    "prefix" => "`npm`",
                    _ => "`expect`",
                };
                return Err(format!("`{field}` uses `{{{name}}}`, which needs {needs}"));
            }
            rest = &rest[open + close + 1..];
        }
        Ok(())
    }

    /// `text` with its placeholders replaced.
    pub fn expand(
        &self,
        text: &str,
        python: Option<&Path>,
        prefix: Option<&Path>,
        root: &Path,
    ) -> String {
        let quote = |p: &Path| {
            let s = p.display().to_string();
            shlex::try_quote(&s).map_or(s.clone(), |q| q.into_owned())
        };
        let mut out = text.to_owned();
        if let Some(python) = python {
            out = out.replace("{python}", &quote(python));
        }
        if let Some(prefix) = prefix {
            out = out.replace("{prefix}", &quote(prefix));
        }
        if let Some(expect) = &self.expect {
            out = out.replace("{expect}", &quote(&root.join(expect)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MatrixFile, String> {
        let file: MatrixFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.check().map(|()| file)
    }

    #[test]
    fn a_matrix_file_is_checked_before_anything_runs() {
        let good = r#"
[[implementation]]
name = "haiway-0.48.0"
about = "x"
python = ["haiway==0.48.0"]
command = "{python} adapter.py"
expect = "e.toml"
ground_truth = "{python} gt.py {expect}"
"#;
        let file = parse(good).expect("a good file");
        let listed = &file.implementations[0];
        assert_eq!(
            listed.expand(
                &listed.command,
                Some(Path::new("/v/bin/python3")),
                None,
                Path::new("/r")
            ),
            "/v/bin/python3 adapter.py"
        );
        for (bad, why) in [
            (good.replace("==0.48.0", ""), "not pinned"),
            (
                good.replace("{python} adapter", "{pyhton} adapter"),
                "unknown placeholder `{pyhton}`",
            ),
            (
                good.replace("python = [\"haiway==0.48.0\"]", ""),
                "needs `python`",
            ),
            (good.replace("expect = \"e.toml\"", ""), "needs `expect`"),
            (
                good.replace("haiway-0.48.0\"", "haiway 0.48\""),
                "letters, digits",
            ),
            (format!("{good}{good}"), "listed twice"),
            ("implementation = []".to_owned(), "no implementation"),
        ] {
            let e = parse(&bad).expect_err(why);
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn only_exact_versions_are_pinned() {
        for good in ["haiway==0.48.0", "broadcaster==0.3.1"] {
            assert!(pinned(good, "=="), "{good}");
        }
        for bad in [
            "haiway==0.*",
            "requests>=1,==",
            "--index-url==http://x/",
            "x==",
            "==1.0",
        ] {
            assert!(!pinned(bad, "=="), "{bad}");
        }
        assert!(pinned("left-pad@1.3.0", "@"));
        for bad in ["left-pad@latest", "lodash@^4", "foo@*"] {
            assert!(!pinned(bad, "@"), "{bad}");
        }
    }
}
