//! The kinds file: TOML, one `[[kind]]` table per kind.
//!
//! ```toml
//! [[kind]]
//! name = "export"
//! description = "Exports a customer's orders as CSV"
//! command = ["./export.py", "--csv"]          # or: rpc = "fn", http = { url = "..." },
//! input_schema = "export.schema.json"         #     function = "edge-function-name"
//! timeout = "10m"
//! ```
//!
//! Each entry is read on its own: one that is wrong (an unknown key, a value of the
//! wrong type, a bad schema, a name taken) becomes a [`KindsProblem`] naming the file,
//! line and key, and the others still load. Only a file that is not TOML at all loads
//! nothing.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toml::Spanned;

use super::{
    Execute, FileKind,
    command::Command,
    http::{Http, Target},
    rpc::Rpc,
    schema::InputSchema,
};
use crate::worker::{KindExecutor, KindOptions, KindSource, Registry, registry::Entry};

/// One thing wrong in the kinds file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KindsProblem {
    pub file: String,
    /// 1-based; none when the file as a whole is the problem.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub line: Option<u32>,
    /// The key concerned (`command`, `input_schema`), or the kind's name.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for KindsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The kinds file as read: its valid kinds, and what was wrong with the rest.
#[derive(Debug, Clone, Default)]
pub struct KindsFile {
    pub path: PathBuf,
    /// The file's kinds alone; [`KindsFile::with_builtin`] adds them to others.
    pub registry: Registry,
    pub problems: Vec<KindsProblem>,
}

/// Every key a kind may have.
const KEYS: &[&str] = &[
    "name",
    "description",
    "input_schema",
    "timeout",
    "max_attempts",
    "priority",
    "concurrency",
    "command",
    "cwd",
    "env",
    "rpc",
    "http",
    "function",
    "send_user_token",
];

#[derive(Debug, Deserialize)]
struct Spec {
    name: String,
    #[serde(default)]
    description: String,
    input_schema: Option<SchemaSpec>,
    timeout: Option<TimeoutSpec>,
    max_attempts: Option<i32>,
    priority: Option<i16>,
    concurrency: Option<usize>,
    command: Option<Vec<String>>,
    cwd: Option<String>,
    env: Option<BTreeMap<String, String>>,
    rpc: Option<String>,
    http: Option<HttpSpec>,
    function: Option<String>,
    send_user_token: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SchemaSpec {
    File(String),
    Inline(toml::Table),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TimeoutSpec {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSpec {
    url: String,
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
}

type RawKind = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    kind: Vec<RawKind>,
}

impl KindsFile {
    /// Reads the kinds file at `path`. A file that does not exist has no kinds and no
    /// problem when `required` is false (the default location, not created yet).
    pub fn load(path: &Path, builtin: &Registry, required: bool) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path, builtin),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => Self {
                path: path.to_path_buf(),
                ..Self::default()
            },
            Err(error) => {
                let mut reader = Reader::new("", path);
                reader.problem(None, None, format!("cannot read the kinds file: {error}"));
                Self {
                    path: path.to_path_buf(),
                    registry: Registry::new(),
                    problems: reader.problems,
                }
            }
        }
    }

    /// Reads kinds from `text`, the contents of `path` (relative paths inside resolve
    /// against its folder). Names of `builtin`'s kinds are refused.
    pub fn parse(text: &str, path: &Path, builtin: &Registry) -> Self {
        let mut reader = Reader::new(text, path);
        let mut registry = Registry::new();
        match toml::from_str::<toml::Table>(text) {
            Err(error) => reader.problem(error.span().map(|s| s.start), None, error.message()),
            Ok(top) => {
                for key in top.keys().filter(|k| *k != "kind") {
                    let at = text.find(key.as_str());
                    reader.problem(at, Some(key), "unknown key: each kind is a [[kind]] table");
                }
            }
        }
        if reader.problems.is_empty() {
            match toml::from_str::<RawFile>(text) {
                Err(error) => {
                    reader.problem(error.span().map(|s| s.start), None, error.message());
                }
                Ok(file) => {
                    let mut seen = BTreeSet::new();
                    for raw in file.kind {
                        if let Some((name, entry)) = reader.kind(raw, builtin, &seen) {
                            seen.insert(name.clone());
                            registry.insert(name, entry);
                        }
                    }
                }
            }
        }
        Self {
            path: path.to_path_buf(),
            registry,
            problems: reader.problems,
        }
    }

    /// `builtin`'s kinds and this file's.
    pub fn with_builtin(&self, builtin: Registry) -> Registry {
        builtin.merged(&self.registry)
    }
}

struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
    folder: PathBuf,
    problems: Vec<KindsProblem>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, path: &'a Path) -> Self {
        Self {
            text,
            path,
            folder: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            problems: Vec::new(),
        }
    }

    fn line(&self, at: usize) -> u32 {
        let at = at.min(self.text.len());
        self.text[..at].matches('\n').count() as u32 + 1
    }

    fn problem(&mut self, at: Option<usize>, key: Option<&str>, message: impl Into<String>) {
        self.problems.push(KindsProblem {
            file: self.path.display().to_string(),
            line: at.map(|at| self.line(at)),
            key: key.map(str::to_string),
            message: message.into(),
        });
    }

    /// One `[[kind]]` entry as a registry entry, or `None` (with its problems noted).
    fn kind(
        &mut self,
        raw: RawKind,
        builtin: &Registry,
        seen: &BTreeSet<String>,
    ) -> Option<(String, Entry)> {
        let spans: BTreeMap<String, usize> = raw
            .keys()
            .map(|k| (k.get_ref().clone(), k.span().start))
            .collect();
        let start = spans.values().copied().min();
        let before = self.problems.len();
        for (key, &at) in &spans {
            if !KEYS.contains(&key.as_str()) {
                self.problem(Some(at), Some(key), unknown_key(key));
            }
        }
        if self.problems.len() > before {
            return None;
        }
        let table: toml::Table = raw
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v.into_inner()))
            .collect();
        let spec: Spec = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
            Ok(spec) => spec,
            Err(error) => {
                let key = error
                    .path()
                    .iter()
                    .next()
                    .map(|segment| segment.to_string())
                    .filter(|k| spans.contains_key(k));
                let at = key.as_ref().and_then(|k| spans.get(k).copied()).or(start);
                self.problem(at, key.as_deref(), error.into_inner().to_string());
                return None;
            }
        };
        let at = |key: &str| spans.get(key).copied().or(start);
        let name = spec.name.clone();
        let refuse = |this: &mut Self, key: &str, message: String| {
            this.problem(at(key), Some(key), message);
            None
        };
        if !valid_name(&name) {
            return refuse(
                self,
                "name",
                format!(
                    "\"{name}\" is not a kind name: 1 to 100 letters, digits, and _ . : - (starting with a letter or digit)"
                ),
            );
        }
        if builtin.contains(&name) {
            return refuse(
                self,
                "name",
                format!("\"{name}\" is the name of a built-in kind"),
            );
        }
        if seen.contains(&name) {
            return refuse(
                self,
                "name",
                format!("a kind named \"{name}\" is declared above already"),
            );
        }
        let options = match options(&spec) {
            Ok(options) => options,
            Err((key, message)) => return refuse(self, key, message),
        };
        let schema = match self.schema(spec.input_schema.as_ref()) {
            Ok(schema) => schema,
            Err(message) => return refuse(self, "input_schema", message),
        };
        let executors = [
            ("command", spec.command.is_some()),
            ("rpc", spec.rpc.is_some()),
            ("http", spec.http.is_some()),
            ("function", spec.function.is_some()),
        ];
        let named: Vec<&str> = executors
            .iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| *k)
            .collect();
        if named.len() != 1 {
            let key = named.get(1).copied().unwrap_or("name");
            return refuse(
                self,
                key,
                format!(
                    "a kind names exactly one of command, rpc, http or function (\"{name}\" names {})",
                    if named.is_empty() {
                        "none".to_string()
                    } else {
                        named.join(" and ")
                    }
                ),
            );
        }
        for key in ["cwd", "env"] {
            if spans.contains_key(key) && spec.command.is_none() {
                return refuse(self, key, format!("{key} is only for a command kind"));
            }
        }
        if spans.contains_key("send_user_token") && spec.http.is_none() {
            return refuse(
                self,
                "send_user_token",
                "send_user_token is only for an http kind (the project's own functions get the token)".into(),
            );
        }
        let (key, built) = match (spec.command, spec.rpc, spec.http, spec.function) {
            (Some(argv), ..) => (
                "command",
                Command::new(
                    argv,
                    spec.cwd.as_deref(),
                    spec.env.unwrap_or_default(),
                    &self.folder,
                )
                .map(|c| (wrap(schema, c), KindExecutor::Command)),
            ),
            (_, Some(function), ..) => (
                "rpc",
                Rpc::new(function).map(|r| (wrap(schema, r), KindExecutor::Rpc)),
            ),
            (_, _, Some(http), _) => (
                "http",
                Http::new(
                    Target::Url(http.url),
                    http.method.as_deref(),
                    http.headers.unwrap_or_default(),
                    spec.send_user_token.unwrap_or(false),
                )
                .map(|h| (wrap(schema, h), KindExecutor::Http)),
            ),
            (.., function) => (
                "function",
                Http::new(
                    Target::Function(function.unwrap_or_default()),
                    None,
                    BTreeMap::new(),
                    false,
                )
                .map(|h| (wrap(schema, h), KindExecutor::Http)),
            ),
        };
        match built {
            Ok((handler, executor)) => Some((
                name,
                Entry {
                    handler,
                    description: spec.description,
                    source: KindSource::File,
                    executor,
                    options,
                },
            )),
            Err(message) => refuse(self, key, message),
        }
    }
}

