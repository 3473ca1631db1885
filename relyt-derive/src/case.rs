//! `rename_all` case conventions, applied to Rust field names (which are snake_case).

use self::RenameRule::*;

/// A case convention accepted by `#[relyt(rename_all = "...")]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    /// `lowercase`: every character lowercased.
    Lower,
    /// `UPPERCASE`: every character uppercased.
    Upper,
    /// `PascalCase`: words capitalized, underscores removed.
    Pascal,
    /// `camelCase`: like `PascalCase` with a lowercase first letter.
    Camel,
    /// `snake_case`: the field name unchanged.
    Snake,
    /// `SCREAMING_SNAKE_CASE`: the field name uppercased.
    ScreamingSnake,
    /// `kebab-case`: underscores replaced by hyphens.
    Kebab,
    /// `SCREAMING-KEBAB-CASE`: uppercased, underscores replaced by hyphens.
    ScreamingKebab,
}

/// Every rule with its spelling, in the order they are listed in error messages.
const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", Lower),
    ("UPPERCASE", Upper),
    ("PascalCase", Pascal),
    ("camelCase", Camel),
    ("snake_case", Snake),
    ("SCREAMING_SNAKE_CASE", ScreamingSnake),
    ("kebab-case", Kebab),
    ("SCREAMING-KEBAB-CASE", ScreamingKebab),
];

impl RenameRule {
    /// Looks up a rule by its exact spelling.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        RULES
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, rule)| *rule)
    }

    /// A valid spelling that `name` differs from only in case, `-` vs. `_` or spaces
    /// (`"camelcase"`, `"Snake Case"`), to suggest for a likely typo.
    pub(crate) fn suggest(name: &str) -> Option<&'static str> {
        let normalize = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let wanted = normalize(name);
        // The normalized spellings are all distinct, so at most one rule matches.
        RULES
            .iter()
            .map(|(spelling, _)| *spelling)
            .find(|spelling| normalize(spelling) == wanted)
    }

    /// The valid spellings as "`lowercase`, `UPPERCASE`, ..." for error messages.
    pub(crate) fn expected() -> String {
        let quoted: Vec<String> = RULES.iter().map(|(s, _)| format!("`{s}`")).collect();
        quoted.join(", ")
    }

    /// Applies the rule to a snake_case field name (raw-identifier prefix already removed).
    pub(crate) fn apply_to_field(self, field: &str) -> String {
        match self {
            Lower => field.to_lowercase(),
            Upper | ScreamingSnake => field.to_uppercase(),
            Snake => field.to_owned(),
            Kebab => field.replace('_', "-"),
            ScreamingKebab => field.to_uppercase().replace('_', "-"),
            Pascal => pascal(field),
            Camel => {
                let pascal = pascal(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_lowercase().chain(chars).collect(),
                    None => pascal,
                }
            }
        }
    }
}

/// `snake_case` -> `Snake`: drops underscores and capitalizes the letter after each one.
fn pascal(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut capitalize = true;
    for ch in field.chars() {
        if ch == '_' {
            capitalize = true;
        } else if capitalize {
            out.extend(ch.to_uppercase());
            capitalize = false;
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_round_trips_its_name() {
        for (name, rule) in RULES {
            assert_eq!(RenameRule::from_name(name), Some(*rule));
        }
        assert_eq!(RenameRule::from_name("Lowercase"), None);
        assert_eq!(RenameRule::from_name("camelcase"), None);
    }

    #[test]
    fn suggests_spellings_that_differ_in_case_or_separator() {
        assert_eq!(RenameRule::suggest("camelcase"), Some("camelCase"));
        assert_eq!(RenameRule::suggest("Snake Case"), Some("snake_case"));
        assert_eq!(RenameRule::suggest("pascal_case"), Some("PascalCase"));
        assert_eq!(
            RenameRule::suggest("screaming_snake_case"),
            Some("SCREAMING_SNAKE_CASE")
        );
        assert_eq!(RenameRule::suggest("KEBAB-CASE"), Some("kebab-case"));
        assert_eq!(RenameRule::suggest("Title Case"), None);
    }

    #[test]
    fn applies_to_field_names() {
        let cases: &[(&str, [&str; 8])] = &[
            (
                "outcome",
                [
                    "outcome", "OUTCOME", "Outcome", "outcome", "outcome", "OUTCOME", "outcome",
                    "OUTCOME",
                ],
            ),
            (
                "very_tasty",
                [
                    "very_tasty",
                    "VERY_TASTY",
                    "VeryTasty",
                    "veryTasty",
                    "very_tasty",
                    "VERY_TASTY",
                    "very-tasty",
                    "VERY-TASTY",
                ],
            ),
            (
                "a_1_b",
                [
                    "a_1_b", "A_1_B", "A1B", "a1B", "a_1_b", "A_1_B", "a-1-b", "A-1-B",
                ],
            ),
            (
                "_private",
                [
                    "_private", "_PRIVATE", "Private", "private", "_private", "_PRIVATE",
                    "-private", "-PRIVATE",
                ],
            ),
        ];
        for (field, expected) in cases {
            for ((name, rule), want) in RULES.iter().zip(expected) {
                assert_eq!(rule.apply_to_field(field), *want, "{name} of {field}");
            }
        }
    }
}
