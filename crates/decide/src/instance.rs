//! `type:key`: how Permit names a resource instance in checks, tuples and role assignments.

use std::fmt;

/// A resource instance, `resource:key` (Permit's `type:key`), borrowed from where it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance<'a> {
    pub resource: &'a str,
    pub key: &'a str,
}

/// Why a `type:key` string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("{0:?} is not `type:key`: it has no ':'")]
    NoColon(String),
    #[error("{0:?} is not `type:key`: the resource type before ':' is empty")]
    EmptyType(String),
    #[error("{0:?} is not `type:key`: the instance key after ':' is empty")]
    EmptyKey(String),
}

impl<'a> Instance<'a> {
    pub fn new(resource: &'a str, key: &'a str) -> Instance<'a> {
        Instance { resource, key }
    }

    /// Splits at the first ':'. Permit's resource keys cannot contain ':' (they are
    /// `^[A-Za-z0-9\-_]+$`), instance keys can, so everything after the first ':' is the key.
    pub fn parse(text: &'a str) -> Result<Instance<'a>, InstanceError> {
        let Some((resource, key)) = text.split_once(':') else {
            return Err(InstanceError::NoColon(text.to_string()));
        };
        if resource.is_empty() {
            return Err(InstanceError::EmptyType(text.to_string()));
        }
        if key.is_empty() {
            return Err(InstanceError::EmptyKey(text.to_string()));
        }
        Ok(Instance { resource, key })
    }
}

impl fmt::Display for Instance<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_keeps_every_colon_after_the_first() {
        assert_eq!(
            Instance::parse("Doc:a:b").unwrap(),
            Instance::new("Doc", "a:b")
        );
        assert_eq!(Instance::parse("Doc:a").unwrap().to_string(), "Doc:a");
    }

    #[test]
    fn malformed_strings_say_what_is_missing() {
        assert!(matches!(
            Instance::parse("Doc"),
            Err(InstanceError::NoColon(_))
        ));
        assert!(matches!(
            Instance::parse(":a"),
            Err(InstanceError::EmptyType(_))
        ));
        assert!(matches!(
            Instance::parse("Doc:"),
            Err(InstanceError::EmptyKey(_))
        ));
    }
}