/// The kind's options, checked.
fn options(spec: &Spec) -> Result<KindOptions, (&'static str, String)> {
    let timeout = match &spec.timeout {
        None => None,
        Some(TimeoutSpec::Seconds(seconds)) => Some(Duration::from_secs(*seconds)),
        Some(TimeoutSpec::Text(text)) => Some(humantime::parse_duration(text).map_err(|e| {
            let hint = "write seconds, or e.g. \"90s\", \"10m\", \"2h\"";
            (
                "timeout",
                format!("\"{text}\" is not a duration ({e}); {hint}"),
            )
        })?),
    };
    if timeout.is_some_and(|t| t.is_zero() || t > Duration::from_secs(7 * 86_400)) {
        return Err((
            "timeout",
            "a timeout is more than 0 s and at most 7 days".into(),
        ));
    }
    if spec.max_attempts.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(("max_attempts", "max_attempts is 1 to 1000".into()));
    }
    if spec.concurrency == Some(0) {
        return Err(("concurrency", "concurrency is at least 1".into()));
    }
    Ok(KindOptions {
        timeout,
        max_attempts: spec.max_attempts,
        priority: spec.priority,
        concurrency: spec.concurrency,
    })
}

impl Reader<'_> {
    fn schema(&self, spec: Option<&SchemaSpec>) -> Result<InputSchema, String> {
        let schema = match spec {
            None => None,
            Some(SchemaSpec::Inline(table)) => Some(
                serde_json::to_value(table)
                    .map_err(|e| format!("not representable as JSON: {e}"))?,
            ),
            Some(SchemaSpec::File(file)) => {
                let path = self.folder.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Some(
                    serde_json::from_str::<Value>(&text)
                        .map_err(|e| format!("{} is not JSON: {e}", path.display()))?,
                )
            }
        };
        InputSchema::new(schema)
    }
}

fn wrap<E: Execute>(input: InputSchema, exec: E) -> Arc<dyn crate::worker::kind::Handler> {
    Arc::new(FileKind {
        input,
        exec: Arc::new(exec),
    })
}

