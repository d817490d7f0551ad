//! `NAME key=value …` arguments, shared by schedules and optimizers given on the command line.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// `key=value` parameters of one named thing, consumed as they are read; whatever is left
/// at the end is an unknown parameter.
pub(crate) struct Args {
    name: String,
    map: BTreeMap<String, String>,
}

impl Args {
    /// Splits `key=value` words; a word without `=` or a key given twice is an error.
    pub fn parse(name: &str, params: &[String]) -> Result<Self> {
        let mut map = BTreeMap::new();
        for p in params {
            let Some((k, v)) = p.split_once('=') else {
                return Err(Error::Argument(format!("parameter `{p}` is not key=value")));
            };
            if map.insert(k.trim().to_string(), v.to_string()).is_some() {
                return Err(Error::Argument(format!("parameter `{k}` given twice")));
            }
        }
        Ok(Self {
            name: name.to_string(),
            map,
        })
    }

    pub fn take(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    pub fn f64_or(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::Argument(format!("{}: {key}={v} is not a number", self.name))),
        }
    }

    pub fn required_f64(&mut self, key: &str) -> Result<f64> {
        if !self.map.contains_key(key) {
            return Err(Error::Argument(format!("{} needs {key}=…", self.name)));
        }
        self.f64_or(key, f64::NAN)
    }

    pub fn u64_or(&mut self, key: &str, default: u64) -> Result<u64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                Error::Argument(format!(
                    "{}: {key}={v} is not a non-negative integer",
                    self.name
                ))
            }),
        }
    }

    pub fn required_u64(&mut self, key: &str) -> Result<u64> {
        if !self.map.contains_key(key) {
            return Err(Error::Argument(format!("{} needs {key}=…", self.name)));
        }
        self.u64_or(key, 0)
    }

    pub fn bool_or(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(Error::Argument(format!(
                "{}: {key}={v} is not true or false",
                self.name
            ))),
        }
    }

    pub fn list(&mut self, key: &str) -> Result<Option<Vec<f64>>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let v = v
            .trim()
            .trim_start_matches(['[', '('])
            .trim_end_matches([']', ')']);
        v.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim().parse().map_err(|_| {
                    Error::Argument(format!("{}: {key} has `{s}`, not a number", self.name))
                })
            })
            .collect::<Result<Vec<f64>>>()
            .map(Some)
    }

    pub fn finish(self) -> Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(Error::Argument(format!(
                "{}: unknown parameter `{k}`",
                self.name
            ))),
        }
    }
}
