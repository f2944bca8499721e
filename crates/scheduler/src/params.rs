//! Script parameters checked against the script's [`ParamSpec`]s before a
//! run starts or a job is saved, so a typo is an error naming the field
//! rather than a run that silently ignores it.

use domain::validation::ValidationErrors;
use serde_json::{Map, Value};

use crate::script::{ParamKind, ParamSpec, Script};

fn known_names(specs: &[ParamSpec]) -> String {
    if specs.is_empty() {
        "it takes no parameters".to_owned()
    } else {
        let names: Vec<&str> = specs.iter().map(|p| p.name).collect();
        format!("it takes {}", names.join(", "))
    }
}

/// Every problem with `params` for `script`, fields named `params.NAME`.
pub fn check(script: &dyn Script, params: &Map<String, Value>) -> Result<(), ValidationErrors> {
    let specs = script.params();
    let mut errors = ValidationErrors::default();
    for (name, value) in params {
        match specs.iter().find(|p| p.name == name) {
            None => errors.add(
                format!("params.{name}"),
                format!(
                    "`{}` has no parameter `{name}`: {}",
                    script.name(),
                    known_names(&specs)
                ),
            ),
            Some(spec) => {
                let ok = match spec.kind {
                    ParamKind::String => value.is_string(),
                    ParamKind::Integer => value.is_i64(),
                    ParamKind::Boolean => value.is_boolean(),
                };
                if !ok {
                    errors.add(
                        format!("params.{name}"),
                        format!("must be {} {}", article(spec.kind), spec.kind.as_str()),
                    );
                } else if let Some(n) = value.as_i64()
                    && (spec.minimum.is_some_and(|min| n < min)
                        || spec.maximum.is_some_and(|max| n > max))
                {
                    errors.add(format!("params.{name}"), out_of_range(n, spec));
                }
            }
        }
    }
    for spec in specs.iter().filter(|p| p.required) {
        if !params.contains_key(spec.name) {
            errors.add(
                format!("params.{}", spec.name),
                format!("is required: {}", spec.description),
            );
        }
    }
    errors.into_result(())
}

fn out_of_range(n: i64, spec: &ParamSpec) -> String {
    match (spec.minimum, spec.maximum) {
        (Some(min), Some(max)) => format!(
            "{n} is out of range: use {min}–{max} ({})",
            spec.description
        ),
        (Some(min), None) => format!(
            "{n} is too small: use at least {min} ({})",
            spec.description
        ),
        (None, Some(max)) => format!("{n} is too large: use at most {max} ({})", spec.description),
        (None, None) => String::new(),
    }
}

fn article(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Integer => "an",
        ParamKind::String | ParamKind::Boolean => "a",
    }
}

/// Turns `key=value` pairs from the command line into typed parameters
/// using the script's specs (`retention_days=30` becomes the integer 30),
/// then checks them.
pub fn from_pairs(
    script: &dyn Script,
    pairs: &[(String, String)],
) -> Result<Map<String, Value>, ValidationErrors> {
    let specs = script.params();
    let mut params = Map::new();
    let mut errors = ValidationErrors::default();
    for (name, raw) in pairs {
        let value = match specs.iter().find(|p| p.name == name).map(|p| p.kind) {
            Some(ParamKind::Integer) => match raw.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    errors.add(
                        format!("params.{name}"),
                        format!("`{raw}` is not an integer"),
                    );
                    continue;
                }
            },
            Some(ParamKind::Boolean) => match raw.trim() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => {
                    errors.add(
                        format!("params.{name}"),
                        format!("`{raw}` is not a boolean: use true or false"),
                    );
                    continue;
                }
            },
            // Unknown names are reported by `check` below.
            Some(ParamKind::String) | None => Value::String(raw.clone()),
        };
        params.insert(name.clone(), value);
    }
    if let Err(more) = check(script, &params) {
        for e in more.errors {
            if !errors.mentions(&e.field) {
                errors.errors.push(e);
            }
        }
    }
    errors.into_result(params)
}