/// "unknown key", with the key meant when one is close enough, else every key.
fn unknown_key(key: &str) -> String {
    let closest = KEYS
        .iter()
        .map(|known| (strsim::levenshtein(key, known), known))
        .min()
        .filter(|(distance, _)| *distance <= 2);
    match closest {
        Some((_, known)) => format!("unknown key (did you mean \"{known}\"?)"),
        None => format!("unknown key (a kind may have: {})", KEYS.join(", ")),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 100
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtin;

    fn parse(text: &str) -> KindsFile {
        KindsFile::parse(
            text,
            Path::new("/home/ada/.config/jobdeck/kinds.toml"),
            &builtin(),
        )
    }

    fn problems(file: &KindsFile) -> Vec<String> {
        file.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn each_wrong_entry_is_named_by_file_line_and_key_and_the_rest_still_load() {
        let file = parse(
            r#"
[[kind]]
name = "export"
command = ["./export.sh"]
timeout = "10m"
concurrency = 2

[[kind]]
name = "typo"
comand = ["x"]

[[kind]]
name = "hello"
rpc = "f"

[[kind]]
name = "export"
rpc = "g"

[[kind]]
name = "wrong-type"
max_attempts = "three"
rpc = "f"

[[kind]]
name = "bad-schema"
rpc = "f"
input_schema = { type = "object", properties = 3 }

[[kind]]
name = "two"
rpc = "f"
function = "g"

[[kind]]
name = "reindex"
rpc = "reindex_documents"
"#,
        );
        assert_eq!(file.registry.names(), ["export", "reindex"]);
        let file_name = "/home/ada/.config/jobdeck/kinds.toml";
        let got = problems(&file);
        let expect = [
            (10, "comand", "unknown key"),
            (13, "name", "built-in"),
            (17, "name", "declared above"),
            (22, "max_attempts", "invalid type"),
            (28, "input_schema", "not a valid JSON Schema"),
            (33, "function", "exactly one of"),
        ];
        assert_eq!(got.len(), expect.len(), "{got:#?}");
        for (problem, (line, key, says)) in got.iter().zip(expect) {
            assert!(
                problem.starts_with(&format!("{file_name}:{line}: {key}: "))
                    && problem.contains(says),
                "{problem} (expected line {line}, key {key}, saying {says})"
            );
        }
        let export = &file.registry.kinds()[0];
        assert_eq!(
            (export.timeout_seconds, export.concurrency),
            (Some(600), Some(2))
        );
        assert_eq!(export.source, KindSource::File);
        assert_eq!(export.executor, KindExecutor::Command);
    }

    #[test]
    fn a_misspelt_key_is_named_with_the_one_meant() {
        let file = parse("[[kind]]\nname = \"a\"\nrpc = \"f\"\ntimeuot = 3\n");
        assert_eq!(
            file.problems[0].message,
            "unknown key (did you mean \"timeout\"?)"
        );
    }

    #[test]
    fn the_example_kinds_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kinds.toml");
        let file = KindsFile::load(&path, &builtin(), true);
        assert!(file.problems.is_empty(), "{:?}", problems(&file));
        assert_eq!(file.registry.names().len(), 4);
    }

    #[test]
    fn a_file_that_is_not_toml_loads_nothing_and_says_where() {
        let file = parse("[[kind]]\nname = \"a\"\nrpc = \"f\n");
        assert!(file.registry.names().is_empty());
        let got = problems(&file);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("/home/ada/.config/jobdeck/kinds.toml:3: "),
            "{}",
            got[0]
        );
    }

    #[test]
    fn an_unknown_top_level_key_is_a_problem() {
        let file = parse("[kinds.export]\nrpc = \"f\"\n");
        assert_eq!(problems(&file).len(), 1);
        assert_eq!(file.problems[0].key.as_deref(), Some("kinds"));
    }

    #[test]
    fn a_missing_default_file_is_no_problem_but_a_named_one_is() {
        let missing = Path::new("/nonexistent/jobdeck/kinds.toml");
        assert!(
            KindsFile::load(missing, &builtin(), false)
                .problems
                .is_empty()
        );
        assert_eq!(KindsFile::load(missing, &builtin(), true).problems.len(), 1);
    }
}
